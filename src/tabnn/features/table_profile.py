"""What the first pass over a streamed table learns about its columns and its target, chunk
by chunk, so that the schema is decided from every row by the rules ``infer_schema``
applies to a table in memory (``schema.schema_of_facts``), never from the first chunk: that
may hold a single class, a column missing or constant there, or few of a column's values.

Every fact is exact but one: past ``EXACT_DISTINCT`` distinct values, a column's count of
them is estimated (k minimum values; Bar-Yossef et al., 2002: a relative standard error of
1/sqrt(k), 1.6 %). That count then only decides whether so varied a column is mostly unique
(dropped for its cardinality) and whether it is unique per row (an ID).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..data.target import explode_labels, label_names
from ..errors import DataError
from . import dates
from .column_kinds import ColumnFacts, family_of
from .frames import as_target, column_names
from .labels import as_float, check_binary_column, plain_value
from .schema import Schema, feature_kinds, schema_of_facts

#: The column options a profile decides kinds with (the estimator's parameters of these names).
COLUMN_OPTIONS = ("drop", "categorical", "numeric")

EXACT_DISTINCT = 4096
EMPTY = "empty"  # a chunk's column of text type without a value: no evidence of its kind


class DistinctValues:
    """The ``k`` smallest 64-bit hashes of a column's distinct values: their number, exact
    while fewer than ``k`` (barring a 64-bit collision), else estimated from the k-th."""

    def __init__(self, k: int = EXACT_DISTINCT) -> None:
        self.k = k
        self.hashes = np.empty(0, dtype=np.uint64)

    def add(self, hashes: np.ndarray) -> None:
        if self.full:  # most of a chunk's hashes are above the k-th: drop them first
            hashes = hashes[hashes < self.hashes[-1]]
        self.hashes = np.unique(np.concatenate([self.hashes, pd.unique(hashes)]))[: self.k]

    @property
    def full(self) -> bool:
        return len(self.hashes) == self.k

    @property
    def count(self) -> int:
        if not self.full:
            return len(self.hashes)
        return round((self.k - 1) * 2.0**64 / float(self.hashes[-1]))

    def near(self, total: int) -> bool:
        """Whether an estimated count is within three standard errors of ``total``."""
        return self.count >= total * (1 - 3 / math.sqrt(self.k))


class ColumnProfile:
    """One feature column's ``ColumnFacts``, gathered chunk by chunk."""

    def __init__(self) -> None:
        self.family = EMPTY
        self.rows = self.present = 0
        self.distinct = DistinctValues()
        self.first = None
        self.low, self.high, self.last = math.inf, -math.inf, -math.inf
        self.increasing = self.rising = True  # numbers never decrease; always increase
        self.texts = self.length = self.spaced = 0  # text values, their length, with spaces
        self.head: list = []  # the first present values, as many as dates.SAMPLE

    def add(self, column: pd.Series) -> None:
        self.rows += len(column)
        values = column.dropna()
        family = family_of(column.dtype)
        self.family = _joined(self.family, EMPTY if values.empty and family == "text" else family)
        if values.empty:
            return
        if not self.present:
            self.first = values.iloc[0]
        self.present += len(values)
        self.head += values.iloc[: dates.SAMPLE - len(self.head)].tolist()
        if family in ("bool", "integer", "float"):
            self._add_numbers(values)
        else:
            self._add_text(values)

    def _add_numbers(self, values: pd.Series) -> None:
        numbers = values.to_numpy(dtype=np.float64)
        self.distinct.add(pd.util.hash_array(numbers))
        self.low, self.high = min(self.low, values.min()), max(self.high, values.max())
        steps = np.diff(numbers, prepend=self.last)
        self.increasing &= bool((steps >= 0).all())
        self.rising &= bool((steps > 0).all())
        self.last = numbers[-1]

    def _add_text(self, values: pd.Series) -> None:
        counts = values.value_counts(sort=False)  # each distinct value once: cheap for few
        text, times = counts.index.astype(str), counts.to_numpy()
        self.distinct.add(pd.util.hash_array(text.to_numpy(dtype=object)))
        self.texts += len(values)
        self.length += int((text.str.len().to_numpy() * times).sum())
        self.spaced += int(times[text.str.contains(" ", regex=False)].sum())

    def facts(self) -> ColumnFacts:
        family = "text" if self.family == EMPTY else self.family
        facts = ColumnFacts(family, self.rows, self.present)
        if not self.present:
            return facts
        facts.first, facts.distinct = self.first, self.distinct.count
        facts.estimated = self.distinct.full
        if not facts.estimated:
            facts.unique = facts.distinct == self.present
        else:  # numbers that always increase are unique; otherwise the estimate says
            facts.unique = (family != "text" and self.rising) or self.distinct.near(self.present)
        if family == "integer":
            facts.span = int(self.high) - int(self.low) + 1
            facts.increasing = self.increasing
        if family == "text":
            facts.mean_length = self.length / max(self.texts, 1)
            facts.spaced = self.spaced / max(self.texts, 1)
            facts.dates = dates.looks_like_dates(pd.Series(self.head))
        return facts


