"""Fitted preprocessing statistics, as plain numbers and vocabularies, and the pandas
encoder.

The statistics are fitted on training rows only and stored as JSON-able lists; what the
encoders read of them is one ``Encoding`` (``features.encoding``), made once per fitted
preprocessor. Turning a frame into arrays here stops at what PyTorch cannot do (looking
strings up in a vocabulary); the arithmetic (median fill, missing indicators, scaling,
one-hot and embeddings) runs inside the model's input encoder, so training, the saved
model, ONNX and the server share one path.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import UsageError
from .encoding import VALUE_LIMIT, EncodedInputs, Encoding

if TYPE_CHECKING:
    from .schema import Schema

# "clipped": robust scaling, then the network's encoder clips smoothly (x / sqrt(1 + x²/9)),
# as RealMLP does: outliers keep their order but cannot dominate a layer
SCALINGS = ("standard", "robust", "quantile", "clipped")
MISSING_INDICATORS = ("auto", "always", "never")
N_QUANTILES = 64
MAX_CATEGORIES = 1000
# up to this many rows, categories are looked up value by value in Python: a pandas
# operation's fixed cost (tens of microseconds) is more than a few dict lookups
FEW_ROWS = 256


@dataclass
class Preprocessor:
    """Statistics for the numeric and categorical columns of a schema.

    Attributes
    ----------
    numeric, categorical : list of str
        Column names, in the order the arrays use.
    scaling : {"standard", "robust", "quantile", "clipped"}
    medians, centers, scales : list of float
        Fill value, subtracted centre and divisor per numeric column.
    indicators : list of bool
        Whether a numeric column gets a 0/1 "was missing" input.
    quantiles : list of list of float
        Per numeric column, the training quantiles (only for ``scaling="quantile"``).
    vocabularies : list of list of str
        Categories seen in training, most frequent first. Index 0 of the encoded
        array is reserved for unknown and missing values, so category ``i`` is ``i + 1``.
    ranges : list of [float, float]
        Per numeric column, the smallest and largest training value (for ``drift``;
        empty in models saved before it).
    missing_seen : list of bool
        Per numeric, then per categorical column, whether training had missing values
        (for ``drift``; empty in models saved before it).
    """

    numeric: list[str]
    categorical: list[str]
    scaling: str = "standard"
    medians: list[float] = field(default_factory=list)
    centers: list[float] = field(default_factory=list)
    scales: list[float] = field(default_factory=list)
    indicators: list[bool] = field(default_factory=list)
    quantiles: list[list[float]] = field(default_factory=list)
    vocabularies: list[list[str]] = field(default_factory=list)
    ranges: list[list[float]] = field(default_factory=list)
    missing_seen: list[bool] = field(default_factory=list)

    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        numeric: list[str],
        categorical: list[str],
        *,
        scaling: str = "standard",
        missing_indicator: str = "auto",
    ) -> Preprocessor:
        """Fit on training rows of a frame already passed through ``Schema.check``."""
        if scaling not in SCALINGS:
            raise UsageError(f"scaling must be one of {', '.join(SCALINGS)}; got {scaling!r}.")
        if missing_indicator not in MISSING_INDICATORS:
            raise UsageError(
                f"missing_indicator must be one of {', '.join(MISSING_INDICATORS)}; "
                f"got {missing_indicator!r}."
            )
        prep = cls(list(numeric), list(categorical), scaling)
        values = np.array(frame[list(numeric)], dtype=np.float64).reshape(len(frame), len(numeric))
        prep._fit_numeric(np.clip(values, -VALUE_LIMIT, VALUE_LIMIT), missing_indicator)
        for name in categorical:
            prep.vocabularies.append(_vocabulary(frame[name]))
            prep.missing_seen.append(bool(frame[name].isna().any()))
        return prep

    def _fit_numeric(self, values: np.ndarray, missing_indicator: str) -> None:
        """Statistics of every numeric column (n, d) at once."""
        missing = np.isnan(values)
        # all-missing columns are dropped by the schema; stay safe anyway (median 0)
        present = np.where(missing.all(0), 0.0, values)
        with np.errstate(all="ignore"):
            median = np.nanmedian(present, axis=0) if len(values) else np.zeros(values.shape[1])
        filled = np.where(missing, median, values)
        if self.scaling in ("robust", "clipped"):
            q25, q75 = np.percentile(filled, [25, 75], axis=0)
            center, scale = median, np.where(q75 > q25, q75 - q25, filled.std(0))
        else:
            center, scale = filled.mean(0), filled.std(0)
        self.medians = median.tolist()
        self.centers = center.tolist()
        self.scales = np.where(scale > 1e-12, scale, 1.0).tolist()
        has_missing = missing.any(0)
        self.ranges = (
            np.stack([filled.min(0), filled.max(0)], axis=1).tolist() if len(values) else []
        )
        self.missing_seen = [bool(m) for m in has_missing]  # the categorical columns follow
        self.indicators = [
            missing_indicator == "always" or (missing_indicator == "auto" and bool(m))
            for m in has_missing
        ]
        if self.scaling == "quantile":
            knots = np.quantile(filled, np.linspace(0, 1, N_QUANTILES), axis=0)  # (q, d)
            self.quantiles = knots.T.tolist()

    def transform(self, frame: pd.DataFrame) -> EncodedInputs:
        """Arrays for the model: numeric float32 ``(n, n_numeric)`` with NaN kept for the
        encoder to fill, and category indices int64 ``(n, n_categorical)``, 0 = unknown."""
        return encode_frame(self.encoding(), frame)

    def encoding(self, schema: Schema | None = None) -> Encoding:
        """What the encoders read of these statistics (with the model's schema: its date
        columns and the columns a table must hold too), made once and kept: fitted
        statistics do not change. Without a schema, the one kept (any schema's) serves."""
        kept = getattr(self, "_encoding", None)
        if kept is not None and (schema is None or kept[0] is schema):
            return kept[1]
        encoding = Encoding.of(self, schema)
        self._encoding = (schema, encoding)  # not a field: neither saved nor compared
        return encoding

    @property
    def cardinalities(self) -> list[int]:
        """Number of distinct codes per categorical column, the unknown code included."""
        return self.encoding().cardinalities

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, state: dict) -> Preprocessor:
        return cls(**state)


