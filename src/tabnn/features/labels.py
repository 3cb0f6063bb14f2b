"""Label classes and cell values as canonical keys: a target's classes and task inferred
from its values, and the text keys under which ``1``, ``1.0`` and ``"1"`` are one label."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pandas as pd

from ..data import MISSING_VALUES
from ..errors import DataError, SchemaError, TabnnWarning, UsageError

MAX_DISCRETE_FLOAT_CLASSES = 20  # beyond this a non-integral float target looks continuous
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")


def infer_target(y, task: str | None) -> tuple[list[str], str, list]:
    """(target names, task, classes) from the target values."""
    if isinstance(y, pd.DataFrame) and (y.shape[1] > 1 or task == "multilabel"):
        return _infer_multilabel(y, task)
    if isinstance(y, pd.DataFrame):
        y = y.iloc[:, 0]
    if not isinstance(y, pd.Series):
        y = pd.Series(np.asarray(y), name="y")
    name = "y" if y.name is None else str(y.name)
    if task == "multilabel":
        raise UsageError(
            f"A multilabel task needs several 0/1 target columns or a label separator "
            f"(--label-sep) for the single target column {name!r}."
        )
    classes = _target_classes(y, name)
    if task == "binary" and len(classes) > 2:
        raise UsageError(
            f"task='binary' needs 2 classes, but target {name!r} has {len(classes)}: "
            f"{class_listing(classes)}. Use task='multiclass' or leave task out."
        )
    return [name], task or ("binary" if len(classes) == 2 else "multiclass"), classes


def _target_classes(y: pd.Series, name: str) -> list:
    """Sorted distinct labels as plain Python scalars; refuses one class or a continuum."""
    values = y.dropna()
    if values.empty:
        raise DataError(f"Target {name!r} has no values: every row is missing.")
    classes = _unique_sorted(values)
    if len(classes) == 1:
        raise DataError(
            f"Target {name!r} has a single class ({classes[0]!r} in all {len(values)} rows); "
            f"classification needs at least two classes."
        )
    if pd.api.types.is_float_dtype(y.dtype):
        integral = all(float(c).is_integer() for c in classes)
        if not integral and len(classes) > MAX_DISCRETE_FLOAT_CLASSES:
            raise DataError(
                f"Target {name!r} looks continuous ({len(classes)} distinct non-integer "
                f"values, e.g. {classes[0]!r}, {classes[1]!r}); tabnn does classification. "
                f"Bin it into classes first, or pass a column of labels."
            )
        if integral:  # integer labels that turned float because of missing rows
            classes = [int(c) for c in classes]
    return classes


def _unique_sorted(values: pd.Series) -> list:
    """Distinct values sorted like numpy.unique (by text when types are mixed)."""
    array = values.to_numpy(dtype=object) if values.dtype == object else values.to_numpy()
    try:
        unique = np.unique(array)
    except TypeError:
        unique = sorted(set(array.tolist()), key=lambda v: (type(v).__name__, str(v)))
    return [plain_value(v) for v in unique]


def _infer_multilabel(y: pd.DataFrame, task: str | None) -> tuple[list[str], str, list]:
    """Several 0/1 columns -> multilabel with the column names as labels."""
    names = [str(c) for c in y.columns]
    if task not in (None, "multilabel"):
        raise UsageError(
            f"task={task!r} needs one target column, got {len(names)}: {', '.join(names)}. "
            f"Several target columns mean task='multilabel'."
        )
    if len(set(names)) != len(names):
        raise DataError(f"Label columns repeat a name: {', '.join(names)}.")
    for column, name in zip(y.columns, names, strict=True):
        check_binary_column(y[column], name, allow_missing=True)
    never = [name for column, name in zip(y.columns, names, strict=True) if not y[column].any()]
    if never:
        warnings.warn(
            f"Label(s) {', '.join(map(repr, never[:10]))} are never positive (all 0) in the "
            f"rows it learns from: the model cannot learn to predict them.",
            TabnnWarning,
            stacklevel=2,
        )
    return names, "multilabel", names


def check_binary_column(column: pd.Series, name: str, *, allow_missing: bool) -> None:
    """Refuse a label column whose values are not 0/1 (or booleans)."""
    values = column.dropna() if allow_missing else column
    bad = [v for v in pd.unique(values) if label_key(v) not in ("0", "1", "True", "False")]
    if bad:
        shown = ", ".join(repr(plain_value(v)) for v in bad[:5])
        raise DataError(
            f"Label column {name!r} must hold 0/1 (or True/False), but holds {shown}. "
            f"For a column of label sets such as 'jazz|calm' pass a label separator."
        )


def class_listing(classes: list, limit: int = 10) -> str:
    """A short listing of classes for messages: the first ``limit``, then how many more."""
    shown = ", ".join(repr(plain_value(c)) for c in classes[:limit])
    return shown + (f", ... ({len(classes) - limit} more)" if len(classes) > limit else "")


# --------------------------------------------------------------------------- values


def plain_value(value):
    """A numpy scalar -> the Python scalar JSON understands."""
    return value.item() if isinstance(value, np.generic) else value


def label_key(value) -> str | None:
    """Canonical text of one value: 3, 3.0 and "3" read "3"; missing is None."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return _float_text(float(value))
    text = str(value).strip()
    if text in MISSING_VALUES:
        return None
    if _INTEGER.match(text):
        return str(int(text))
    if _NUMBER.match(text):
        return _float_text(float(text))
    return text


