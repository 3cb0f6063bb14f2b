"""Preprocessing statistics gathered chunk by chunk, for tables larger than memory: the
same ``Preprocessor`` that ``Preprocessor.fit`` makes from a whole frame.

Counts, missing values, minima, maxima, means and standard deviations (Chan's pairwise
merge of per-chunk moments) and category frequencies are exact. Medians, quartiles and
quantile knots come from a mergeable sketch: a uniform sample of ``SAMPLE_ROWS`` rows, the
ones whose row number hashes lowest (bottom-k), so the same table and seed always give the
same statistics, and two sketches merge by keeping the lowest of both. By the
Dvoretzky-Kiefer-Wolfowitz inequality every quantile it gives has, with probability 1 - d,
a rank within ``rank_error(d) = sqrt(ln(2 / d) / (2 k))`` of the exact one (0.32 % of the
rows for d = 1 %).
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd

from ..data.stream import row_hash
from .preprocess import (
    MAX_CATEGORIES,
    N_QUANTILES,
    VALUE_LIMIT,
    Preprocessor,
    category_counts,
    vocabulary_of_counts,
)

SAMPLE_ROWS = 1 << 18
SAMPLE_SEED = 104_729  # the sample's hash differs from the split's
# distinct values kept per categorical column before the rarest are pruned: counts stay
# exact up to here, and the top MAX_CATEGORIES (all a vocabulary keeps) with them
MAX_TRACKED = 50 * MAX_CATEGORIES


def rank_error(rows: int, confidence: float = 0.99) -> float:
    """The DKW bound on a sampled quantile's rank error, for a sample of ``rows``."""
    return math.sqrt(math.log(2 / (1 - confidence)) / (2 * max(rows, 1)))


class RowSample:
    """The bottom-k sample of rows' numeric values: the ``size`` rows whose number hashes
    lowest, in bounded memory; mergeable and deterministic."""

    def __init__(self, width: int, size: int = SAMPLE_ROWS) -> None:
        self.size = size
        self.values = np.empty((0, width))
        self.keys = np.empty(0)

    def add(self, values: np.ndarray, rows: np.ndarray) -> None:
        self.merge(values, row_hash(rows, SAMPLE_SEED))

    def merge(self, values: np.ndarray, keys: np.ndarray) -> None:
        """Another sample (or rows) with their keys: keep the ``size`` lowest keys."""
        values = np.concatenate([self.values, values])
        keys = np.concatenate([self.keys, keys])
        if len(keys) > self.size:
            keep = np.argpartition(keys, self.size - 1)[: self.size]
            values, keys = values[keep], keys[keep]
        self.values, self.keys = values, keys


