"""Encoded targets and probabilities, checked against their task: what metrics, splits and
threshold tuning accept (:func:`as_target`, :func:`as_proba`).

- Encoded targets: binary ``(n,)`` of 0/1; multiclass ``(n,)`` of class indices ``0..K-1``;
  multilabel ``(n, L)`` of 0/1.
- Probabilities: binary ``(n,)`` = P(class 1); multiclass ``(n, K)``; multilabel ``(n, L)``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ..errors import DataError, UsageError
from ..tasks import TASKS

__all__ = ["as_proba", "as_target", "check_task"]


def check_task(task: str) -> None:
    """Raise UsageError unless task is one of TASKS."""
    if task not in TASKS:
        raise UsageError(f"task must be one of {', '.join(map(repr, TASKS))}, got {task!r}")


def as_target(y: ArrayLike, task: str, name: str = "y") -> np.ndarray:
    """Return y as int64, 1-D for binary/multiclass and 2-D for multilabel, checked."""
    check_task(task)
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


def as_proba(proba: ArrayLike, task: str, n_rows: int) -> np.ndarray:
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
