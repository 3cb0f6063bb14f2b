"""What the report says about its inputs: the dataset summary, rows per class, and the
permutation importance of each original column.

These helpers compute numbers for :class:`~tabnn.report.data.ReportData` (the builders in
:mod:`tabnn.report.builders` call them); they draw nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from ..errors import UsageError
from ..evaluation.metrics import compute_metrics, log_loss
from ..evaluation.splits import class_counts
from ..tasks import HIGHER_IS_BETTER, TASKS

__all__ = ["counts_per_class", "dataset_summary", "permutation_importance"]

PERMUTED_ROWS = 200_000  # rows of shuffled copies predicted at once


def dataset_summary(schema, X: pd.DataFrame, rows: Mapping[str, int], *, source: str = "") -> dict:
    """The ``dataset`` part of :class:`~tabnn.report.data.ReportData`.

    Parameters
    ----------
    schema : Schema
        The fitted schema: columns kept by kind, columns dropped with their reasons, target.
    X : DataFrame
        The feature table as read (all splits), for its missing values.
    rows : mapping of str to int
        Rows per split, e.g. ``{"train": 140, "validation": 20, "test": 48}``.
    source : str, optional
        Where the table came from (a file name).

    Examples
    --------
    >>> from tabnn.schema import Schema
    >>> schema = Schema(["Age"], [], {"Name": "unique per row (ID-like)"}, "binary", ["y"], [0, 1])
    >>> X = pd.DataFrame({"Age": [1.0, None], "Name": ["a", "b"]})
    >>> dataset_summary(schema, X, {"train": 2})["missing"]
    {'Age': 1}
    """
    missing = X.isna().sum()
    return {
        "source": source,
        "rows": {str(k): int(v) for k, v in rows.items()},
        "table_rows": len(X),
        "numeric": list(schema.numeric),
        "categorical": list(schema.categorical),
        "dropped": dict(schema.dropped),
        "target": list(schema.target),
        "missing": {str(c): int(n) for c, n in missing.items() if n},
    }


def counts_per_class(y, task: str, n_classes: int) -> list[int]:
    """Rows of each class (positives of each label) as a list, absent classes counted 0.

    >>> counts_per_class([0, 2, 2], "multiclass", 3)
    [1, 0, 2]
    """
    counts = class_counts(y, task, n_classes=n_classes if task == "multiclass" else None)
    return [counts.get(k, 0) for k in range(n_classes)]


def _as_evaluated(p, task: str) -> np.ndarray:
    """Probabilities in compute_metrics' convention: P(class 1) for a binary task."""
    p = np.asarray(p, dtype=float)
    return p[:, -1] if task == "binary" and p.ndim == 2 else p  # scikit-learn's (n, 2)


def _scorer(task: str, metric: str) -> Callable:
    """(y, probabilities) -> a score where higher is better."""

    def score(y, p) -> float:
        if metric == "log_loss":
            return -log_loss(y, p, task)
        value = compute_metrics(task, y, p)[metric]
        return value if HIGHER_IS_BETTER[metric] else -value

    return score


def permutation_importance(
    predict_proba: Callable[[pd.DataFrame], np.ndarray],
    X: pd.DataFrame,
    y_true,
    task: str,
    *,
    metric: str = "log_loss",
    n_repeats: int = 5,
    seed: int = 0,
    max_rows: int | None = None,
) -> dict[str, tuple[float, float]]:
    """How much the score suffers when one original column is shuffled, column by column.

    As :func:`sklearn.inspection.permutation_importance`, on the user's columns (so
    importances carry their names, whatever the encoding does inside the model), with
    every shuffled copy of a group of columns scored in one prediction.

    Parameters
    ----------
    predict_proba : callable
        Frame -> probabilities, e.g. ``TabNNClassifier.predict_proba`` (a binary ``(n, 2)``
        is accepted) or any function in :func:`~tabnn.evaluation.metrics.compute_metrics`'s
        convention.
    X : DataFrame
        Held-out rows with the original columns.
    y_true : array-like
        Encoded targets of those rows.
    task : {"binary", "multiclass", "multilabel"}
    metric : str, default="log_loss"
        ``"log_loss"`` (importance = increase in log loss; defined for every task and smooth,
        so small effects show) or a scalar metric of ``compute_metrics`` for the task
        (importance = its drop, or its increase for a lower-is-better metric).
    n_repeats : int, default=5
        Shuffles per column; the result holds their mean and standard deviation.
    seed : int, default=0
    max_rows : int, optional
        Score a random subset of this many rows (faster on large tables).

    Returns
    -------
    dict of str to (float, float)
        Column -> (mean, std) of the importance, in the frame's column order.

    Examples
    --------
    >>> X = pd.DataFrame({"signal": [0.1, 0.9, 0.2, 0.8], "noise": [1, 1, 2, 2]})
    >>> proba = lambda frame: frame["signal"].to_numpy()
    >>> result = permutation_importance(proba, X, [0, 1, 0, 1], "binary", n_repeats=3)
    >>> result["signal"][0] > 0, result["noise"]
    (True, (0.0, 0.0))
    """
    if task not in TASKS:
        raise UsageError(f"task must be one of {', '.join(TASKS)}; got {task!r}")
    rng = np.random.default_rng(seed)
    y = np.asarray(y_true)
    if max_rows and len(X) > max_rows:
        keep = np.sort(rng.choice(len(X), max_rows, replace=False))
        X, y = X.iloc[keep], y[keep]
    X = X.reset_index(drop=True)
    scorer = _scorer(task, metric)
    unshuffled = _as_evaluated(predict_proba(X), task)
    if metric != "log_loss":
        scores = compute_metrics(task, y, unshuffled)
        valid = ["log_loss", *(m for m in scores if m in HIGHER_IS_BETTER)]
        if metric not in valid:
            raise UsageError(
                f"Unknown metric {metric!r} for a {task} task; valid: {', '.join(valid)}."
            )
    reference = scorer(y, unshuffled)
    # every shuffled copy of a group of columns goes through one prediction: per-call
    # overhead, not arithmetic, is what a column-by-column loop would pay
    n, per_group = len(X), max(1, PERMUTED_ROWS // max(1, len(X) * n_repeats))
    result = {}
    for start in range(0, X.shape[1], per_group):
        columns = list(X.columns[start : start + per_group])
        copies = []
        for column in columns:
            for _ in range(n_repeats):
                copy = X.copy()
                copy[column] = X[column].to_numpy()[rng.permutation(n)]
                copies.append(copy)
        proba = _as_evaluated(predict_proba(pd.concat(copies, ignore_index=True)), task)
        drops = [reference - scorer(y, proba[i * n : (i + 1) * n]) for i in range(len(copies))]
        for j, column in enumerate(columns):
            mine = np.array(drops[j * n_repeats : (j + 1) * n_repeats])
            result[str(column)] = (float(mine.mean()), float(mine.std()))
    return result