class NumericMoments:
    """Count, mean and sum of squared deviations of each column, merged chunk by chunk
    (Chan et al.): exact up to float rounding, with no catastrophic cancellation."""

    def __init__(self, width: int) -> None:
        self.count = np.zeros(width)
        self.mean = np.zeros(width)
        self.m2 = np.zeros(width)

    def add(self, count: np.ndarray, mean: np.ndarray, m2: np.ndarray) -> None:
        total = self.count + count
        with np.errstate(invalid="ignore", divide="ignore"):
            delta = mean - self.mean
            share = np.where(total > 0, count / total, 0.0)
            self.mean = self.mean + delta * share
            self.m2 = self.m2 + m2 + delta**2 * self.count * share
        self.count = total

    def add_values(self, values: np.ndarray) -> None:
        """values (rows, width), NaN for missing (not counted)."""
        present = ~np.isnan(values)
        count = present.sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, np.nansum(values, 0) / np.maximum(count, 1), 0.0)
            m2 = np.nansum((values - mean) ** 2, 0)
        self.add(count.astype(float), mean, m2)

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation (numpy's default, as ``Preprocessor.fit``)."""
        return np.sqrt(self.m2 / np.maximum(self.count, 1))


class StreamStatistics:
    """Statistics of the numeric and categorical columns of checked frames, added one
    chunk at a time; ``preprocessor`` turns them into what ``Preprocessor.fit`` gives."""

    def __init__(
        self, numeric: list[str], categorical: list[str], sample_rows: int = SAMPLE_ROWS
    ) -> None:
        self.numeric, self.categorical = list(numeric), list(categorical)
        self.rows = 0
        self.moments = NumericMoments(len(numeric))
        self.missing = np.zeros(len(numeric), dtype=np.int64)
        self.low = np.full(len(numeric), np.inf)
        self.high = np.full(len(numeric), -np.inf)
        self.sample = RowSample(len(numeric), sample_rows)
        self.counts = [Counter() for _ in categorical]
        self.categorical_missing = [False] * len(categorical)

    def add(self, frame: pd.DataFrame, rows: np.ndarray) -> None:
        """One chunk of rows, already passed through ``Schema.check``, and their numbers."""
        self.rows += len(frame)
        values = np.array(frame[self.numeric], dtype=np.float64).reshape(
            len(frame), len(self.numeric)
        )
        values = np.clip(values, -VALUE_LIMIT, VALUE_LIMIT)
        self.moments.add_values(values)
        missing = np.isnan(values)
        self.missing += missing.sum(0)
        if len(frame):
            self.low = np.fmin(self.low, np.where(missing, np.inf, values).min(0))
            self.high = np.fmax(self.high, np.where(missing, -np.inf, values).max(0))
        self.sample.add(values, rows)
        for j, name in enumerate(self.categorical):
            column = frame[name]
            self.categorical_missing[j] |= bool(column.isna().any())
            counts = self.counts[j]
            counts.update(category_counts(column))
            if len(counts) > MAX_TRACKED:  # keep the frequent ones: the vocabulary's
                self.counts[j] = Counter(dict(counts.most_common(MAX_TRACKED // 2)))

    @property
    def rank_error(self) -> float:
        """This sample's bound on a quantile's rank error, at 99 % confidence (0 when
        the sample holds every row: its quantiles are exact)."""
        return 0.0 if len(self.sample.keys) == self.rows else rank_error(len(self.sample.keys))

    def preprocessor(self, scaling: str, missing_indicator: str) -> Preprocessor:
        """The fitted ``Preprocessor``, as ``Preprocessor.fit`` computes it on all rows:
        missing values count as the median; medians and quantiles are the sample's."""
        sample = self.sample.values
        missing = np.isnan(sample)
        with np.errstate(all="ignore"):
            present = np.where(missing.all(0), 0.0, sample)
            median = np.nanmedian(present, axis=0) if len(sample) else np.zeros(sample.shape[1])
        filled_sample = np.where(missing, median, sample)
        filled = NumericMoments(len(self.numeric))
        filled.add(self.moments.count, self.moments.mean, self.moments.m2)
        filled.add(self.missing.astype(float), median, np.zeros(len(median)))
        prep = Preprocessor(self.numeric, self.categorical, scaling)
        if scaling in ("robust", "clipped"):
            q25, q75 = np.percentile(filled_sample, [25, 75], axis=0)
            center, scale = median, np.where(q75 > q25, q75 - q25, filled.std)
        else:
            center, scale = filled.mean, filled.std
        prep.medians, prep.centers = median.tolist(), np.asarray(center).tolist()
        prep.scales = np.where(scale > 1e-12, scale, 1.0).tolist()
        has_missing = self.missing > 0
        low = np.where(has_missing, np.fmin(self.low, median), self.low)
        high = np.where(has_missing, np.fmax(self.high, median), self.high)
        prep.ranges = np.stack([low, high], axis=1).tolist() if self.rows else []
        prep.indicators = [
            missing_indicator == "always" or (missing_indicator == "auto" and bool(m))
            for m in has_missing
        ]
        if scaling == "quantile":
            knots = np.quantile(filled_sample, np.linspace(0, 1, N_QUANTILES), axis=0)
            prep.quantiles = knots.T.tolist()
        prep.vocabularies = [vocabulary_of_counts(dict(c)) for c in self.counts]
        prep.missing_seen = [bool(m) for m in has_missing] + list(self.categorical_missing)
        return prep
