"""The search space of ``tabnn tune``: what a trial may change in the default model, which
of it fixes a network's shape, and the default model as a point of the space.

The space covers the default design (docs/default-model.md): an MLP of ``depth``
layers of ``width`` units on smoothly clipped inputs, as an efficient ensemble of
``ensemble_size`` members, with optional periodic numeric embeddings and dropout, trained
with AdamW at a learning rate, weight decay and label smoothing, on batches of a size. The
ranges follow the spaces RealMLP and TabM were tuned over (Holzmüller et al. 2024;
Gorishniy et al. 2025), cut to what a CPU can afford.

The shape settings (``SHAPE``) decide the weights' shapes and the batches, so trials that
share them can train as members of one stack; the member settings (``MEMBER``) can differ
member by member inside a stack (``engine.config.Member``).
"""

from __future__ import annotations

from ..estimator import params
from ..nn.config import hidden_sizes

SHAPE = ("depth", "width", "ensemble_size", "numeric_embedding", "dropout", "batch_size")
MEMBER = ("lr", "weight_decay", "label_smoothing")

DEPTHS = (1, 4)  # hidden layers, inclusive
WIDTHS = (64, 128, 256, 512)
ENSEMBLE_SIZES = (1, 4, 8)
EMBEDDINGS = ("none", "periodic")
DROPOUTS = (0.0, 0.1, 0.2, 0.3)
LR = (1e-4, 1e-2)  # log-uniform
WEIGHT_DECAY = (1e-6, 1e-1)  # log-uniform
LABEL_SMOOTHING = (0.0, 0.2)  # uniform


def batch_choices(n_train: int) -> list[int]:
    """Half, once and twice the default design's batch for ``n_train`` rows (at least 16)."""
    base = params.batch_for_rows(n_train, True)
    return sorted({max(16, base // 2), base, base * 2})


def suggest(trial, n_train: int) -> dict:
    """One point of the space from an Optuna trial (define-by-run)."""
    return {
        "depth": trial.suggest_int("depth", *DEPTHS),
        "width": trial.suggest_categorical("width", list(WIDTHS)),
        "ensemble_size": trial.suggest_categorical("ensemble_size", list(ENSEMBLE_SIZES)),
        "numeric_embedding": trial.suggest_categorical("numeric_embedding", list(EMBEDDINGS)),
        "dropout": trial.suggest_categorical("dropout", list(DROPOUTS)),
        "batch_size": trial.suggest_categorical("batch_size", batch_choices(n_train)),
        "lr": trial.suggest_float("lr", *LR, log=True),
        "weight_decay": trial.suggest_float("weight_decay", *WEIGHT_DECAY, log=True),
        "label_smoothing": trial.suggest_float("label_smoothing", *LABEL_SMOOTHING),
    }


def default_point(n_train: int) -> dict:
    """The default model (``TabNNClassifier()``) for ``n_train`` training rows, as a point
    of the space: enqueued as a study's first trial, so the default's CV scores come from
    the same folds as every trial's."""
    from ..estimator.classifier import TabNNClassifier

    default = TabNNClassifier()
    chosen = params.recipe(default)
    config = params.train_config(default, n_train, validated=True)
    layers = hidden_sizes("default", 1)
    return {
        "depth": len(layers),
        "width": layers[0],
        "ensemble_size": chosen.ensemble_size,
        "numeric_embedding": chosen.numeric_embedding,
        "dropout": chosen.dropout,
        "batch_size": config.batch_size,
        "lr": config.lr,
        "weight_decay": config.weight_decay,
        "label_smoothing": config.label_smoothing,
    }


def estimator_params(point: dict) -> dict:
    """``TabNNClassifier`` parameters for a point: the default design's recipe (clipped
    inputs, a constant learning rate, trained until patience ends it) with the point's
    settings."""
    batch = int(point["batch_size"])
    return {
        "hidden": [int(point["width"])] * int(point["depth"]),
        "ensemble_size": int(point["ensemble_size"]),
        "numeric_embedding": point["numeric_embedding"],
        "dropout": float(point["dropout"]),
        "batch_size": batch,
        "epochs": params.MAX_EPOCHS,  # the default's rule: patience ends each trial
        "lr_schedule": "constant",
        "scaling": params.DEFAULT_RECIPE.scaling,
        "lr": float(point["lr"]),
        "weight_decay": float(point["weight_decay"]),
        "label_smoothing": float(point["label_smoothing"]),
    }


def shape_of(point: dict) -> tuple:
    """The settings a stack's trials must share."""
    return tuple(point[name] for name in SHAPE)


def member_settings(point: dict) -> dict:
    """The settings a trial keeps as a member of a shared stack (``Member``'s fields)."""
    return {name: float(point[name]) for name in MEMBER}
