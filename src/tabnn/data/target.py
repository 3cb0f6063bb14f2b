"""Choosing the target: column specs (a name, an index, a list, a slice) resolved against a
table, and the target split off (several 0/1 columns, or one column of label sets)."""

from __future__ import annotations

import difflib
import re

import numpy as np
import pandas as pd

from ..errors import DataError, UsageError

_MAX_LISTED = 20


_SLICE = re.compile(r"^(-?\d*):(-?\d*)(?::(-?\d+))?$")
_INT = re.compile(r"^[+-]?\d+$")


def resolve_columns(frame: pd.DataFrame, spec: str) -> list[str]:
    """Turn a user's column spec into column names of ``frame``.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table whose columns are meant.
    spec : str
        Comma-separated items. Each is an exact column name, else a stripped case-insensitive
        name, else an integer index (``-1`` is the last column), else a slice of indices such
        as ``-6:`` or ``2:5``. An exact name wins over an index, so header-less tables
        (columns ``"0"`` .. ``"n-1"``) agree either way.

    Returns
    -------
    list of str
        The column names, in the order given, without repeats.

    Raises
    ------
    UsageError
        An item matches no column (with close matches), an index is out of range or a slice
        selects nothing.

    Examples
    --------
    >>> frame = pd.DataFrame(columns=["PassengerId", "Survived", "Age"])
    >>> resolve_columns(frame, "survived")
    ['Survived']
    >>> resolve_columns(frame, "-2:")
    ['Survived', 'Age']
    """
    columns = [str(c) for c in frame.columns]
    if spec in columns:  # a name that itself contains a comma
        return [spec]
    items = [item for item in str(spec).split(",") if item.strip()]
    if not items:
        raise UsageError(f"Expected a column name or index, got {spec!r}.")
    resolved: list[str] = []
    for item in items:
        for name in _resolve_item(columns, item):
            if name not in resolved:
                resolved.append(name)
    return resolved


def split_target(
    frame: pd.DataFrame, target: str, *, label_sep: str | None = None
) -> tuple[pd.DataFrame, pd.Series | pd.DataFrame]:
    """Split a table into features ``X`` and target ``y``.

    Parameters
    ----------
    frame : pandas.DataFrame
        The whole table.
    target : str
        Column spec as for :func:`resolve_columns`.
    label_sep : str, optional
        The single target column holds delimited label sets (``"jazz|calm"``); it becomes a
        0/1 frame with one column per label (sorted). An empty or missing cell means no labels
        (a CSV cannot tell the two apart).

    Returns
    -------
    X : pandas.DataFrame
        Every other column.
    y : pandas.Series or pandas.DataFrame
        A Series for one target column, a DataFrame for several (multi-label).

    Raises
    ------
    UsageError
        Unknown columns, or ``label_sep`` with several target columns.

    Examples
    --------
    >>> frame = pd.DataFrame({"x": [1, 2], "tags": ["jazz|calm", ""]})
    >>> X, y = split_target(frame, "tags", label_sep="|")
    >>> y.to_dict("list")
    {'calm': [1, 0], 'jazz': [1, 0]}
    """
    names = resolve_columns(frame, target)
    X = frame.drop(columns=names)
    if label_sep is not None:
        return X, explode_labels(frame[label_set_column(names)], label_sep)
    if len(names) == 1:
        return X, frame[names[0]]
    return X, frame[names]


# --------------------------------------------------------------------------- files


def spec_notes(frame: pd.DataFrame, spec: str) -> list[str]:
    """What a reader of ``spec`` could take another way: an item that is the exact name of
    one column and, as a position, points to another (a column named ``-1``)."""
    columns = [str(c) for c in frame.columns]
    notes = []
    for item in (part.strip() for part in spec.split(",")):
        if item not in columns or not _INT.match(item):
            continue
        index = int(item)
        if -len(columns) <= index < len(columns) and columns[index] != item:
            notes.append(
                f"{item!r} is taken as the column named {item!r}, not as position {index} "
                f"(column {columns[index]!r}): an exact name wins over a position."
            )
    return notes


