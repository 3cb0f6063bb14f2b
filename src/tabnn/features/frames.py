"""X and y as the estimator reads them: any 2-D input becomes a DataFrame with the column
names the schema uses, any target a Series of labels (or a DataFrame of 0/1 label columns),
checked the way scikit-learn checks them (feature counts and names, infinities, shapes)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_array, validate_data

from ..errors import DataError, SchemaError
from .schema import refuse_infinities


def column_names(value) -> list[str]:
    """A column option (None, one name or a list) -> a list of str names."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def array_numeric(X, frame: pd.DataFrame, named: list[str]) -> list[str]:
    """Number columns of a non-DataFrame input, bar those the user named: numeric
    features, as in any scikit-learn estimator (the table rules that drop ID-like columns
    and embed few-valued integers are meant for DataFrames)."""
    if isinstance(X, pd.DataFrame):
        return []
    return [
        name
        for name in frame.columns
        if pd.api.types.is_numeric_dtype(frame[name].dtype)
        and not pd.api.types.is_bool_dtype(frame[name].dtype)
        and name not in named
    ]


def _reject_infinity(values: np.ndarray) -> None:
    if np.isinf(values).any():
        raise DataError(
            "Input y contains infinity; expected class labels (NaN marks a missing label)."
        )


def _array_target(array: np.ndarray) -> pd.Series | pd.DataFrame:
    """A NumPy y -> Series of labels, or a DataFrame for a 0/1 indicator matrix."""
    if array.ndim == 2 and array.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected; "
            "it was flattened with ravel().",
            DataConversionWarning,
            stacklevel=4,
        )
        array = array.ravel()
    if array.dtype.kind == "f":
        _reject_infinity(array)
    if array.ndim == 2:
        kind = type_of_target(np.where(pd.isna(array), 0, array))
        if kind != "multilabel-indicator":
            raise DataError(
                f"A 2-D y must be a 0/1 multi-label indicator matrix; got {kind!r} targets. "
                f"Multi-output targets are not supported."
            )
        return pd.DataFrame(array, columns=[str(j) for j in range(array.shape[1])])
    if array.ndim != 1:
        raise DataError(
            f"y should be a 1d array of labels or a 2-D 0/1 indicator matrix; "
            f"got shape {array.shape}."
        )
    try:
        check_classification_targets(array[~pd.isna(array)])
    except ValueError as error:
        raise DataError(str(error)) from error
    return pd.Series(array, name="target")


def as_frame(estimator, X, *, reset: bool) -> pd.DataFrame:
    """Any 2-D input -> a DataFrame with the column names the schema uses; checks
    feature counts and names against fit time the way scikit-learn does."""
    if isinstance(X, pd.DataFrame):
        _refuse_repeated_names([str(c) for c in X.columns])
        _validate(estimator, X, reset)
        if X.shape[0] == 0:
            raise DataError(f"Found array with 0 sample(s) (shape={X.shape}).")
        frame = _containers_as_text(X.reset_index(drop=True))
        frame.columns = _frame_columns(estimator, [str(c) for c in X.columns], reset)
        return frame
    try:
        array = check_array(X, dtype=None, ensure_all_finite="allow-nan")
    except ValueError as error:
        _name_infinities(X)
        raise DataError(str(error)) from error
    _validate(estimator, array, reset)
    names = [str(i) for i in range(array.shape[1])]
    if not reset and hasattr(estimator, "feature_names_in_"):
        names = [str(c) for c in estimator.feature_names_in_]  # a DataFrame-fitted model
    frame = pd.DataFrame(array, columns=names)
    if array.dtype == object:  # numbers stored as objects become numeric columns
        frame = _containers_as_text(frame)
        for column in frame.columns:
            converted = pd.to_numeric(frame[column], errors="coerce")
            if converted.notna().sum() == frame[column].notna().sum():
                frame[column] = converted
    return frame


