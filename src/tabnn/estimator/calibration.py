"""Post-hoc temperature scaling and the expected calibration error.

Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017)
divides a trained network's logits by a temperature ``T`` fitted after training: ``T > 1``
softens over-confident probabilities, ``T < 1`` sharpens timid ones. It never changes
which class has the largest logit, so multi-class predictions stay as they are, and for a
binary or multi-label output it is a monotone map of each probability.

``TabNNClassifier(calibrate=True)`` fits it on the estimator's own validation rows, the
rows early stopping watches (``eval_set`` or the ``validation_fraction`` split), by
minimising their log loss over ``log T``: one ``T`` for binary and multi-class tasks
(sigmoid or softmax of ``logits / T``), one per label for multi-label tasks. Every stack
member's logits are divided by the same ``T`` before the members' probabilities are
averaged, as ``predict_proba`` averages them, and each validation row is scored by the
members that held it out (all of them for an ensemble, its own fold's member for fold
stacks). For the default efficient ensemble, a member's logits are those of its inner
ensemble's mean probability (``tabnn.nn.ensemble``). ``T`` is searched in
``TEMPERATURE_BOUNDS`` by bounded Brent (scipy), which is deterministic.

An output keeps ``T = 1`` when its validation rows cannot pin a temperature down: when they
all carry the same target, or when the log loss has no minimum inside the bounds. Both
happen on small validation sets: if every validation row is predicted right (iris's 11
rows often are), the log loss keeps falling as ``T`` goes to 0, and fitting it would make
the model certain of everything, so that its first mistake on new rows costs a log loss of
tens. It also keeps 1 when the search finds nothing better than 1.

:func:`expected_calibration_error` and :func:`reliability` measure what it gains (see
there); scikit-learn has ``calibration_curve`` but no ECE.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UsageError

if TYPE_CHECKING:  # torch: only once a network is trained
    from ..nn.network import TabularNetwork

__all__ = [
    "BINS",
    "TEMPERATURE_BOUNDS",
    "check_calibration",
    "expected_calibration_error",
    "fit_temperature",
    "network_temperature",
    "reliability",
    "uncalibrated_proba",
]

BINS = 15  # equal-width confidence bins of the expected calibration error
TEMPERATURE_BOUNDS = (0.05, 20.0)  # the search range of each temperature
BOUND_MARGIN = 1e-3  # an optimum of log T this close to a bound is taken as none


def check_calibration(member_rows) -> None:
    """Refuse ``calibrate=True`` before any training when the fit has no validation rows."""
    if not any(len(val) for _, val in member_rows):
        raise UsageError(
            "calibrate=True fits the temperature on the validation rows, but this fit has "
            "none (validation_fraction=0, an empty eval_set, or fewer than 10 rows). Give "
            "some validation rows or leave calibrate out."
        )


# --------------------------------------------------------------------------- fitting


def _log_mean_probabilities(logits: np.ndarray, weights: np.ndarray, task: str) -> tuple:
    """Log of the members' weighted mean probabilities, computed in log space so that
    certain predictions stay finite: (log P) for multi-class, (log P(1), log P(0)) else.
    ``logits`` (members, rows, outputs), ``weights`` (members, rows, 1) of 0/1."""
    from scipy.special import log_softmax, logsumexp

    count = np.log(weights.sum(0))
    if task == "multiclass":
        return (logsumexp(log_softmax(logits, axis=-1), axis=0, b=weights) - count,)
    positive = -np.logaddexp(0.0, -logits)  # log sigmoid
    negative = -np.logaddexp(0.0, logits)
    return (
        logsumexp(positive, axis=0, b=weights) - count,
        logsumexp(negative, axis=0, b=weights) - count,
    )


def _mean_log_loss(logits, weights, y, task: str) -> float:
    """The log loss of the members' mean probability for targets ``y``: class indices
    (multi-class) or 0/1 of one output (binary, one label)."""
    if task == "multiclass":
        (log_p,) = _log_mean_probabilities(logits, weights, task)
        return float(-log_p[np.arange(len(y)), y].mean())
    log_one, log_zero = _log_mean_probabilities(logits, weights, task)
    return float(-np.where(y[:, None] == 1, log_one, log_zero).mean())


def fit_temperature(logits, y, task: str, held_out: np.ndarray | None = None) -> np.ndarray:
    """The temperatures that minimise the log loss of ``logits / T`` on these rows.

    Parameters
    ----------
    logits : array of shape (members, rows, outputs)
        The network's logits (one output for binary tasks).
    y : array
        Encoded targets of the rows: (rows,) 0/1 or class indices, (rows, labels) of 0/1.
    task : {"binary", "multiclass", "multilabel"}
    held_out : bool array of shape (members, rows), optional
        Which members score each row (default: all); every row needs one.

    Returns
    -------
    ndarray
        (1,) for binary and multi-class tasks, (labels,) for multi-label ones.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=20000) * 2
    >>> y = (rng.random(20000) < 1 / (1 + np.exp(-z))).astype(int)
    >>> float(fit_temperature(3 * z[None, :, None], y, "binary")[0].round(1))
    3.0
    """
    from scipy.optimize import minimize_scalar

    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y)
    members, rows = logits.shape[:2]
    mask = np.ones((members, rows), bool) if held_out is None else np.asarray(held_out, bool)
    weights = mask[..., None].astype(np.float64)
    low, high = (math.log(bound) for bound in TEMPERATURE_BOUNDS)

    def best(part: np.ndarray, target: np.ndarray) -> float:
        if len(np.unique(target)) < 2:  # one outcome: nothing to fit (module docstring)
            return 1.0
        loss = lambda u: _mean_log_loss(part / math.exp(u), weights, target, task)  # noqa: E731
        found = minimize_scalar(loss, bounds=(low, high), method="bounded", options={"xatol": 1e-6})
        at_bound = min(found.x - low, high - found.x) < BOUND_MARGIN
        if at_bound or found.fun > loss(0.0):  # no finite optimum, or none better than T = 1
            return 1.0
        return float(math.exp(found.x))

    if task == "multilabel":
        return np.array([best(logits[..., j : j + 1], y[:, j]) for j in range(y.shape[1])])
    return np.array([best(logits, y.astype(np.int64))])


def network_temperature(network: TabularNetwork, x_num, x_cat, y_all, member_rows) -> np.ndarray:
    """The temperatures ``calibrate=True`` fits for a trained CPU network (its task is its
    config's): on the members' validation rows of the encoded inputs, each row scored by
    the members that held it out."""
    from ..nn.forward import member_logits
    from .threshold import held_out_by, validation_union

    rows = validation_union(member_rows)
    logits = member_logits(network, x_num[rows], x_cat[rows]).numpy()
    return fit_temperature(logits, y_all[rows], network.config.task, held_out_by(rows, member_rows))


def uncalibrated_proba(estimator, X) -> np.ndarray:
    """``predict_proba`` of a fitted estimator as it was before temperature scaling (its
    ``predict_proba`` itself when it is not calibrated), for X or encoded inputs: the
    twin member's answer (``twins_``) blended in as ``predict_proba`` does."""
    from ..nn.forward import check_finite, mean_probabilities, member_probabilities

    inputs = estimator.encode(X)
    members = member_probabilities(estimator.inference_model_, estimator.task_, *inputs)
    proba = mean_probabilities(check_finite(members), estimator.task_)
    twins = getattr(estimator, "twins_", None)
    return proba if twins is None else twins.blend(proba, *inputs)


# --------------------------------------------------------------------------- measuring


def _confidences(y_true, proba, task: str) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, correct) per row, or per row and label (rows, labels) for multi-label:
    the probability of the predicted class, and whether that class is the true one. A
    binary output (a multi-label one each) predicts its positive class at P >= 0.5."""
    y = np.asarray(y_true)
    p = np.asarray(proba, dtype=np.float64)
    if task == "multiclass":
        predicted = p.argmax(axis=1)
        return p.max(axis=1), predicted == y
    if task == "binary" and p.ndim == 2:  # scikit-learn's (n, 2): column 1 is P(class 1)
        p = p[:, -1]
    positive = p >= 0.5
    return np.where(positive, p, 1 - p), positive == (y == 1)


def _binned(confidence: np.ndarray, correct: np.ndarray, bins: int) -> tuple:
    """Per bin: mean confidence, accuracy and count (NaN means for empty bins). Bin b
    holds confidences in [b / bins, (b + 1) / bins), the last one 1 as well."""
    index = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, confidence, minlength=bins) / counts
        accuracy = np.bincount(index, correct.astype(np.float64), minlength=bins) / counts
    return mean_confidence, accuracy, counts


def expected_calibration_error(y_true, proba, task: str, bins: int = BINS) -> float:
    """The expected calibration error (ECE) of predicted probabilities, between 0 and 1.

    Binary and multi-class: the top-class ECE of Guo et al. (2017): each row's confidence
    is the probability of the class it predicts (the larger of P and 1 - P for binary,
    the predicted class at 0.5 whatever the model's decision threshold), the rows are cut
    into ``bins`` equal-width bins of confidence, and the ECE is the mean over bins,
    weighted by their rows, of |accuracy - mean confidence|. Multi-label: the mean over
    labels of each label's binary ECE. Targets and probabilities are in
    :func:`tabnn.evaluation.metrics.compute_metrics`' conventions.

    Examples
    --------
    >>> ece = expected_calibration_error([1, 0, 1, 1], [0.9, 0.8, 0.7, 0.3], "binary", bins=10)
    >>> round(ece, 3)  # bins 0.9: right; 0.8: wrong; 0.7 and 1 - 0.3: one right
    0.325
    """
    confidence, correct = _confidences(y_true, proba, task)
    if len(confidence) == 0:
        raise UsageError("The expected calibration error needs at least one row; got none.")
    columns = confidence.T if task == "multilabel" else [confidence]
    rights = correct.T if task == "multilabel" else [correct]
    errors = []
    for conf, right in zip(columns, rights):
        mean_confidence, accuracy, counts = _binned(conf, right, bins)
        filled = counts > 0
        gaps = np.abs(accuracy[filled] - mean_confidence[filled])
        errors.append(float((counts[filled] * gaps).sum() / len(conf)))
    return float(np.mean(errors))


def reliability(y_true, proba, task: str, bins: int = BINS) -> dict[str, list]:
    """The reliability diagram's points, in the ECE's bins: ``confidence`` (mean per bin),
    ``accuracy`` and ``count``, lists of ``bins`` values (None for empty bins); the labels
    of a multi-label task are pooled (every row and label a point)."""
    confidence, correct = _confidences(y_true, proba, task)
    mean_confidence, accuracy, counts = _binned(confidence.ravel(), correct.ravel(), bins)

    def plain(values) -> list:
        return [None if not np.isfinite(v) else round(float(v), 6) for v in values]

    return {
        "confidence": plain(mean_confidence),
        "accuracy": plain(accuracy),
        "count": [int(c) for c in counts],
    }
