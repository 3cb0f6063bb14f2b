"""The parameters of ``TabNNClassifier``: what each must be (checked once at the start of
fit), and the training settings and loss weights they turn into.

Messages have scikit-learn's shape: ``The 'lr' parameter of TabNNClassifier must be a float
in the range (0, inf). Got -1 instead.``
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np
import torch

from .designs import PRESETS
from .engine.config import TrainConfig
from .errors import UsageError
from .model import ACTIVATIONS, NORMS, NUMERIC_EMBEDDINGS
from .preprocess import MISSING_INDICATORS, SCALINGS
from .schema import Schema
from .tasks import TASKS


def _int_in(low, high=np.inf):
    def check(value) -> bool:
        integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        return integral and low <= value <= high

    return check


_positive_int = _int_in(1)


def _number_in(low, high, *, closed_low=False, closed_high=False):
    def check(value) -> bool:
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            return False
        above = value >= low if closed_low else value > low
        below = value <= high if closed_high else value < high
        return above and below

    return check


def _one_of(choices):
    return lambda value: isinstance(value, str) and value in choices


def _column_list(value) -> bool:
    names = [value] if isinstance(value, str) else value
    return value is None or (
        isinstance(names, list | tuple)
        and all(isinstance(n, str | numbers.Integral) for n in names)
    )


def _hidden(value) -> bool:
    if isinstance(value, str):
        return value in PRESETS
    return isinstance(value, list | tuple) and len(value) > 0 and all(map(_positive_int, value))


def _class_weight(value) -> bool:
    if value is None or value == "balanced":
        return True
    weight = _number_in(0, np.inf, closed_low=True)
    return isinstance(value, dict) and all(weight(w) for w in value.values())


def _threshold_metric(value) -> bool:
    # imported here: the metrics behind it (scikit-learn's) are not needed to load a model
    from .evaluation.threshold import parse_threshold_metric

    parse_threshold_metric(value)  # raises a ValueError for anything else
    return True


def _device(value) -> bool:
    return isinstance(value, str) and (
        value in ("auto", "cpu", "cuda") or value.startswith("cuda:")
    )


_POSITIVE_INT = (_positive_int, "an int in the range [1, inf)")
_FRACTION = (_number_in(0, 1, closed_low=True), "a float in the range [0, 1)")
_COLUMNS = (_column_list, "None or a list of column names")

# parameter -> (test, what it must be), checked once at the start of fit
_CONSTRAINTS = {
    "hidden": (_hidden, f"one of {list(PRESETS)} or a non-empty list of positive ints"),
    "activation": (_one_of(ACTIVATIONS), f"one of {sorted(ACTIVATIONS)}"),
    "dropout": _FRACTION,
    "norm": (_one_of(NORMS), f"one of {list(NORMS)}"),
    "epochs": _POSITIVE_INT,
    "batch_size": (
        lambda v: (isinstance(v, str) and v == "auto") or _positive_int(v),
        "'auto' or an int in the range [1, inf)",
    ),
    "lr": (_number_in(0, np.inf), "a float in the range (0, inf)"),
    "weight_decay": (_number_in(0, np.inf, closed_low=True), "a float in the range [0, inf)"),
    "patience": _POSITIVE_INT,
    "validation_fraction": _FRACTION,
    "class_weight": (_class_weight, "None, 'balanced' or a dict {class: weight >= 0}"),
    "pos_weight": (
        lambda v: v is None or _number_in(0, np.inf)(v),
        "None or a float in the range (0, inf)",
    ),
    "threshold": (
        lambda v: (isinstance(v, str) and v == "auto") or _number_in(0, 1)(v),
        "'auto' or a float in the range (0, 1)",
    ),
    "threshold_metric": (
        _threshold_metric,
        "one of ['f1', 'balanced_accuracy', 'mcc'] or 'recall>=R' / 'precision>=P' with "
        "R, P in (0, 1]",
    ),
    "scaling": (_one_of(("auto", *SCALINGS)), f"one of {['auto', *SCALINGS]}"),
    "missing_indicator": (_one_of(MISSING_INDICATORS), f"one of {list(MISSING_INDICATORS)}"),
    "n_members": _POSITIVE_INT,
    "ensemble_size": (
        lambda v: (isinstance(v, str) and v == "auto") or _int_in(1, 256)(v),
        "'auto' or an int in the range [1, 256]",
    ),
    "numeric_embedding": (
        _one_of(("auto", *NUMERIC_EMBEDDINGS)),
        f"one of {['auto', *NUMERIC_EMBEDDINGS]}",
    ),
    "label_smoothing": _FRACTION,
    "categorical": _COLUMNS,
    "numeric": _COLUMNS,
    "drop": _COLUMNS,
    "task": (
        lambda v: v is None or _one_of(TASKS)(v),
        f"None or one of {list(TASKS)}",
    ),
    "random_state": (
        lambda v: v is None or _int_in(0, 2**32 - 1)(v),
        "None or an int in the range [0, 4294967295]",
    ),
    "device": (_device, "'auto', 'cpu', 'cuda' or 'cuda:<index>'"),
}


def validate_params(estimator) -> None:
    """Raise UsageError naming the first parameter of ``estimator`` that is out of range."""
    for name, (test, expected) in _CONSTRAINTS.items():
        value = getattr(estimator, name)
        try:
            valid = bool(test(value))
        except (TypeError, ValueError):  # unhashable or array-valued parameters
            valid = False
        if not valid:
            raise UsageError(
                f"The {name!r} parameter of {type(estimator).__name__} must be {expected}. "
                f"Got {value!r} instead."
            )


class Recipe(NamedTuple):
    """The settings ``auto`` stands for, resolved for one estimator's design."""

    ensemble_size: int
    numeric_embedding: str
    scaling: str


