"""Scoring probabilities: ``compute_metrics`` (every metric of a task), the one ``log_loss``,
the names of a task's single-number metrics, the ranking-metric check and the mean and
standard deviation of per-fold scores.

Encoded targets and probabilities are checked by :mod:`tabnn.data.encoded`. Every value it
returns is a plain Python ``float``, ``int``, ``list``, ``dict`` or ``None`` (JSON-able); it
never imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import sklearn
from numpy.typing import ArrayLike
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    hamming_loss,
    roc_auc_score,
)
from sklearn.metrics import log_loss as sklearn_log_loss

from ..data.encoded import as_proba, as_target
from ..errors import DataError, UsageError
from ..tasks import HIGHER_IS_BETTER, PRIMARY_METRIC

__all__ = [
    "check_metric",
    "compute_metrics",
    "log_loss",
    "mean_std",
    "metric_names",
]

# Probabilities are clipped away from 0 and 1 so that one confident mistake gives a large,
# finite log loss instead of infinity.
_EPS = 1e-15


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


def _binary_log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean log loss of P(class 1) scores p against 0/1 targets y."""
    # each class's probability clipped away from 0 and 1, as log_loss does
    log_p1, log_p0 = np.log(np.clip(p, _EPS, 1 - _EPS)), np.log(np.clip(1 - p, _EPS, 1 - _EPS))
    return float(-np.mean(np.where(y == 1, log_p1, log_p0)))


def _multiclass_log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean log loss of (n, K) class probabilities against class indices y, every class known."""
    labels = list(range(proba.shape[1]))
    return float(sklearn_log_loss(y, _normalised(proba), labels=labels))


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
    return {
        "accuracy": float((tp + tn) / len(y)),
        "balanced_accuracy": _balanced_accuracy(cm),
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "mcc": _mcc(cm),
        "roc_auc": float(roc_auc_score(y, p)) if both else None,
        "pr_auc": float(average_precision_score(y, p)) if both else None,
        "log_loss": _binary_log_loss(y, p),
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
        "log_loss": _multiclass_log_loss(y, proba),
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
        :data:`tabnn.tasks.HIGHER_IS_BETTER`.

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
    y = as_target(y_true, task, "y_true")
    if len(y) == 0:
        raise DataError("cannot compute metrics on 0 rows")
    p = as_proba(proba, task, len(y))
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


def log_loss(y_true: ArrayLike, proba: ArrayLike, task: str) -> float:
    """Mean log loss of predicted probabilities: the one log loss of tabnn.

    Binary and multiclass give exactly ``compute_metrics(task, y_true, proba)["log_loss"]``;
    multilabel (where ``compute_metrics`` reports none) gives the mean over labels of each
    label's binary log loss. Probabilities are clipped to ``[1e-15, 1 - 1e-15]`` (multiclass
    rows renormalised) to keep it finite.

    Parameters
    ----------
    y_true : array-like
        Encoded targets: ``(n,)`` of 0/1, ``(n,)`` of class indices, or ``(n, L)`` of 0/1.
    proba : array-like
        Binary ``(n,)`` P(class 1) (a scikit-learn style ``(n, 2)`` is accepted too);
        multiclass ``(n, K)``; multilabel ``(n, L)``.
    task : {"binary", "multiclass", "multilabel"}
        The kind of target.

    Returns
    -------
    float
        Lower is better.

    Raises
    ------
    UsageError
        If shapes disagree or the task is unknown.
    DataError
        If there are no rows, the probabilities are not finite or a class index is out of range.

    Examples
    --------
    >>> round(log_loss([0, 1], [0.2, 0.9], "binary"), 4)
    0.1643
    """
    y = as_target(y_true, task, "y_true")
    if len(y) == 0:
        raise DataError("cannot compute a log loss on 0 rows")
    p = as_proba(proba, task, len(y))
    _n_outputs(task, y, p)
    with sklearn.config_context(skip_parameter_validation=True):
        if task == "binary":
            return _binary_log_loss(y, p)
        if task == "multiclass":
            return _multiclass_log_loss(y, p)
        return float(np.mean([_binary_log_loss(y[:, j], p[:, j]) for j in range(y.shape[1])]))


# --------------------------------------------------------------------------------------------
# Metric names and summaries


def metric_names(task: str) -> list[str]:
    """The single-number metrics a task reports, any of which can rank designs."""
    probe = {
        "binary": ("binary", np.array([0.0, 1.0]), np.array([0.3, 0.7])),
        "multiclass": ("multiclass", np.array([0, 1, 2]), np.eye(3) * 0.7 + 0.1),
        "multilabel": ("multilabel", np.eye(2), np.eye(2) * 0.8 + 0.1),
    }[task]
    scores = compute_metrics(*probe)
    return [name for name in scores if name in HIGHER_IS_BETTER]


def check_metric(metric: str | None, task: str) -> str:
    """The metric to rank by: the task's primary metric by default."""
    metric = metric or PRIMARY_METRIC[task]
    valid = metric_names(task)
    if metric not in valid:
        raise UsageError(f"Unknown metric {metric!r} for a {task} task; valid: {', '.join(valid)}.")
    return metric


def mean_std(scores: ArrayLike) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) of per-fold scores; std 0 for one fold."""
    values = np.asarray(scores, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0