def _joined(a: str, b: str) -> str:
    """The family of a column whose chunks have families a and b, as pandas would type
    the whole column: integers with missing values or floats are floats; other mixtures
    are objects (text)."""
    if a == b or b == EMPTY:
        return a
    if a == EMPTY:
        return b
    return "float" if {a, b} == {"integer", "float"} else "text"


class TargetProfile:
    """The target across the table: its distinct labels (one column), whether each 0/1
    label column is ever 1 (several), or the labels of its label sets (``label_sep``)."""

    def __init__(self, label_sep: str | None) -> None:
        self.label_sep = label_sep
        self.rows = 0
        self.labels: pd.Series | None = None
        self.names: set[str] = set()
        self.positive: dict[str, bool] = {}

    def add(self, y: pd.Series | pd.DataFrame) -> None:
        as_target(y, len(y))  # the checks fit makes of a target (no infinity)
        self.rows += len(y)
        if self.label_sep is not None:
            self.names |= label_names(y, self.label_sep)
        elif isinstance(y, pd.DataFrame):
            for name in y.columns:
                check_binary_column(y[name], str(name), allow_missing=True)
                self.positive[str(name)] = self.positive.get(str(name), False) or bool(
                    y[name].any()
                )
        else:
            seen = y if self.labels is None else pd.concat([self.labels, y], ignore_index=True)
            self.labels = pd.Series(pd.unique(seen), name=y.name)

    def summary(self, name: str) -> pd.Series | pd.DataFrame:
        """What ``infer_target`` decides the task and classes from, as the whole target
        would: the distinct labels; or, for label columns, two rows (never and ever 1)."""
        if self.label_sep is not None:  # one row holding every label (none: refused)
            every = pd.Series([self.label_sep.join(sorted(self.names))], name=name)
            return explode_labels(every, self.label_sep)
        if self.positive:
            names = list(self.positive)
            ever = [int(self.positive[n]) for n in names]
            return pd.DataFrame([[0] * len(names), ever], columns=names)
        if len(self.labels) == 1:  # infer_target would count distinct labels, not rows
            raise DataError(
                f"Target {name!r} has a single class ({plain_value(self.labels.iloc[0])!r} in "
                f"all {self.rows} rows); classification needs at least two classes."
            )
        return self.labels


class TableProfile:
    """Every feature column's profile and the target's, chunk after chunk; ``schema``
    decides from them with the column options (``drop``, ``categorical``, ``numeric``: None,
    a name or a list, as the estimator takes them) and the task (None: inferred)."""

    def __init__(
        self, options: dict, task: str | None = None, label_sep: str | None = None
    ) -> None:
        self.options = {key: column_names(options.get(key)) for key in COLUMN_OPTIONS}
        self.task = task
        self.columns: dict[str, ColumnProfile] = {}
        self.target = TargetProfile(label_sep)
        self.target_names: list[str] = []

    def add(self, X: pd.DataFrame, y: pd.Series | pd.DataFrame) -> None:
        """One chunk: its features and targets (rows without a target left out)."""
        for name in self.options["numeric"]:  # a forced column's text fails here, named
            if name in X.columns:
                as_float(X[name], name, forced=True)
        for name in X.columns:
            self.columns.setdefault(str(name), ColumnProfile()).add(X[name])
        self.target.add(y)
        self.target_names = [str(c) for c in y.columns] if y.ndim == 2 else [str(y.name)]

    def schema(self) -> Schema:
        """The schema of the whole table."""
        summary = self.target.summary(self.target_names[0])
        return schema_of_facts(self._facts(), summary, task=self.task, **self.options)

    def feature_schema(self) -> Schema | None:
        """The features as the rows so far decide them (None if no column is usable yet),
        the target left open: what statistics are gathered for until every row is seen."""
        try:
            kinds, dropped = feature_kinds(self._facts(), self.target_names, **self.options)
        except DataError:
            return None
        return Schema(kinds["numeric"], kinds["categorical"], dropped, "binary", [], [],
                      kinds["date"])  # fmt: skip

    def _facts(self) -> dict[str, ColumnFacts]:
        return {name: column.facts() for name, column in self.columns.items()}
