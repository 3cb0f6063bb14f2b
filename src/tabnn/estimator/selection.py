"""Ensemble selection: the weights of several models' out-of-fold probabilities.

Caruana et al., "Ensemble Selection from Libraries of Models" (ICML 2004), as AutoGluon's
weighted ensemble runs it: start from nothing and, ``steps`` times, add the model (with
replacement) whose addition gives the running average the best score on the out-of-fold
rows; the additions are kept up to the step whose average scored best (the first step
alone is the best single model, so the blend never scores worse on these rows), and a
model's weight is how often it was added up to there. Adding with replacement
lets a strong model weigh more than a weak one without any fitted coefficient, so the
weights cannot overfit the way a stacked regression can; a model never added weighs 0 and
costs nothing at predict time.

Scored by log loss, or by accuracy with log loss breaking ties (``metric``). Ties between
models go to the earlier one, so the result depends only on the inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import UsageError

STEPS = 25  # AutoGluon's default; Caruana et al. found the gains level off after tens
METRICS = ("log_loss", "accuracy")
EPS = 1e-15  # probabilities are clipped to [EPS, 1 - EPS] in the log loss


def log_loss(y: np.ndarray, proba: np.ndarray, task: str) -> float:
    """Mean log loss of ``predict_proba``-shaped probabilities against encoded labels:
    binary and multi-class the class's probability, multi-label each label's, averaged."""
    p = np.clip(proba, EPS, 1 - EPS)
    if task == "multilabel":
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return float(-np.mean(np.log(p[np.arange(len(y)), y.astype(np.int64)])))


def accuracy(y: np.ndarray, proba: np.ndarray, task: str) -> float:
    """Share of rows (multi-label: of row-label pairs) predicted right at argmax / 0.5."""
    if task == "multilabel":
        return float(np.mean((proba >= 0.5) == (y == 1)))
    return float(np.mean(proba.argmax(1) == y))


def _score(y, proba, task: str, metric: str) -> tuple[float, float]:
    """A key to minimise: (log loss,) or (-accuracy, log loss)."""
    loss = log_loss(y, proba, task)
    return (loss, 0.0) if metric == "log_loss" else (-accuracy(y, proba, task), loss)


def select_ensemble(
    oof: Sequence[np.ndarray],
    y: np.ndarray,
    task: str,
    *,
    steps: int = STEPS,
    metric: str = "log_loss",
) -> np.ndarray:
    """The weights (summing to 1, one per model) greedy selection with replacement gives
    the models' out-of-fold probabilities ``oof[m]`` (each shaped like ``predict_proba``,
    rows in the order of the encoded labels ``y``)."""
    if metric not in METRICS:
        raise UsageError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}.")
    if steps < 1 or not oof:
        raise UsageError(f"Ensemble selection needs models and steps >= 1; got {steps}.")
    shapes = {np.shape(p) for p in oof}
    if len(shapes) != 1:
        raise UsageError(f"Every model's out-of-fold probabilities need one shape; got {shapes}.")
    stacked = np.stack([np.asarray(p, dtype=np.float64) for p in oof])
    total = np.zeros_like(stacked[0])
    added, scores = [], []
    for step in range(1, steps + 1):
        keys = [_score(y, (total + p) / step, task, metric) for p in stacked]
        best = min(range(len(keys)), key=keys.__getitem__)  # the earlier model on a tie
        added.append(best)
        scores.append(keys[best])
        total += stacked[best]
    kept = added[: min(range(steps), key=scores.__getitem__) + 1]  # the earliest best step
    return np.bincount(kept, minlength=len(oof)) / len(kept)


def blend(oof: Sequence[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """The weighted average of the models' probabilities."""
    return np.tensordot(np.asarray(weights, dtype=np.float64), np.stack(oof), axes=1)