def _resolve_item(columns: list[str], item: str) -> list[str]:
    """Names for one item of a column spec."""
    if item in columns:
        return [item]
    folded = item.strip().casefold()
    matches = [c for c in columns if c.strip().casefold() == folded]
    if len(matches) == 1:
        return matches
    if len(matches) > 1:
        raise UsageError(
            f"Column {item.strip()!r} matches several columns ignoring case: "
            f"{', '.join(matches)}. Give the exact name."
        )
    stripped = item.strip()
    if _INT.match(stripped):
        return [columns[_check_index(columns, int(stripped))]]
    slice_match = _SLICE.match(stripped)
    if slice_match:
        return _resolve_slice(columns, stripped, slice_match)
    raise UsageError(_not_found_message(columns, stripped))


def _check_index(columns: list[str], index: int) -> int:
    """A valid index into ``columns``, or UsageError naming the column count."""
    n = len(columns)
    if not -n <= index < n:
        raise UsageError(
            f"Column index {index} is out of range: the table has {n} columns "
            f"(indices 0..{n - 1}, or -{n}..-1 from the end)."
        )
    return index


def _resolve_slice(columns: list[str], text: str, match: re.Match) -> list[str]:
    """Names selected by a ``start:stop[:step]`` slice of indices."""
    start, stop, step = (int(g) if g else None for g in match.groups())
    if step == 0:
        raise UsageError(f"Column slice {text!r} has a step of 0; use a non-zero step.")
    chosen = columns[slice(start, stop, step)]
    if not chosen:
        raise UsageError(
            f"Column slice {text!r} selects no columns: the table has {len(columns)} columns."
        )
    return chosen


def _not_found_message(columns: list[str], name: str) -> str:
    """'Column X not found. Did you mean Y? Available: ...'."""
    return f"Column {name!r} not found.{did_you_mean(name, columns)} Available: {_listing(columns)}"


def did_you_mean(name: str, choices: list[str]) -> str:
    """' Did you mean 'x'?' for the closest choice (case-insensitive), else ''."""
    by_fold = {c.casefold(): c for c in reversed(choices)}
    close = difflib.get_close_matches(name.casefold(), list(by_fold), n=3, cutoff=0.6)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(by_fold[c]) for c in close) + "?"


def _listing(columns: list[str]) -> str:
    """Column names joined by commas, truncated for wide tables."""
    if len(columns) <= _MAX_LISTED:
        return ", ".join(columns)
    shown = ", ".join(columns[:_MAX_LISTED])
    return f"{shown}, ... ({len(columns) - _MAX_LISTED} more)"


# --------------------------------------------------------------------------- label sets


def label_set_column(names: list[str]) -> str:
    """The target column holding label sets: the one named (UsageError for several)."""
    if len(names) > 1:
        raise UsageError(
            f"A label separator needs one target column holding label sets, "
            f"got {len(names)}: {', '.join(names)}. Drop --label-sep for 0/1 label columns."
        )
    return names[0]


def explode_labels(
    column: pd.Series, label_sep: str, labels: list[str] | None = None
) -> pd.DataFrame:
    """One column of delimited label sets -> 0/1 frame, one column per label: ``labels``
    (a whole table's, for a part of it), else the column's own, sorted, refusing none.

    An empty cell is the empty label set (a row with none of the labels): in a CSV an
    empty cell cannot be told apart from a missing one, and "no label" is the common case.
    """
    sets = _label_sets(column, label_sep)
    labels = sorted(set().union(*sets)) if labels is None else labels
    if not labels:
        raise DataError(
            f"Target column {column.name!r} split on {label_sep!r} holds no labels. "
            f"Expected label sets such as 'jazz{label_sep}calm'."
        )
    matrix = np.array([[label in s for label in labels] for s in sets], dtype="int64")
    return pd.DataFrame(matrix.reshape(len(sets), len(labels)), columns=labels, index=column.index)


def label_names(column: pd.Series, label_sep: str) -> set[str]:
    """The labels a column of label sets holds."""
    return set().union(*_label_sets(column, label_sep))


def _label_sets(column: pd.Series, label_sep: str) -> list[set[str]]:
    if not label_sep:
        raise UsageError("The label separator must not be empty; try '|' or ';'.")
    return [set() if pd.isna(value) else _label_set(value, label_sep) for value in column]


def _label_set(value, label_sep: str) -> set[str]:
    """The labels of one cell; numbers read from text are rendered without '.0'."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return {part.strip() for part in str(value).split(label_sep) if part.strip()}
