"""Choosing a binary decision threshold on validation rows: the metrics it can maximise
(``THRESHOLD_METRICS``, or a ``recall>=R`` / ``precision>=P`` floor), their parser, the
tuning rule and the choice described in words.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import roc_curve

from ..data.encoded import as_proba, as_target
from ..errors import DataError, UsageError

if TYPE_CHECKING:  # torch: only once a network is trained
    from ..nn.network import TabularNetwork

__all__ = ["THRESHOLD_METRICS", "describe_threshold", "parse_threshold_metric", "tune_threshold"]


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
    y = as_target(y_true, "binary", "y_true")
    p = as_proba(proba, "binary", len(y))
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
# threshold="auto" inside a fit: the rows members validate on


def validation_union(member_rows) -> np.ndarray:
    """Every row some member validates on, sorted."""
    return np.unique(np.concatenate([val for _, val in member_rows]))


def held_out_by(rows: np.ndarray, member_rows) -> np.ndarray:
    """(members, rows) bool: which members validate on (held out) each of ``rows``."""
    return np.stack([np.isin(rows, val) for _, val in member_rows])


def held_out_mean(proba: np.ndarray, held_out: np.ndarray) -> np.ndarray:
    """Members' values (members, rows, ...) -> each row's mean over the members that held
    it out (``held_out_by``'s mask), (rows, ...): a row no member trained on."""
    by = held_out.reshape(held_out.shape + (1,) * (proba.ndim - 2))
    return (proba * by).sum(0) / by.sum(0)


def check_threshold_tuning(schema, y_all: np.ndarray, member_rows) -> None:
    """Refuse threshold='auto' before any training when it cannot work for this fit."""
    if schema.task != "binary":
        raise UsageError(
            f"threshold='auto' tunes the decision threshold of a binary target; this "
            f"target is {schema.task}. Leave the threshold out or pass a number."
        )
    validation = validation_union(member_rows)
    if len(validation) == 0:
        raise UsageError(
            "threshold='auto' chooses the threshold on the validation rows, but this fit "
            "has none (validation_fraction=0, or fewer than 10 rows). Give some "
            "validation rows or pass a number."
        )
    present = np.unique(y_all[validation])
    if len(present) < 2:
        raise DataError(
            f"threshold='auto' needs both classes among the {len(validation)} validation "
            f"rows, which hold only {schema.classes[int(present[0])]!r}. Use more rows "
            f"for validation or pass a number."
        )


def tune_on_validation_rows(y_all, rows, proba, member_rows, metric: str) -> tuple:
    """The threshold tuned on the validation ``rows`` and how (``tune_threshold``'s
    summary with ``members`` and ``members_per_row``).

    ``proba`` is (members, rows) P(positive). Each row is scored by the members that held
    it out (its mean over them), so no row is scored by a member that trained on it: the
    ensemble's averaged probability when members share their validation rows, each fold's
    own member when they do not.
    """
    pooled = held_out_mean(proba, held_out_by(rows, member_rows))  # (members, rows) -> (rows,)
    return tune_pooled_threshold(y_all, member_rows, pooled, metric)


def tune_pooled_threshold(y_all, member_rows, pooled, metric: str) -> tuple:
    """``tune_on_validation_rows`` for each validation row's P(positive) ``pooled`` already
    (rows in ``validation_union``'s order, each from the members that held it out; the
    model's, twin member included: ``estimator.recipe.held_out_threshold``)."""
    rows = validation_union(member_rows)
    try:
        tuning = tune_threshold(y_all[rows], pooled, metric)
    except DataError as error:
        raise DataError(f"Tuning the threshold on the validation rows: {error}") from None
    threshold = tuning.pop("threshold")
    per_row = float(held_out_by(rows, member_rows).sum(0).mean())
    return threshold, {**tuning, "members": len(member_rows), "members_per_row": per_row}


def tune_network_threshold(
    network: TabularNetwork, x_num, x_cat, y_all, member_rows, metric: str, temperature=None
) -> tuple:
    """The threshold ``threshold="auto"`` picks for a trained binary network: tuned on the
    members' validation rows of the encoded inputs -> (threshold, tuning). With a
    ``temperature`` (``calibrate=True``), on the calibrated probabilities ``predict``
    applies it to."""
    from ..nn.forward import (
        member_probabilities,  # torch: only once a network is trained
    )

    rows = validation_union(member_rows)
    x_num, x_cat = x_num[rows], x_cat[rows]
    proba = member_probabilities(network, "binary", x_num, x_cat, temperature=temperature)[..., 0]
    return tune_on_validation_rows(y_all, rows, proba, member_rows, metric)