def encode_frame(encoding: Encoding, frame: pd.DataFrame) -> EncodedInputs:
    """The pandas encoder: a checked frame (``Schema.check``'s) -> the network's inputs, as
    ``encoding`` describes them."""
    # np.array copies: pandas 3 hands out read-only views, which torch warns about
    numeric = list(encoding.numeric)
    values = np.array(frame[numeric], dtype=np.float64).reshape(len(frame), len(numeric))
    codes = [column_codes(encoding, j, frame[name]) for j, name in enumerate(encoding.categorical)]
    return encoding.inputs(values, codes)


def column_codes(encoding: Encoding, j: int, column: pd.Series) -> np.ndarray | list[int]:
    """Category codes of categorical column j (unseen and missing values: the unknown code)."""
    if len(column) <= FEW_ROWS:  # a served request: pandas' fixed costs would dominate
        return encoding.lookup(j, [None if _missing(v) else str(v) for v in column])
    known = encoding.codes[j]
    # pd.Index.get_indexer gives -1 for unseen values and missing ones: the last entry
    table = np.array([*known.values(), encoding.UNKNOWN], dtype=np.int64)
    return table[pd.Index(list(known)).get_indexer(_as_text(column))]


def _missing(value) -> bool:
    """Whether one value is missing as pandas reads it (None, NA, NaT, NaN)."""
    return value is None or value is pd.NA or value is pd.NaT or value != value  # NaN


def _as_text(column: pd.Series) -> pd.Series:
    """Values as ``str`` (as the vocabulary holds them), missing ones left missing."""
    values = column.astype(object)
    return values.where(values.isna(), values.astype(str))


def _vocabulary(column: pd.Series) -> list[str]:
    return vocabulary_of_counts(category_counts(column))


def category_counts(column: pd.Series) -> dict[str, int]:
    """How often each category occurs in a column, as the text a vocabulary holds."""
    return _as_text(column).dropna().value_counts().to_dict()


def vocabulary_of_counts(counts: dict[str, int]) -> list[str]:
    """Categories by descending frequency (ties by value), capped at MAX_CATEGORIES."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [value for value, _ in ordered[:MAX_CATEGORIES]]
