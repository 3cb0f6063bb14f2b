"""The task names and the facts that go with each task, in one place.

Imported by the command line at start-up, so it imports nothing heavy.
"""

from __future__ import annotations

from typing import Literal, get_args

Task = Literal["binary", "multiclass", "multilabel"]
TASKS: tuple[str, ...] = get_args(Task)

#: The metric that picks a winner (model selection, early-stopping reports) for each task.
PRIMARY_METRIC = {"binary": "accuracy", "multiclass": "accuracy", "multilabel": "f1_micro"}

#: Every scalar metric that :func:`tabnn.evaluation.metrics.compute_metrics` returns, and
#: whether a larger value is better. Its keys are exactly the numbers worth averaging over folds.
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

#: The baselines every evaluation is shown beside, from the simplest up (the display order).
BASELINES = ("most_frequent", "label_frequency", "logistic_regression", "lightgbm")

BASELINE_TITLES = {
    "most_frequent": "most frequent class (baseline)",
    "label_frequency": "label frequency (baseline)",
    "logistic_regression": "logistic regression (baseline)",
    "lightgbm": "LightGBM (baseline)",
}


def n_outputs(task: str, n_classes: int) -> int:
    """Logits the network ends with: one for a binary target, one per class or label else."""
    return 1 if task == "binary" else n_classes


def task_of_codes(y) -> str:
    """The task encoded labels (a NumPy array) come from: 0/1 columns, two classes or more."""
    if y.ndim == 2:
        return "multilabel"
    return "multiclass" if len(set(y.tolist())) > 2 else "binary"
