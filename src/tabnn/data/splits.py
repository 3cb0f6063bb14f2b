"""Which rows go where: class counts, stratified train/validation/test splits,
(repeated) stratified k-fold folds, and a target encoded just enough to stratify on.

Binary and multiclass targets are stratified with scikit-learn, multilabel targets with
iterstrat's iterative stratification; tiny or lopsided data falls back to a seeded shuffle
instead of crashing.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold, MultilabelStratifiedShuffleSplit
from numpy.typing import ArrayLike
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit

from ..errors import DataError, UsageError
from .encoded import as_target

__all__ = ["class_counts", "encoded_for_split", "split_indices", "stratified_folds"]


def _check_size(name: str, func: str, value: float) -> float:
    """Return value as a float in [0, 1), or raise a UsageError in scikit-learn's shape."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not 0 <= value < 1:
        raise UsageError(
            f"The {name!r} parameter of {func} must be a float in the range [0, 1). "
            f"Got {value!r} instead."
        )
    return float(value)


def _check_int(name: str, func: str, value: int, low: int) -> int:
    """Return value as an int >= low, or raise a UsageError in scikit-learn's shape."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or value < low:
        raise UsageError(
            f"The {name!r} parameter of {func} must be an int in the range [{low}, inf). "
            f"Got {value!r} instead."
        )
    return int(value)


# --------------------------------------------------------------------------------------------
# Class counts


def class_counts(y: ArrayLike, task: str, *, n_classes: int | None = None) -> dict[int, int]:
    """Count the rows of each class (or the positives of each label).

    Parameters
    ----------
    y : array-like
        Encoded targets: ``(n,)`` for binary and multiclass, ``(n, L)`` for multilabel.
    task : {"binary", "multiclass", "multilabel"}
        The kind of target.
    n_classes : int, optional
        Multiclass only: report every class ``0..n_classes-1``, including absent ones (count 0).
        Without it, only the classes present in ``y`` are reported.

    Returns
    -------
    dict of int to int
        Class index to row count, in index order. Binary always has keys 0 and 1; multilabel
        has one key per label column, counting its positive rows.

    Examples
    --------
    >>> class_counts([0, 1, 1, 1], "binary")
    {0: 1, 1: 3}
    >>> class_counts([[1, 0], [1, 1]], "multilabel")
    {0: 2, 1: 1}
    """
    arr = as_target(y, task)
    if task == "multilabel":
        return {i: int(c) for i, c in enumerate(arr.sum(axis=0))}
    if task == "binary":
        n_classes = 2
    if n_classes is not None:
        counts = np.bincount(arr, minlength=n_classes)
        return {i: int(c) for i, c in enumerate(counts)}
    values, counts = np.unique(arr, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts, strict=True)}


# --------------------------------------------------------------------------------------------
# Train / validation / test split


def _n_out(fraction: float, n_rows: int) -> int:
    """Rows for a split of this fraction: rounded up like scikit-learn, ignoring float noise."""
    # round() first so that 0.1 * 30 = 3.0000000000000004 gives 3 rows, not 4.
    return math.ceil(round(fraction * n_rows, 9))


def _rows(n: int) -> str:
    """'1 row' or 'n rows', for messages."""
    return f"{n} row" if n == 1 else f"{n} rows"


def _min_rows(val_size: float, test_size: float) -> int:
    """Fewest rows that leave at least one training row after both splits."""
    n = 1
    while n - _n_out(val_size, n) - _n_out(test_size, n) < 1:
        n += 1
    return n


def _merge_rare(labels: np.ndarray) -> np.ndarray:
    """Pool classes with a single row into the most frequent class (they cannot be stratified)."""
    values, counts = np.unique(labels, return_counts=True)
    rare = values[counts < 2]
    if rare.size == 0:
        return labels
    return np.where(np.isin(labels, rare), values[counts.argmax()], labels)


def _class_split(labels: np.ndarray, n_out: int, seed: int) -> tuple | None:
    """Stratified (keep, out) positions, or None where stratification is impossible."""
    strata = _merge_rare(labels)
    n_strata = np.unique(strata).size
    # StratifiedShuffleSplit needs at least one row per stratum on each side.
    if n_out < n_strata or labels.size - n_out < n_strata:
        return None
    sss = StratifiedShuffleSplit(n_splits=1, test_size=n_out, random_state=seed)
    return next(sss.split(np.zeros(labels.size), strata))


def _pad_labels(y: np.ndarray) -> np.ndarray:
    """Add an all-zero column to a single-label matrix so iterstrat sees a multilabel target."""
    if y.shape[1] >= 2:
        return y
    return np.column_stack([y, np.zeros(len(y), dtype=y.dtype)])


def _multilabel_split(y: np.ndarray, n_out: int, seed: int, min_keep: int) -> tuple | None:
    """Iteratively stratified (keep, out) positions, or None if the sizes come out unusable."""
    msss = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=n_out, random_state=seed)
    keep, out = next(msss.split(np.zeros(len(y)), _pad_labels(y)))
    # Iterative stratification trades exact sizes for label balance; on tiny data that can
    # leave a side empty or starve the next split.
    if out.size == 0 or keep.size < min_keep:
        return None
    return keep, out


def _shuffle_split(n_rows: int, n_out: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Unstratified (keep, out) positions from a seeded permutation."""
    perm = np.random.default_rng(seed).permutation(n_rows)
    return perm[n_out:], perm[:n_out]