def _float_text(number: float) -> str | None:
    """Integral floats without '.0'; others as Python's shortest repr; NaN is missing."""
    if math.isnan(number):
        return None
    if number.is_integer():
        return str(int(number))
    return repr(number)


FEW_VALUES = 64  # up to this many values, one by one beats pandas' factorize


def canonical_text(column: pd.Series) -> pd.Series:
    """A column as canonical Python ``str`` values (see :func:`label_key`), missing as None.

    Works on the distinct values only, so big predict chunks stay cheap.

    Examples
    --------
    >>> canonical_text(pd.Series([3, 3.0, "3", " a ", "?"])).tolist()
    ['3', '3', '3', 'a', None]
    """
    if len(column) <= FEW_VALUES:  # a served request: factorize's fixed cost dominates
        keys = [label_key(v) for v in column.tolist()]
        return pd.Series(keys, index=column.index, dtype=object, name=column.name)
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    keys = np.array([label_key(u) for u in uniques] + [None], dtype=object)
    return pd.Series(keys[codes], index=column.index, dtype=object, name=column.name)


def is_number_dtype(dtype) -> bool:
    """Numbers, not booleans: a boolean column is categorical (two categories), and
    ``True`` read as 1.0 in a numeric column would be a silent guess."""
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def as_float(column: pd.Series, name: str, *, forced: bool = False) -> pd.Series:
    """A numeric feature as float64; text that is no number and booleans raise SchemaError.
    An integer beyond float64's range reads as an infinity (which the caller refuses, as it
    refuses ``1e400`` written as text)."""
    if is_number_dtype(column.dtype):
        return column.astype("float64")
    text = column.astype(object).map(_number_candidate)
    missing = text.isna() | text.isin(MISSING_VALUES)
    numbers = pd.to_numeric(text.where(~missing), errors="coerce")
    bad = np.flatnonzero((numbers.isna() & ~missing).to_numpy())
    if len(bad):
        when = "was forced numeric" if forced else "was numeric at fit time"
        raise SchemaError(
            f"Column {name!r} {when}, but data row {column.index[bad[0]]} (0-based) "
            f"holds {_shown(column.iloc[bad[0]])}, which is not a number. Fix the value, or "
            f"leave the cell empty (or ?/NA) for a missing value."
        )
    return numbers.astype("float64")


def _number_candidate(value):
    """A cell as ``pd.to_numeric`` should see it: text stripped, a boolean as no number
    (NaN after coercion, so refused), an integer too large for float64 as an infinity
    (``float()`` would raise OverflowError)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool | np.bool_):
        return "not a number"
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    return value


def _shown(value) -> str:
    """A refused cell in a message: its repr, cut short (a 400-digit number stays readable)."""
    shown = repr(value.item() if isinstance(value, np.generic) else value)
    return shown if len(shown) <= 60 else f"{shown[:40]}... ({len(shown)} characters)"
