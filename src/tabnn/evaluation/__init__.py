"""Honest evaluation: metrics, the baselines to beat, paired tests, held-out scoring and the
comparison of model designs. The splits and the threshold tuning that the estimator needs
live below it (:mod:`tabnn.data.splits`, :mod:`tabnn.estimator.threshold`).

- :mod:`.metrics`: ``compute_metrics``, the one ``log_loss``, metric names and checks.
- :mod:`.baselines`: the most-frequent, label-frequency, logistic-regression and LightGBM
  baselines.
- :mod:`.stats`: the corrected resampled t-test of two designs scored on the same folds.
- :mod:`.holdout`: a fitted model and its baselines scored on the same held-out rows.
- :mod:`.compare`: cross-validated comparison of designs as stacks of fold members.

Conventions shared with the rest of tabnn:

- ``task`` is one of ``"binary"``, ``"multiclass"``, ``"multilabel"`` (:data:`tabnn.tasks.TASKS`).
- Encoded targets: binary ``(n,)`` of 0/1; multiclass ``(n,)`` of class indices ``0..K-1``;
  multilabel ``(n, L)`` of 0/1.
- Probabilities: binary ``(n,)`` = P(class 1); multiclass ``(n, K)``; multilabel ``(n, L)``
  per-label probabilities.
"""