def _split_off(
    y: np.ndarray, task: str, idx: np.ndarray, n_out: int, seed: int, min_keep: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split the rows idx into (kept, taken out) with about n_out rows taken out."""
    if n_out == 0:
        return idx, idx[:0]
    sub = y[idx]
    if task == "multilabel":
        parts = _multilabel_split(sub, n_out, seed, min_keep)
    else:
        parts = _class_split(sub, n_out, seed)
    if parts is None:
        parts = _shuffle_split(idx.size, n_out, seed)
    keep, out = parts
    return np.sort(idx[keep]), np.sort(idx[out])


def split_indices(
    y: ArrayLike,
    task: str,
    *,
    val_size: float = 0.15,
    test_size: float = 0.15,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split rows into stratified train, validation and test sets.

    The test rows are drawn first from all rows, then the validation rows from the rest; both
    sizes are fractions of *all* rows, rounded up as scikit-learn does (at least one row when the
    fraction is positive). Binary and multiclass targets are split with scikit-learn's
    ``StratifiedShuffleSplit``, multilabel targets with iterstrat's
    ``MultilabelStratifiedShuffleSplit`` (whose sizes may differ from the request by a few rows,
    in favour of label balance).

    Tiny or lopsided data never crashes; instead:

    - a class with one or two rows keeps its first row in the training rows, whatever the
      seed (set aside before the draw, when enough rows remain to draw from); a class with a
      single row cannot be stratified, so the rest is stratified with it pooled into the most
      frequent class; should the draw leave a class out of the training rows all the same,
      its rows are moved there unless that empties a split;
    - if a split has fewer rows than there are classes to stratify (or iterative stratification
      leaves a side empty), that split is drawn by a plain seeded shuffle instead.

    Parameters
    ----------
    y : array-like
        Encoded targets: ``(n,)`` for binary and multiclass, ``(n, L)`` for multilabel.
    task : {"binary", "multiclass", "multilabel"}
        The kind of target.
    val_size, test_size : float, default=0.15
        Fractions of all rows in [0, 1) whose sum is below 1. 0 gives an empty split.
    seed : int, default=0
        The same seed and data always give the same split.

    Returns
    -------
    train, val, test : ndarray of int64
        Sorted, disjoint row indices that together cover every row.

    Raises
    ------
    UsageError
        If a size is outside [0, 1) or the two sizes sum to 1 or more.
    DataError
        If there are too few rows to leave at least one row in each requested split.

    Examples
    --------
    >>> y = [0] * 10 + [1] * 10
    >>> train, val, test = split_indices(y, "binary", val_size=0.2, test_size=0.2, seed=0)
    >>> len(train), len(val), len(test)
    (12, 4, 4)
    """
    val_size = _check_size("val_size", "split_indices", val_size)
    test_size = _check_size("test_size", "split_indices", test_size)
    if val_size + test_size >= 1:
        raise UsageError(f"val_size + test_size must be below 1, got {val_size} + {test_size}")
    arr = as_target(y, task)
    n_rows = len(arr)
    n_test, n_val = _n_out(test_size, n_rows), _n_out(val_size, n_rows)
    if n_rows == 0 or n_rows - n_test - n_val < 1:
        need = _min_rows(val_size, test_size)
        raise DataError(
            f"cannot split {_rows(n_rows)} into train/validation/test sets with "
            f"val_size={val_size} and test_size={test_size}: at least {need} rows are needed"
        )
    rows = np.arange(n_rows)
    reserved = _rare_class_rows(arr) if task != "multilabel" else rows[:0]
    pool = np.setdiff1d(rows, reserved)
    if len(pool) < n_test + n_val:  # too few rows to set any aside: draw from all of them
        reserved, pool = rows[:0], rows
    rest, test = _split_off(arr, task, pool, n_test, seed, min_keep=n_val + 1)
    train, val = _split_off(arr, task, rest, n_val, seed, min_keep=1)
    train = np.sort(np.concatenate([train, reserved]))
    if task != "multilabel":
        train, val, test = _train_on_every_class(arr, train, val, test)
    return train, val, test


def _rare_class_rows(y: np.ndarray) -> np.ndarray:
    """The first row of every class with one or two rows: kept for training before the
    draw, so that whether the model sees such a class does not depend on the seed."""
    values, first, counts = np.unique(y, return_index=True, return_counts=True)
    return np.sort(first[counts <= 2])


def _train_on_every_class(y: np.ndarray, train, val, test) -> tuple:
    """Move the rows of a class that no training row holds (a class of one or two rows the
    draw put elsewhere) into the training rows: a model cannot learn, or be scored on, a
    class it never saw, and whether it saw it must not depend on the seed. A move that
    would empty the validation or test rows is not made (tiny tables)."""
    for label in np.setdiff1d(np.unique(y), y[train]):
        stay = [rows[y[rows] != label] for rows in (val, test)]
        if any(len(kept) == 0 < len(rows) for kept, rows in zip(stay, (val, test))):
            continue
        moved = [rows[y[rows] == label] for rows in (val, test)]
        train, (val, test) = np.sort(np.concatenate([train, *moved])), stay
    return train, val, test


# --------------------------------------------------------------------------------------------
# Cross-validation folds


def _check_fold_counts(arr: np.ndarray, task: str, n_splits: int, names=None) -> None:
    """Raise UsageError when there are too few rows (of some class) for n_splits folds,
    naming the classes that are short (by ``names[code]`` when given) and their counts."""
    if task == "multilabel":
        if len(arr) < n_splits:
            raise UsageError(f"{n_splits} folds need at least {n_splits} rows; got {len(arr)}")
        return
    # Binary counts always show both classes, so a missing class reads as 0 rows.
    counts = class_counts(arr, task)
    short = {code: n for code, n in counts.items() if n < n_splits}
    if not counts or short:
        listed = [
            f"{names[code] if names is not None else code!r} ({n} row{'s' if n != 1 else ''})"
            for code, n in list(short.items())[:10]
        ]
        more = f" and {len(short) - 10} more" if len(short) > 10 else ""
        raise UsageError(
            f"{n_splits} folds need at least {n_splits} rows of every class; too few: "
            f"{', '.join(listed)}{more}. Use fewer folds, or drop or merge those classes."
        )


def stratified_folds(
    y: ArrayLike,
    task: str,
    *,
    n_splits: int = 5,
    repeats: int = 1,
    seed: int = 0,
    class_names=None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Make (train, validation) row indices for repeated stratified k-fold cross-validation.

    Binary and multiclass targets use scikit-learn's ``StratifiedKFold(shuffle=True)``,
    multilabel targets iterstrat's ``MultilabelStratifiedKFold(shuffle=True)``. Repeat ``r``
    uses ``seed + r``, so the folds are reproducible and each repeat is a fresh shuffle.

    Parameters
    ----------
    y : array-like
        Encoded targets: ``(n,)`` for binary and multiclass, ``(n, L)`` for multilabel.
    task : {"binary", "multiclass", "multilabel"}
        The kind of target.
    n_splits : int, default=5
        Number of folds, at least 2.
    repeats : int, default=1
        Number of times the whole k-fold is repeated with a new shuffle.
    seed : int, default=0
        Seed of the first repeat.

    Returns
    -------
    list of (ndarray, ndarray)
        ``n_splits * repeats`` pairs of sorted int64 row indices, repeat by repeat. Within a
        repeat the validation parts are disjoint and cover every row.

    Raises
    ------
    UsageError
        If ``n_splits < 2`` or ``repeats < 1``; for binary and multiclass, if a class has fewer
        rows than folds (the message gives the class counts; binary counts both classes, so one
        missing class is an error, multiclass counts the classes present); for multilabel, if
        there are fewer rows than folds (a rare label is allowed to miss some folds).

    Examples
    --------
    >>> folds = stratified_folds([0, 1] * 10, "binary", n_splits=5, repeats=2)
    >>> len(folds), len(folds[0][1])
    (10, 4)
    """
    n_splits = _check_int("n_splits", "stratified_folds", n_splits, 2)
    repeats = _check_int("repeats", "stratified_folds", repeats, 1)
    arr = as_target(y, task)
    _check_fold_counts(arr, task, n_splits, class_names)
    if task == "multilabel":
        arr = _pad_labels(arr)
    folds = []
    for r in range(repeats):
        kind = MultilabelStratifiedKFold if task == "multilabel" else StratifiedKFold
        splitter = kind(n_splits=n_splits, shuffle=True, random_state=seed + r)
        for train, val in splitter.split(np.zeros(len(arr)), arr):
            folds.append((np.sort(train).astype(np.int64), np.sort(val).astype(np.int64)))
    return folds


def encoded_for_split(y: pd.Series | pd.DataFrame) -> tuple[np.ndarray, str]:
    """A target encoded just enough to stratify on, and its task: labels are factorised,
    several 0/1 columns stay a matrix."""
    if isinstance(y, pd.DataFrame):
        return y.to_numpy(dtype=np.float32), "multilabel"
    codes, uniques = pd.factorize(y, sort=True)
    return codes, "binary" if len(uniques) == 2 else "multiclass"
