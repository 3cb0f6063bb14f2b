"""Honest evaluation: stratified splits and folds, metrics, and the baselines to beat.

This module computes numbers only: it never prints, never imports torch, and every value it
returns is a plain Python ``float``, ``int``, ``list``, ``dict`` or ``None`` (JSON-able).

Conventions shared with the rest of tabnn:

- ``task`` is one of ``"binary"``, ``"multiclass"``, ``"multilabel"``.
- Encoded targets: binary ``(n,)`` of 0/1; multiclass ``(n,)`` of class indices ``0..K-1``;
  multilabel ``(n, L)`` of 0/1.
- Probabilities: binary ``(n,)`` = P(class 1); multiclass ``(n, K)``; multilabel ``(n, L)``
  per-label probabilities.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import sklearn
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold, MultilabelStratifiedShuffleSplit
from numpy.typing import ArrayLike
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    hamming_loss,
    log_loss,
    roc_auc_score,
    roc_curve,
)
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit
from threadpoolctl import threadpool_limits

from tabnn.errors import DataError, UsageError

__all__ = [
    "HIGHER_IS_BETTER",
    "PRIMARY_METRIC",
    "TASKS",
    "THRESHOLD_METRICS",
    "baseline_scores",
    "class_counts",
    "compute_metrics",
    "describe_threshold",
    "parse_threshold_metric",
    "split_indices",
    "stratified_folds",
    "tune_threshold",
]

TASKS = ("binary", "multiclass", "multilabel")

#: The metric that picks a winner (model selection, early-stopping reports) for each task.
PRIMARY_METRIC = {"binary": "accuracy", "multiclass": "accuracy", "multilabel": "f1_micro"}

#: Every scalar metric that :func:`compute_metrics` returns, and whether a larger value is better.
#: Its keys are exactly the numbers worth averaging over folds.
HIGHER_IS_BETTER = {
    "accuracy": True,
    "balanced_accuracy": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "mcc": True,
    "roc_auc": True,
    "pr_auc": True,
    "log_loss": False,
    "brier": False,
    "f1_macro": True,
    "f1_weighted": True,
    "roc_auc_ovr_macro": True,
    "hamming_loss": False,
    "subset_accuracy": True,
    "f1_micro": True,
    "roc_auc_macro": True,
}

# Probabilities are clipped away from 0 and 1 so that one confident mistake gives a large,
# finite log loss instead of infinity.
_EPS = 1e-15


# --------------------------------------------------------------------------------------------
# Input checks


def _check_task(task: str) -> None:
    """Raise UsageError unless task is one of TASKS."""
    if task not in TASKS:
        raise UsageError(f"task must be one of {', '.join(map(repr, TASKS))}, got {task!r}")


def _as_target(y: ArrayLike, task: str, name: str = "y") -> np.ndarray:
    """Return y as int64, 1-D for binary/multiclass and 2-D for multilabel, checked."""
    _check_task(task)
    arr = np.asarray(y)
    if task != "multilabel" and arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    want = 2 if task == "multilabel" else 1
    if arr.ndim != want:
        raise UsageError(f"{name} for a {task} task must be {want}-D, got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{name} must be numeric encoded labels, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise DataError(f"{name} contains missing or infinite values")
    out = arr.astype(np.int64)
    if np.any(out != arr):
        raise DataError(f"{name} must hold whole-number labels, got fractional values")
    if task != "multiclass" and out.size and not np.all((out == 0) | (out == 1)):
        raise DataError(f"{name} for a {task} task must hold only 0 and 1")
    if task == "multiclass" and out.size and out.min() < 0:
        raise DataError(f"{name} must hold class indices 0..K-1, got {int(out.min())}")
    return out


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
    arr = _as_target(y, task)
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

    - a class with a single row cannot be stratified, so it is pooled with the most frequent
      class for stratification (it still lands in exactly one split);
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
    arr = _as_target(y, task)
    n_rows = len(arr)
    n_test, n_val = _n_out(test_size, n_rows), _n_out(val_size, n_rows)
    if n_rows == 0 or n_rows - n_test - n_val < 1:
        need = _min_rows(val_size, test_size)
        raise DataError(
            f"cannot split {_rows(n_rows)} into train/validation/test sets with "
            f"val_size={val_size} and test_size={test_size}: at least {need} rows are needed"
        )
    rows = np.arange(n_rows)
    rest, test = _split_off(arr, task, rows, n_test, seed, min_keep=n_val + 1)
    train, val = _split_off(arr, task, rest, n_val, seed, min_keep=1)
    return train, val, test


# --------------------------------------------------------------------------------------------
# Cross-validation folds


def _check_fold_counts(arr: np.ndarray, task: str, n_splits: int) -> None:
    """Raise UsageError when there are too few rows (of some class) for n_splits folds."""
    if task == "multilabel":
        if len(arr) < n_splits:
            raise UsageError(f"{n_splits} folds need at least {n_splits} rows; got {len(arr)}")
        return
    # Binary counts always show both classes, so a missing class reads as 0 rows.
    counts = class_counts(arr, task)
    if not counts or min(counts.values()) < n_splits:
        raise UsageError(
            f"{n_splits} folds need at least {n_splits} rows of every class; class counts: {counts}"
        )


def stratified_folds(
    y: ArrayLike, task: str, *, n_splits: int = 5, repeats: int = 1, seed: int = 0
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
    arr = _as_target(y, task)
    _check_fold_counts(arr, task, n_splits)
    if task == "multilabel":
        arr = _pad_labels(arr)
    folds = []
    for r in range(repeats):
        kind = MultilabelStratifiedKFold if task == "multilabel" else StratifiedKFold
        splitter = kind(n_splits=n_splits, shuffle=True, random_state=seed + r)
        for train, val in splitter.split(np.zeros(len(arr)), arr):
            folds.append((np.sort(train).astype(np.int64), np.sort(val).astype(np.int64)))
    return folds


# --------------------------------------------------------------------------------------------
# Metrics


def _balanced_accuracy(cm: np.ndarray) -> float:
    """Mean recall over the classes present in y_true (scikit-learn's, without its warning)."""
    support = cm.sum(axis=1)
    present = support > 0
    return float(np.mean(np.diag(cm)[present] / support[present]))


def _mcc(cm: np.ndarray) -> float:
    """Matthews correlation from a confusion matrix, 0 when undefined (as scikit-learn)."""
    # Computed here because scikit-learn warns when y_true and y_pred hold a single class.
    t_sum, p_sum = cm.sum(axis=1).astype(float), cm.sum(axis=0).astype(float)
    n = t_sum.sum()
    cov_tp = np.trace(cm) * n - t_sum @ p_sum
    cov_pp, cov_tt = n**2 - p_sum @ p_sum, n**2 - t_sum @ t_sum
    if cov_pp * cov_tt == 0:
        return 0.0
    return float(cov_tp / math.sqrt(cov_tt * cov_pp))


def _auc_or_none(y: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC of one binary column, or None when y holds a single value."""
    if np.unique(y).size < 2:
        return None
    return float(roc_auc_score(y, score))


def _ovr_auc_macro(y: np.ndarray, proba: np.ndarray) -> float | None:
    """Mean one-vs-rest ROC AUC over the classes present in y; None with fewer than 2."""
    present = np.unique(y)
    if present.size < 2:
        return None
    return float(np.mean([roc_auc_score(y == k, proba[:, k]) for k in present]))


def _normalised(proba: np.ndarray) -> np.ndarray:
    """Clip probabilities away from 0 and 1, then make each row sum to 1."""
    clipped = np.clip(proba, _EPS, 1 - _EPS)
    return clipped / clipped.sum(axis=1, keepdims=True)


def _binary_confusion(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """2 x 2 confusion matrix (rows = true class 0, 1) by counting, as scikit-learn's."""
    return np.bincount(2 * y.astype(np.int64) + pred, minlength=4).reshape(2, 2)


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, 0 when undefined (scikit-learn's zero_division=0)."""
    return float(numerator / denominator) if denominator else 0.0


def _binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    """Metrics of P(class 1) scores p against 0/1 targets y.

    The counting metrics come straight from the confusion matrix: scikit-learn's metric
    functions re-validate their inputs on every call, which made scoring many folds cost
    more than training them.
    """
    pred = (p >= threshold).astype(np.int64)
    cm = _binary_confusion(y, pred)
    (tn, fp), (fn, tp) = cm
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    both = np.unique(y).size == 2
    # each class's probability clipped away from 0 and 1, as log_loss does
    log_p1, log_p0 = np.log(np.clip(p, _EPS, 1 - _EPS)), np.log(np.clip(1 - p, _EPS, 1 - _EPS))
    return {
        "accuracy": float((tp + tn) / len(y)),
        "balanced_accuracy": _balanced_accuracy(cm),
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "mcc": _mcc(cm),
        "roc_auc": float(roc_auc_score(y, p)) if both else None,
        "pr_auc": float(average_precision_score(y, p)) if both else None,
        "log_loss": float(-np.mean(np.where(y == 1, log_p1, log_p0))),
        "brier": float(np.mean((p - y) ** 2)),
        "confusion_matrix": cm.tolist(),
        "threshold": float(threshold),
    }


def _multiclass_metrics(y: np.ndarray, proba: np.ndarray) -> dict:
    """Metrics of (n, K) class probabilities against class indices y."""
    labels = list(range(proba.shape[1]))
    pred = proba.argmax(axis=1)
    cm = confusion_matrix(y, pred, labels=labels)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "balanced_accuracy": _balanced_accuracy(cm),
        "f1_macro": float(f1_score(y, pred, average="macro", zero_division=0)),
        "f1_weighted": float(f1_score(y, pred, average="weighted", zero_division=0)),
        "mcc": _mcc(cm),
        "roc_auc_ovr_macro": _ovr_auc_macro(y, proba),
        "log_loss": float(log_loss(y, _normalised(proba), labels=labels)),
        "confusion_matrix": cm.tolist(),
    }


def _multilabel_metrics(y: np.ndarray, proba: np.ndarray, threshold: float) -> dict:
    """Metrics of (n, L) per-label probabilities against a 0/1 label matrix y."""
    pred = (proba >= threshold).astype(np.int64)
    per_label = [_auc_or_none(y[:, j], proba[:, j]) for j in range(y.shape[1])]
    defined = [auc for auc in per_label if auc is not None]
    return {
        "hamming_loss": float(hamming_loss(y, pred)),
        "subset_accuracy": float(accuracy_score(y, pred)),
        "f1_micro": float(f1_score(y, pred, average="micro", zero_division=0)),
        "f1_macro": float(f1_score(y, pred, average="macro", zero_division=0)),
        "roc_auc_per_label": per_label,
        "roc_auc_macro": float(np.mean(defined)) if defined else None,
        "threshold": float(threshold),
    }


def _as_proba(proba: ArrayLike, task: str, n_rows: int) -> np.ndarray:
    """Return proba as float64 of the shape the task expects, checked against n_rows."""
    arr = np.asarray(proba, dtype=np.float64)
    # A scikit-learn style (n, 2) binary predict_proba is accepted: column 1 is P(class 1).
    if task == "binary" and arr.ndim == 2 and arr.shape[1] in (1, 2):
        arr = arr[:, -1]
    want = 1 if task == "binary" else 2
    if arr.ndim != want or arr.shape[0] != n_rows:
        raise UsageError(
            f"proba for a {task} task with {n_rows} rows must have "
            f"{'shape (n,)' if want == 1 else 'shape (n, K)'}, got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise DataError("proba contains missing or infinite values (did training diverge?)")
    return arr


def _n_outputs(task: str, y: np.ndarray, proba: np.ndarray) -> int:
    """Number of classes (or labels) the probabilities describe, checked against y."""
    k = 2 if task == "binary" else proba.shape[1]
    if task == "multilabel" and y.shape[1] != k:
        raise UsageError(f"y_true has {y.shape[1]} labels but proba has {k} columns")
    if task == "multiclass" and y.size and y.max() >= k:
        raise DataError(f"y_true holds class index {int(y.max())} but proba has only {k} columns")
    return k


def compute_metrics(
    task: str,
    y_true: ArrayLike,
    proba: ArrayLike,
    *,
    threshold: float = 0.5,
    class_names: Sequence[str] | None = None,
) -> dict:
    """Score predicted probabilities against encoded targets.

    Binary (predicted class 1 where ``proba >= threshold``): ``accuracy``,
    ``balanced_accuracy``, ``precision``, ``recall``, ``f1``, ``mcc``, ``roc_auc``, ``pr_auc``
    (average precision), ``log_loss``, ``brier``, ``confusion_matrix`` (rows = true class 0, 1)
    and ``threshold``.

    Multiclass (predicted class = argmax): ``accuracy``, ``balanced_accuracy``, ``f1_macro``,
    ``f1_weighted``, ``mcc``, ``roc_auc_ovr_macro``, ``log_loss`` and ``confusion_matrix``
    (K x K, rows = true class, over every class index ``0..K-1``).

    Multilabel (label predicted where ``proba >= threshold``): ``hamming_loss``,
    ``subset_accuracy``, ``f1_micro``, ``f1_macro``, ``roc_auc_per_label`` (a list),
    ``roc_auc_macro`` and ``threshold``.

    Metrics that are undefined on these rows never raise or warn:

    - binary ``roc_auc`` and ``pr_auc`` are None when ``y_true`` holds a single class;
    - ``roc_auc_ovr_macro`` is the mean one-vs-rest AUC over the classes *present* in
      ``y_true`` (equal to scikit-learn's ``roc_auc_score(multi_class="ovr")`` when all are
      present), None when fewer than two are present;
    - ``roc_auc_per_label`` holds None for a label with a single value in ``y_true``, and
      ``roc_auc_macro`` is the mean of the others (None if there are none);
    - precision, recall and F1 count 0/0 as 0 (``zero_division=0``); ``balanced_accuracy``
      averages recall over the classes present in ``y_true``; ``mcc`` is 0 when undefined;
      multiclass ``f1_macro`` averages over classes present in ``y_true`` or predicted;
    - ``log_loss`` knows every class (``labels=``), so absent classes are fine; probabilities
      are clipped to ``[1e-15, 1 - 1e-15]`` (and rows renormalised) to keep it finite.

    Parameters
    ----------
    task : {"binary", "multiclass", "multilabel"}
        The kind of target.
    y_true : array-like
        Encoded targets: ``(n,)`` of 0/1, ``(n,)`` of class indices, or ``(n, L)`` of 0/1.
    proba : array-like
        Binary ``(n,)`` P(class 1) (a scikit-learn style ``(n, 2)`` is accepted too);
        multiclass ``(n, K)``; multilabel ``(n, L)``.
    threshold : float, default=0.5
        Decision threshold for binary and multilabel predictions, in [0, 1].
    class_names : sequence of str, optional
        Names of the K classes (or L labels), returned under ``"class_names"`` so that a
        report can label the confusion matrix and per-label scores.

    Returns
    -------
    dict
        Metric name to a plain float, int, list or None. The scalar metrics are the keys of
        :data:`HIGHER_IS_BETTER`.

    Raises
    ------
    UsageError
        If shapes disagree, the task is unknown, the threshold is outside [0, 1] or
        ``class_names`` has the wrong length.
    DataError
        If there are no rows, the probabilities are not finite or a class index is out of range.

    Examples
    --------
    >>> m = compute_metrics("binary", [0, 0, 1, 1], [0.1, 0.6, 0.7, 0.9])
    >>> m["accuracy"], m["roc_auc"], m["confusion_matrix"]
    (0.75, 1.0, [[1, 1], [0, 2]])
    """
    y = _as_target(y_true, task, "y_true")
    if len(y) == 0:
        raise DataError("cannot compute metrics on 0 rows")
    p = _as_proba(proba, task, len(y))
    if not 0 <= threshold <= 1:
        raise UsageError(f"threshold must be in [0, 1], got {threshold!r}")
    k = _n_outputs(task, y, p)
    # the inputs are checked above; sklearn's own validation would double each call's cost
    with sklearn.config_context(skip_parameter_validation=True):
        if task == "binary":
            result = _binary_metrics(y, p, threshold)
        elif task == "multiclass":
            result = _multiclass_metrics(y, p)
        else:
            result = _multilabel_metrics(y, p, threshold)
    if class_names is not None:
        if len(class_names) != k:
            raise UsageError(f"class_names has {len(class_names)} names but there are {k} classes")
        result["class_names"] = [str(name) for name in class_names]
    return result


# --------------------------------------------------------------------------------------------
# Decision threshold

#: Metrics a binary decision threshold can be tuned to maximise; ``recall>=R`` and
#: ``precision>=P`` (R, P in (0, 1]) are accepted too.
THRESHOLD_METRICS = ("f1", "balanced_accuracy", "mcc")
_FLOOR = re.compile(r"^(recall|precision)>=(\d*\.?\d+)$")  # spaces removed first
_METRIC_TEXT = {"f1": "F1", "balanced_accuracy": "balanced accuracy", "mcc": "MCC"}


def parse_threshold_metric(metric: str) -> tuple[str, float | None]:
    """Split a threshold metric into the quantity and its floor.

    Examples
    --------
    >>> parse_threshold_metric("f1"), parse_threshold_metric("recall>=0.9")
    (('f1', None), ('recall', 0.9))
    """
    if isinstance(metric, str):
        if metric in THRESHOLD_METRICS:
            return metric, None
        match = _FLOOR.match(metric.replace(" ", ""))
        if match and 0 < float(match.group(2)) <= 1:
            return match.group(1), float(match.group(2))
    raise UsageError(
        f"A threshold metric is one of {', '.join(THRESHOLD_METRICS)}, 'recall>=R' or "
        f"'precision>=P' with R, P in (0, 1], such as 'recall>=0.9'. Got {metric!r} instead."
    )


def tune_threshold(y_true: ArrayLike, proba: ArrayLike, metric: str = "f1") -> dict:
    """Choose the binary decision threshold on P(class 1) that scores best on these rows.

    The candidates lie midway between consecutive distinct probabilities, and midway
    between the lowest one and 0: each predicts another set of rows positive
    (``proba >= threshold``, as ``compute_metrics``) and keeps the largest margin to the
    rows on either side. The candidate that predicts no row positive is left out. Ties go
    to the candidate nearest 0.5, the untuned default.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        0/1 targets; both classes must occur.
    proba : array-like of shape (n,)
        P(class 1); an ``(n, 2)`` array is accepted too.
    metric : str, default="f1"
        ``"f1"``, ``"balanced_accuracy"`` or ``"mcc"``: the threshold that maximises it.
        ``"recall>=R"``: the highest precision among thresholds whose recall is at least R
        (ties: the higher recall). ``"precision>=P"``: the highest recall among thresholds
        whose precision is at least P (ties: the higher precision).

    Returns
    -------
    dict
        ``threshold``, ``metric`` (as given), ``score`` (the maximised quantity: the metric,
        or precision under a recall floor and recall under a precision floor), ``precision``
        and ``recall`` at the threshold, and ``rows``.

    Raises
    ------
    UsageError
        An unknown metric.
    DataError
        ``y_true`` holds a single class, or no threshold reaches a precision floor.

    Examples
    --------
    >>> tune_threshold([0, 0, 1, 1], [0.1, 0.3, 0.4, 0.8])["threshold"]
    0.35
    >>> tune_threshold([0, 1, 0, 1], [0.2, 0.3, 0.6, 0.9], "recall>=1")["threshold"]
    0.25
    """
    y = _as_target(y_true, "binary", "y_true")
    p = _as_proba(proba, "binary", len(y))
    quantity, floor = parse_threshold_metric(metric)
    if np.unique(y).size < 2:
        raise DataError(
            f"The {len(y)} rows to choose a threshold on hold a single class; both are needed."
        )
    thresholds, tp, fp = _threshold_candidates(y, p)
    n_pos = int(y.sum())
    precision, recall = tp / (tp + fp), tp / n_pos
    values = _counting_scores(tp, fp, n_pos, len(y) - n_pos)
    values.update(precision=precision, recall=recall)
    if floor is None:
        keys, feasible = [values[quantity]], np.ones(len(thresholds), dtype=bool)
    else:
        other = "precision" if quantity == "recall" else "recall"
        keys, feasible = [values[other], values[quantity]], values[quantity] >= floor - 1e-12
        if not feasible.any():
            raise DataError(
                f"No threshold reaches {metric} on the {len(y)} rows: the highest "
                f"{quantity} is {values[quantity].max():.3f}. Lower the floor."
            )
    best = _best_candidate(thresholds, keys, feasible)
    return {
        "threshold": float(thresholds[best]),
        "metric": quantity if floor is None else f"{quantity}>={floor:g}",
        "score": float(keys[0][best]),
        "precision": float(precision[best]),
        "recall": float(recall[best]),
        "rows": len(y),
    }


def _threshold_candidates(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, ...]:
    """Candidate thresholds with their true- and false-positive counts, from the highest."""
    n_pos = int(y.sum())
    fpr, tpr, scores = roc_curve(y, p, drop_intermediate=False)
    # scores[0] is +inf (no row positive); predicting p >= scores[i] gives tpr[i], fpr[i]
    scores, tp, fp = scores[1:], np.rint(tpr[1:] * n_pos), np.rint(fpr[1:] * (len(y) - n_pos))
    return (scores + np.append(scores[1:], 0.0)) / 2, tp, fp


def _counting_scores(tp, fp, n_pos: int, n_neg: int) -> dict[str, np.ndarray]:
    """F1, balanced accuracy and MCC of every candidate, from its counts."""
    fn, tn = n_pos - tp, n_neg - fp
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    with np.errstate(invalid="ignore", divide="ignore"):
        mcc = np.where(denominator > 0, (tp * tn - fp * fn) / denominator, 0.0)
    return {
        "f1": 2 * tp / (2 * tp + fp + fn),
        "balanced_accuracy": (tp / n_pos + tn / n_neg) / 2,
        "mcc": mcc,
    }


def _best_candidate(thresholds: np.ndarray, keys: list[np.ndarray], feasible: np.ndarray) -> int:
    """Index of the feasible candidate with the largest keys (in order), then nearest 0.5."""
    rows = np.flatnonzero(feasible)
    # rounded, so that equal scores reached by other counts tie instead of differing in the
    # last bit; np.lexsort sorts by its last key first, ascending
    ordered = [np.round(key[rows], 12) for key in reversed(keys)]
    order = np.lexsort([-np.abs(thresholds[rows] - 0.5), *ordered])
    return int(rows[order[-1]])


def describe_threshold(tuning: dict) -> str:
    """How a tuned threshold was chosen, in words: 'maximising F1 (0.86)'."""
    quantity, floor = parse_threshold_metric(tuning["metric"])
    if floor is None:
        return f"maximising {_METRIC_TEXT[quantity]} ({tuning['score']:.3f})"
    other = "precision" if quantity == "recall" else "recall"
    return (
        f"the highest {other} ({tuning[other]:.3f}) with {quantity} >= {floor:g} "
        f"({tuning[quantity]:.3f})"
    )


# --------------------------------------------------------------------------------------------
# Baselines


def _as_design(X: ArrayLike, name: str, n_rows: int) -> np.ndarray:
    """Return X as a finite 2-D float matrix with n_rows rows."""
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be a numeric matrix (encode it first): {exc}") from exc
    if arr.ndim != 2 or arr.shape[0] != n_rows:
        raise UsageError(f"{name} must have shape ({n_rows}, n_features), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{name} contains missing or infinite values; fill them first")
    return arr


def _prior_proba(y_train: np.ndarray, task: str, n_eval: int, n_classes: int) -> np.ndarray:
    """Training class (or label) frequencies repeated for every evaluation row."""
    if task == "multiclass":
        prior = np.bincount(y_train, minlength=n_classes) / len(y_train)
    else:
        prior = y_train.mean(axis=0)
    return np.tile(prior, (n_eval, 1)) if task != "binary" else np.full(n_eval, prior)


def _logistic_columns(
    X_train: np.ndarray, y_train: np.ndarray, X_eval: np.ndarray, n_classes: int, seed: int
) -> np.ndarray:
    """(n_eval, n_classes) probabilities of a logistic regression on one 1-D target."""
    proba = np.zeros((len(X_eval), n_classes))
    present = np.unique(y_train)
    if present.size == 1:
        # A target constant in training: predict that constant, as nothing else was seen.
        proba[:, present[0]] = 1.0
        return proba
    model = LogisticRegression(max_iter=1000, random_state=seed)
    # A baseline that has not fully converged after 1000 iterations is still a fair baseline.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    # Classes missing from training keep probability 0, in class-index order.
    proba[:, model.classes_] = model.predict_proba(X_eval)
    return proba


def _logistic_proba(
    task: str, X_train: np.ndarray, y_train: np.ndarray, X_eval: np.ndarray, k: int, seed: int
) -> np.ndarray:
    """Logistic-regression probabilities in the task's layout (one model per label)."""
    if task == "binary":
        return _logistic_columns(X_train, y_train, X_eval, 2, seed)[:, 1]
    if task == "multiclass":
        return _logistic_columns(X_train, y_train, X_eval, k, seed)
    columns = [_logistic_columns(X_train, col, X_eval, 2, seed)[:, 1] for col in y_train.T]
    return np.column_stack(columns)


def _label_frequency_proba(y_train: np.ndarray, n_eval: int, seed: int) -> np.ndarray:
    """Random 0/1 labels, each drawn with its training frequency (hard 0/1 'probabilities')."""
    freq = y_train.mean(axis=0)
    draws = np.random.default_rng(seed).random((n_eval, len(freq)))
    return (draws < freq).astype(np.float64)


def baseline_scores(
    task: str,
    X_train: ArrayLike,
    y_train: ArrayLike,
    X_eval: ArrayLike,
    y_eval: ArrayLike,
    *,
    seed: int = 0,
    threshold: float = 0.5,
    n_classes: int | None = None,
) -> dict[str, dict]:
    """Score the simple baselines a neural network has to beat, on the same rows.

    - ``"most_frequent"``: probabilities are the training class frequencies (scikit-learn's
      ``DummyClassifier(strategy="prior")``); the prediction is the most frequent class, so
      binary and multilabel use threshold 0.5 here whatever ``threshold`` is (a tuned threshold
      would make this baseline predict the minority class). A binary training set split exactly
      50/50 predicts class 1. Multilabel: per label.
    - ``"logistic_regression"``: ``LogisticRegression(max_iter=1000)`` on the given numeric
      design matrices (already filled, scaled and one-hot encoded by the caller), scored with
      ``threshold``. Multilabel: one model per label; a target constant in training predicts
      that constant. Convergence warnings are silenced.
    - ``"label_frequency"`` (multilabel only): each label drawn at random with its training
      frequency from a generator seeded with ``seed``; its hard 0/1 draws are scored as
      probabilities. This is the micro-F1 floor for multi-label models.

    Parameters
    ----------
    task : {"binary", "multiclass", "multilabel"}
        The kind of target.
    X_train, X_eval : array-like of shape (n, n_features)
        Numeric design matrices without missing values.
    y_train, y_eval : array-like
        Encoded targets of the training and evaluation rows.
    seed : int, default=0
        Seed of the logistic regressions and of the label-frequency draws.
    threshold : float, default=0.5
        Decision threshold for the logistic-regression baseline (binary, multilabel).
    n_classes : int, optional
        Multiclass: the number of classes K. Defaults to the largest class index seen in either
        target plus one; pass it when the last class may be absent from both.

    Returns
    -------
    dict of str to dict
        Baseline name to its :func:`compute_metrics` result on the evaluation rows. Multiclass
        probabilities always have K columns in class-index order, also when a class is missing
        from the training rows.

    Examples
    --------
    >>> X = [[0.0], [1.0], [2.0], [3.0]]
    >>> scores = baseline_scores("binary", X, [0, 0, 0, 1], X, [0, 0, 0, 1])
    >>> scores["most_frequent"]["accuracy"]
    0.75
    """
    y_tr, y_ev = _as_target(y_train, task, "y_train"), _as_target(y_eval, task, "y_eval")
    if len(y_tr) == 0:
        raise DataError("cannot fit baselines on 0 training rows")
    X_tr = _as_design(X_train, "X_train", len(y_tr))
    X_ev = _as_design(X_eval, "X_eval", len(y_ev))
    if X_tr.shape[1] != X_ev.shape[1]:
        raise UsageError(f"X_train has {X_tr.shape[1]} columns but X_eval has {X_ev.shape[1]}")
    k = _baseline_classes(task, y_tr, y_ev, n_classes)
    # one BLAS thread: these are small solves, and on a busy machine extra threads made a
    # logistic regression on 200 rows take 100x longer
    with threadpool_limits(limits=1):
        scores = _baselines(task, X_tr, y_tr, X_ev, y_ev, k, seed, threshold)
    return scores


def _baselines(task, X_tr, y_tr, X_ev, y_ev, k, seed, threshold) -> dict:
    scores = {
        "most_frequent": compute_metrics(task, y_ev, _prior_proba(y_tr, task, len(y_ev), k)),
        "logistic_regression": compute_metrics(
            task, y_ev, _logistic_proba(task, X_tr, y_tr, X_ev, k, seed), threshold=threshold
        ),
    }
    if task == "multilabel":
        draws = _label_frequency_proba(y_tr, len(y_ev), seed)
        scores["label_frequency"] = compute_metrics(task, y_ev, draws)
    return scores


def _baseline_classes(task: str, y_tr: np.ndarray, y_ev: np.ndarray, n_classes: int | None) -> int:
    """Number of classes (K) or labels (L) of the baselines' probabilities, checked."""
    if task == "binary":
        return 2
    if task == "multilabel":
        if y_tr.shape[1] != y_ev.shape[1]:
            raise UsageError(f"y_train has {y_tr.shape[1]} labels but y_eval has {y_ev.shape[1]}")
        return y_tr.shape[1]
    seen = int(max(y_tr.max(), y_ev.max(initial=0))) + 1
    if n_classes is None:
        return seen
    if n_classes < seen:
        raise DataError(f"targets hold class index {seen - 1} but n_classes is {n_classes}")
    return n_classes


# --------------------------------------------------------------------------- comparison


def mean_std(scores: ArrayLike) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) of per-fold scores; std 0 for one fold."""
    values = np.asarray(scores, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0


def corrected_paired_t_test(
    scores_a: ArrayLike, scores_b: ArrayLike, *, n_train: int, n_test: int
) -> dict:
    """Compare two designs scored on the same folds: Nadeau and Bengio's corrected
    resampled t-test.

    The folds of (repeated) k-fold cross-validation share most of their training rows,
    so the per-fold differences are correlated and a plain paired t-test is far too
    confident. The correction inflates the variance of the mean difference from
    ``var / J`` to ``(1 / J + n_test / n_train) * var`` (Nadeau and Bengio, 2003,
    "Inference for the generalization error"; the test scikit-learn's model-comparison
    example uses).

    Parameters
    ----------
    scores_a, scores_b : array-like of shape (J,)
        Scores of the two designs on the same J folds, in the same order.
    n_train, n_test : int
        Rows a fold trains on and is scored on.

    Returns
    -------
    dict
        ``difference`` (mean of a - b), ``difference_std`` (over folds), ``t``,
        ``p_value`` (two-sided, J - 1 degrees of freedom) and ``folds``.

    Examples
    --------
    >>> result = corrected_paired_t_test([0.8, 0.9, 0.85], [0.7, 0.8, 0.8], n_train=80, n_test=20)
    >>> round(result["difference"], 3), result["folds"]
    (0.083, 3)
    """
    from scipy import stats

    diff = np.asarray(scores_a, dtype=np.float64) - np.asarray(scores_b, dtype=np.float64)
    if diff.ndim != 1 or diff.size < 2:
        raise UsageError(f"A paired test needs two or more folds; got {diff.size}.")
    mean, std = mean_std(diff)
    corrected = (1 / diff.size + n_test / n_train) * std**2
    if corrected == 0:
        t, p = (0.0, 1.0) if mean == 0 else (math.copysign(math.inf, mean), 0.0)
    else:
        t = mean / math.sqrt(corrected)
        p = float(2 * stats.t.sf(abs(t), df=diff.size - 1))
    return {"difference": mean, "difference_std": std, "t": t, "p_value": p, "folds": diff.size}


# --------------------------------------------------------------------------- held-out rows


def encoded_for_split(y: pd.Series | pd.DataFrame) -> tuple[np.ndarray, str]:
    """A target encoded just enough to stratify on, and its task: labels are factorised,
    several 0/1 columns stay a matrix."""
    if isinstance(y, pd.DataFrame):
        return y.to_numpy(dtype=np.float32), "multilabel"
    codes, uniques = pd.factorize(y, sort=True)
    return codes, "binary" if len(uniques) == 2 else "multiclass"


def holdout_evaluation(estimator, X_train, y_train, X, y, rows) -> dict:
    """Metrics of the model and both baselines on the same held-out rows.

    The model applies its ``threshold_``. The logistic-regression baseline applies the
    same threshold when the user fixed it, and 0.5 when the model's was tuned: a threshold
    tuned to the network's probabilities says nothing about the baseline's.
    """
    if len(rows) == 0:
        return {"rows": 0, "scores": {}}
    X_eval, y_eval = X.iloc[rows], y.iloc[rows]
    schema = estimator.schema_
    y_true = schema.encode_target(y_eval)
    model_scores = compute_metrics(
        estimator.task_, y_true, positive_proba(estimator, X_eval), threshold=estimator.threshold_
    )
    baselines = baseline_scores(
        estimator.task_,
        estimator.design_matrix(X_train),
        schema.encode_target(y_train),
        estimator.design_matrix(X_eval),
        y_true,
        seed=int(estimator.random_state or 0),
        threshold=estimator.threshold_ if estimator.threshold_tuning_ is None else 0.5,
    )
    return {"rows": len(rows), "scores": {"model": model_scores, **baselines}}


def aligned(estimator, X: pd.DataFrame) -> pd.DataFrame:
    """The columns the estimator was fitted on, in fit order: missing feature columns are
    named in an error, extra columns are ignored, and columns the schema dropped may be
    absent (they are filled with missing values, never read)."""
    estimator.schema_.check(X)  # names any missing feature column
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        return X
    return X.reindex(columns=list(names))


def positive_proba(estimator, X) -> np.ndarray:
    """Probabilities in evaluate's convention: P(positive) for binary tasks."""
    proba = estimator.predict_proba(aligned(estimator, X))
    return proba[:, 1] if estimator.task_ == "binary" else proba
