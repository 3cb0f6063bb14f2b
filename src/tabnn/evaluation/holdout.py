"""Scoring a fitted estimator once on held-out rows beside its baselines, and the two
helpers that read a fitted estimator's probabilities in evaluation's convention.
"""

from __future__ import annotations

import numpy as np

from ..features.frames import aligned
from .baselines import baseline_scores
from .metrics import compute_metrics

__all__ = ["holdout_evaluation", "positive_proba"]


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


def positive_proba(estimator, X) -> np.ndarray:
    """Probabilities in evaluate's convention: P(positive) for binary tasks."""
    proba = estimator.predict_proba(aligned(estimator, X))
    return proba[:, 1] if estimator.task_ == "binary" else proba