def _name_infinities(X) -> None:
    """Raise SchemaError naming the first column of a numeric array that holds +-inf and its
    rows, as a DataFrame's are named (scikit-learn's message names neither)."""
    try:
        values = np.asarray(X)
    except (TypeError, ValueError):
        return
    if values.dtype.kind == "f" and values.ndim == 2:
        columns = {str(j): values[:, j] for j in range(values.shape[1])}
        refuse_infinities(columns, pd.RangeIndex(len(values)))


def _validate(estimator, X, reset: bool) -> None:
    """scikit-learn's feature count and name checks, its ValueError as a SchemaError (still
    a ValueError) so that callers see one kind of error for a table that does not fit."""
    try:
        validate_data(estimator, X, reset=reset, skip_check_array=True)
    except SchemaError:
        raise
    except ValueError as error:
        raise SchemaError(str(error)) from None


def _refuse_repeated_names(names: list[str]) -> None:
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataError(
            f"Column names must be unique; {', '.join(map(repr, repeated[:10]))} appear more "
            f"than once. Rename or drop the repeats."
        )


_CONTAINERS = (list, tuple, dict, set, np.ndarray)


def _containers_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Cells holding lists, dicts or arrays (a Parquet list or struct column, JSON data)
    become their JSON text: a value like any other string, so a column of them is a
    category or is dropped for its number of values, never a crash."""
    for name in frame.columns[[dtype == np.dtype(object) for dtype in frame.dtypes]]:
        values = frame[name].to_numpy()
        nested = np.fromiter((isinstance(v, _CONTAINERS) for v in values), bool, len(values))
        if nested.any():
            frame[name] = [_json_text(v) if n else v for v, n in zip(values, nested)]
    return frame


def _json_text(value) -> str:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, set | tuple):
        value = sorted(value, key=str) if isinstance(value, set) else list(value)
    return json.dumps(value, default=str, sort_keys=True)


def _frame_columns(estimator, names: list[str], reset: bool) -> list[str]:
    """A model fitted on an array reads a DataFrame's columns by position (scikit-learn
    has warned about the names by then)."""
    if reset or hasattr(estimator, "feature_names_in_") or not hasattr(estimator, "schema_"):
        return names
    if set(estimator.schema_.features) <= set(names):
        return names
    return [str(i) for i in range(len(names))]


def as_target(y, n_rows: int) -> pd.Series | pd.DataFrame:
    """y as a Series (or a DataFrame of label columns); missing labels stay missing
    for ``drop_missing_targets``."""
    if isinstance(y, pd.DataFrame) and y.shape[1] > 1:
        target = y.reset_index(drop=True)
        target.columns = [str(c) for c in target.columns]
    elif isinstance(y, pd.Series | pd.DataFrame):
        values = y.squeeze(axis=1) if isinstance(y, pd.DataFrame) else y
        name = str(values.name) if values.name is not None else "target"
        target = values.reset_index(drop=True).rename(name)
    else:
        target = _array_target(np.asarray(y))
    if len(target) != n_rows:
        raise DataError(
            f"Found input variables with inconsistent numbers of samples: X has {n_rows} "
            f"rows but y has {len(target)}."
        )
    _reject_infinity(pd.DataFrame(target).select_dtypes("number").to_numpy(np.float64))
    return target


def aligned(estimator, X: pd.DataFrame, *, check: bool = True) -> pd.DataFrame:
    """The columns the estimator was fitted on, in fit order: missing feature columns are
    named in an error, extra columns are ignored, and columns the schema dropped may be
    absent (they are filled with missing values, never read). ``check``: also hold the
    values to the schema here, so that errors name rows by X's own index (a caller that
    checks the result itself, rows named by position, passes False)."""
    if check:
        estimator.schema_.check(X)  # names any missing feature column, or bad value
    else:
        estimator.schema_.require_columns(X)
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        return X
    return X.reindex(columns=list(names))