# The default design's recipe (README, "The default model"): an efficient ensemble of
# DEFAULT_ENSEMBLE members over periodic numeric embeddings of smoothly clipped inputs.
DEFAULT_ENSEMBLE = 16


def recipe(estimator) -> Recipe:
    """What ``auto`` means for ``ensemble_size``, ``numeric_embedding`` and ``scaling``:
    the default design's recipe for ``hidden="default"``; for the plain designs (``wide``,
    ``deep``, explicit sizes) one network on standard-scaled inputs, as before."""
    default = isinstance(estimator.hidden, str) and estimator.hidden == "default"

    def pick(value, for_default, otherwise):
        return (for_default if default else otherwise) if value == "auto" else value

    return Recipe(
        int(pick(estimator.ensemble_size, DEFAULT_ENSEMBLE, 1)),
        pick(estimator.numeric_embedding, "periodic", "none"),
        pick(estimator.scaling, "clipped", "standard"),
    )


def train_config(estimator, n_train: int) -> TrainConfig:
    """The engine's settings from the estimator's parameters, for ``n_train`` rows."""
    if estimator.batch_size == "auto":
        # small data learns better from small batches; large data needs throughput
        batch = 32 if n_train < 2_000 else 128 if n_train < 50_000 else 512
    else:
        batch = int(estimator.batch_size)
    return TrainConfig(
        epochs=int(estimator.epochs),
        batch_size=batch,
        lr=float(estimator.lr),
        weight_decay=float(estimator.weight_decay),
        patience=int(estimator.patience),
        label_smoothing=float(estimator.label_smoothing),
    )


def loss_weights(estimator, schema: Schema, y: np.ndarray) -> torch.Tensor | None:
    """Loss weights: (w_neg, w_pos) for binary, per class for multi-class, per-label
    positive weights for multi-label."""
    task, n_classes = schema.task, len(schema.classes)
    if estimator.pos_weight is not None:
        if task != "binary":
            raise UsageError(
                f"pos_weight applies to binary targets; this target is {task}. "
                "Use class_weight='balanced' instead."
            )
        return torch.tensor([1.0, float(estimator.pos_weight)])
    if estimator.class_weight is None:
        return None
    if task == "multilabel":
        if estimator.class_weight != "balanced":
            raise UsageError("For multi-label targets class_weight must be None or 'balanced'.")
        positives = y.sum(0).clip(min=1)
        return torch.tensor((len(y) - positives) / positives, dtype=torch.float32)
    codes = y.astype(np.int64)
    if estimator.class_weight == "balanced":
        counts = np.bincount(codes, minlength=max(2, n_classes)).clip(min=1)
        return torch.tensor(len(codes) / (len(counts) * counts), dtype=torch.float32)
    labels = list(schema.classes)
    missing = [c for c in estimator.class_weight if c not in labels]
    if missing:
        raise UsageError(f"class_weight names unknown classes {missing}; classes: {labels}.")
    return torch.tensor([float(estimator.class_weight.get(c, 1.0)) for c in labels])
