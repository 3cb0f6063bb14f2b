"""The parameters of ``TabNNClassifier``: what each must be (checked once at the start of
fit), and the training settings and loss weights they turn into.

Messages have scikit-learn's shape: ``The 'lr' parameter of TabNNClassifier must be a float
in the range (0, inf). Got -1 instead.``
"""

from __future__ import annotations

import math
import numbers
from dataclasses import replace
from typing import NamedTuple

import numpy as np
import torch

from ..engine.config import TrainConfig
from ..errors import UsageError
from ..features.preprocess import MISSING_INDICATORS, SCALINGS
from ..features.schema import Schema
from ..nn import memory
from ..nn.config import (
    ACTIVATIONS,
    NORMS,
    NUMERIC_EMBEDDINGS,
    ModelConfig,
    build_config,
    hidden_sizes,
)
from ..nn.designs import NAMED_DESIGNS, PRESET_CHOICES, bag_folds, design_name, network_for
from ..nn.size import TRAIN_BYTES_PER_PARAMETER, activation_values, parameter_count
from ..tasks import TASKS, n_outputs


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
        return value in NAMED_DESIGNS
    return isinstance(value, list | tuple) and len(value) > 0 and all(map(_positive_int, value))


def _class_weight(value) -> bool:
    if value is None or value == "balanced":
        return True
    weight = _number_in(0, np.inf, closed_low=True)
    return isinstance(value, dict) and all(weight(w) for w in value.values())


def _threshold_metric(value) -> bool:
    # imported here: the metrics behind it (scikit-learn's) are not needed to load a model
    from .threshold import parse_threshold_metric

    parse_threshold_metric(value)  # raises a ValueError for anything else
    return True


def _device(value) -> bool:
    return isinstance(value, str) and (
        value in ("auto", "cpu", "cuda") or value.startswith("cuda:")
    )


LR_SCHEDULES = ("auto", "cosine", "constant")

_POSITIVE_INT = (_positive_int, "an int in the range [1, inf)")
_FRACTION = (_number_in(0, 1, closed_low=True), "a float in the range [0, 1)")
_COLUMNS = (_column_list, "None or a list of column names")


def _auto_or(constraint):
    """A (test, expected) constraint that also lets ``"auto"`` through, and says so."""
    test, expected = constraint
    return (lambda v: (isinstance(v, str) and v == "auto") or test(v), f"'auto' or {expected}")


# parameter -> (test, what it must be), checked once at the start of fit
_CONSTRAINTS = {
    "hidden": (_hidden, f"one of {list(NAMED_DESIGNS)} or a non-empty list of positive ints"),
    "activation": (_one_of(ACTIVATIONS), f"one of {sorted(ACTIVATIONS)}"),
    "dropout": _auto_or(_FRACTION),
    "norm": (_one_of(NORMS), f"one of {list(NORMS)}"),
    "epochs": _auto_or(_POSITIVE_INT),
    "lr_schedule": (_one_of(LR_SCHEDULES), f"one of {list(LR_SCHEDULES)}"),
    "batch_size": _auto_or(_POSITIVE_INT),
    "lr": _auto_or((_number_in(0, np.inf), "a float in the range (0, inf)")),
    "weight_decay": (_number_in(0, np.inf, closed_low=True), "a float in the range [0, inf)"),
    "patience": _POSITIVE_INT,
    "validation_fraction": _FRACTION,
    "class_weight": (_class_weight, "None, 'balanced' or a dict {class: weight >= 0}"),
    "pos_weight": (
        lambda v: v is None or _number_in(0, np.inf)(v),
        "None or a float in the range (0, inf)",
    ),
    "threshold": _auto_or((_number_in(0, 1), "a float in the range (0, 1)")),
    "threshold_metric": (
        _threshold_metric,
        "one of ['f1', 'balanced_accuracy', 'mcc'] or 'recall>=R' / 'precision>=P' with "
        "R, P in (0, 1]",
    ),
    "calibrate": (lambda v: isinstance(v, bool | np.bool_), "a bool (True or False)"),
    "twins": (lambda v: isinstance(v, bool | np.bool_), "a bool (True or False)"),
    "scaling": (_one_of(("auto", *SCALINGS)), f"one of {['auto', *SCALINGS]}"),
    "missing_indicator": (_one_of(MISSING_INDICATORS), f"one of {list(MISSING_INDICATORS)}"),
    "n_members": _POSITIVE_INT,
    "preset": (_one_of(tuple(PRESET_CHOICES)), f"one of {list(PRESET_CHOICES)}"),
    "bagging": (
        lambda v: v is None or v == "auto" or _int_in(2, 100)(v),
        "'auto', None or an int in the range [2, 100]",
    ),
    "ensemble_size": _auto_or((_int_in(1, 256), "an int in the range [1, 256]")),
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
    check_design_options(estimator)


def check_design_options(estimator) -> None:
    """Refuse (UsageError) an option that the design's network cannot honour, rather than
    train without it. Only ``norm`` is such an option: the plain MLP (``TabularMLP``) has
    batch and layer norm, the efficient ensemble (``EnsembleMLP``) no normalisation layer.
    Every other option acts in both networks (activation, dropout) or outside them
    (encoder, loss, optimiser)."""
    chosen = recipe(estimator)
    network = network_for(chosen.ensemble_size, chosen.numeric_embedding)
    if estimator.norm == "none" or network == "mlp":
        return
    why = [f"ensemble_size={chosen.ensemble_size}"] if chosen.ensemble_size > 1 else []
    if chosen.numeric_embedding != "none":
        why.append(f"numeric_embedding={chosen.numeric_embedding!r}")
    raise UsageError(
        f"The 'norm' parameter of {type(estimator).__name__} (--norm) is "
        f"{estimator.norm!r}, which the design {design_name(estimator.hidden)} cannot "
        f"honour: it trains an efficient ensemble ({', '.join(why)}), whose layers have no "
        "normalisation. Use norm='none', or a plain MLP (ensemble_size=1 and "
        "numeric_embedding='none'; on the command line --model wide, deep or mlp:SIZES)."
    )


class Recipe(NamedTuple):
    """The settings ``auto`` stands for, resolved for one estimator's design."""

    ensemble_size: int
    numeric_embedding: str
    scaling: str
    dropout: float
    lr: float


# The default design's recipe (docs/default-model.md, with the suite runs behind
# each choice): an efficient ensemble of 4 members on smoothly clipped inputs, without
# dropout (the ensemble regularises; masks cost a third of a CPU step), at a learning rate
# for batches of up to 256 rows. Periodic numeric embeddings stay an option: at this
# budget they doubled the suite's fit time for no gain in mean accuracy.
DEFAULT_RECIPE = Recipe(4, "none", "clipped", 0.0, 3e-3)
# The plain designs (``wide``, ``deep``, explicit sizes): one network on standard-scaled
# inputs, as scikit-learn's MLPClassifier and the W1 tutorial train it.
PLAIN_RECIPE = Recipe(1, "none", "standard", 0.1, 1e-3)
PLAIN_EPOCHS = 200


def is_default_design(estimator) -> bool:
    """Whether the estimator trains the default design (``hidden="default"``)."""
    return isinstance(estimator.hidden, str) and estimator.hidden == "default"


def preset_choice(estimator, name: str):
    """What the estimator's ``preset`` chooses for parameter ``name``."""
    return PRESET_CHOICES[estimator.preset][name]


def bagging_of(estimator) -> int | None:
    """The folds the estimator bags over (``bagging``, or its preset's for "auto"), or
    None for no bagging."""
    return bag_folds(estimator.bagging, estimator.preset)


def recipe(estimator) -> Recipe:
    """What ``auto`` means for ``ensemble_size``, ``numeric_embedding``, ``scaling``,
    ``dropout`` and ``lr``: the default design's recipe for ``hidden="default"`` (with the
    preset's numeric embedding), the plain recipe for the others; a value the user set
    stays as set."""
    base = PLAIN_RECIPE
    if is_default_design(estimator):
        base = DEFAULT_RECIPE._replace(
            numeric_embedding=preset_choice(estimator, "numeric_embedding")
        )
    chosen = {
        name: value if (value := getattr(estimator, name)) != "auto" else auto
        for name, auto in base._asdict().items()
    }
    return Recipe(
        int(chosen["ensemble_size"]),
        chosen["numeric_embedding"],
        chosen["scaling"],
        float(chosen["dropout"]),
        float(chosen["lr"]),
    )


DEFAULT_BATCH = 256  # the default design's largest batch, the one its learning rate is for


def batch_for_rows(n_train: int, default_design: bool) -> int:
    """``batch_size="auto"``: about 32 steps an epoch, in powers of two from 32 to 256 rows
    (the default design: TabM and RealMLP train on batches of 256, smaller tables get
    smaller batches so that an epoch still takes a few dozen steps); for the plain designs
    32 rows below 2,000, 128 below 50,000, else 512."""
    if not default_design:
        return 32 if n_train < 2_000 else 128 if n_train < 50_000 else 512
    return min(DEFAULT_BATCH, max(32, 2 ** round(math.log2(max(n_train, 1) / 32))))


# Without validation rows (``validation_fraction=0``) nothing can say when to stop, so
# the default design falls back on a budget of optimiser steps: epochs = MIN_STEPS /
# steps per epoch, within [MIN_EPOCHS, PLAIN_EPOCHS], the learning rate decaying over them.
MIN_STEPS, MIN_EPOCHS = 750, 15
# With validation rows the default design stops on them instead (TabM's rule: a constant
# learning rate after warm-up, stop after ``patience`` epochs without a gain, keep the best
# epoch), at most MAX_EPOCHS. A budget starved the tables that need long training (26
# classes stopped at 15 epochs); patience gives each table the epochs it needs.
MAX_EPOCHS = 500


def epochs_for_rows(n_train: int, batch: int, default_design: bool) -> int:
    """The step budget of a fit without validation rows: the default design's, or 200 for
    the plain designs."""
    if not default_design:
        return PLAIN_EPOCHS
    steps_per_epoch = math.ceil(max(n_train, 1) / batch)
    return min(PLAIN_EPOCHS, max(MIN_EPOCHS, math.ceil(MIN_STEPS / steps_per_epoch)))


def batch_and_epochs(estimator, n_train: int, validated: bool = False) -> tuple[int, int]:
    """The batch size and (most) epochs the estimator's parameters mean for ``n_train``
    rows, with or without validation rows to stop on."""
    default = is_default_design(estimator)
    if estimator.batch_size == "auto":
        batch = batch_for_rows(n_train, default)
    else:
        batch = int(estimator.batch_size)
    if estimator.epochs != "auto":
        return batch, int(estimator.epochs)
    if default and validated:
        return batch, MAX_EPOCHS
    return batch, epochs_for_rows(n_train, batch, default)


def train_config(estimator, n_train: int, validated: bool = False) -> TrainConfig:
    """The engine's settings from the estimator's parameters, for ``n_train`` rows, with or
    without validation rows for every member (``validated``)."""
    batch, epochs = batch_and_epochs(estimator, n_train, validated)
    lr = recipe(estimator).lr
    default = is_default_design(estimator)
    if default and estimator.lr == "auto":
        # the default's 3e-3 is for batches of 256 rows; Adam's square-root scaling rule
        # (Malladi et al., NeurIPS 2022) gives smaller batches a smaller step
        lr *= math.sqrt(batch / DEFAULT_BATCH)
    schedule = estimator.lr_schedule
    if schedule == "auto":  # patience decides: no decay towards an end nobody set
        schedule = "constant" if default and validated and estimator.epochs == "auto" else "cosine"
    return TrainConfig(
        epochs=epochs,
        batch_size=batch,
        lr=lr,
        schedule=schedule,
        weight_decay=float(estimator.weight_decay),
        patience=int(estimator.patience),
        label_smoothing=float(estimator.label_smoothing),
    )


def seed_of(estimator) -> int:
    """The seed of the estimator's first member (``random_state``; None is 0)."""
    return 0 if estimator.random_state is None else int(estimator.random_state)


def network_config(
    estimator, schema: Schema, prep, n_members: int, n_train: int = 0
) -> ModelConfig:
    """The network the estimator's parameters describe, for a schema and its fitted
    preprocessing (``prep``), with ``n_members`` members; refused (``check_memory``)
    when training it on ``n_train`` rows per member would not fit in memory."""
    chosen = recipe(estimator)
    hidden = estimator.hidden
    config = build_config(
        prep,
        n_outputs(schema.task, len(schema.classes)),
        preset=hidden if isinstance(hidden, str) else list(hidden),
        activation=estimator.activation,
        dropout=chosen.dropout,
        norm=estimator.norm,
        n_members=n_members,
        task=schema.task,
        ensemble_size=chosen.ensemble_size,
        numeric_embedding=chosen.numeric_embedding,
    )
    check_memory(estimator, config, rows=n_train)
    return config


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


# --------------------------------------------------------------------------- memory

# What training holds besides the weights (size.TRAIN_BYTES_PER_PARAMETER each) and the
# activations, at least:
ROW_BYTES = 64  # per member and row: its row number, the epoch's layout (index, mask,
#                 target, loss weight: steps x batch slots) and its share of the steps' plan
MEMBER_BYTES = 4096  # per member: its random generator (2.7 kB) and its bookkeeping
EPOCH_BYTES = 96  # per member and epoch: the history's losses and accuracy
LAYER_BYTES = 4096  # per layer: its modules
STEP_BYTES = 3 * 4  # per activation of a training step: float32 value, gradient, temporary
PREDICT_BYTES = 8  # per activation of validation and predictions (float64), ...
PREDICT_ROWS = 8192  # ... which take this many rows at a time

# the parameters that scale what training allocates: how a message names each (with the
# command line's option) and what to choose instead
SIZE_PARAMETERS = {
    "n_members": ("n_members={} (--ensemble)", "fewer members"),
    "hidden": ("hidden={} (--model)", "smaller layers (e.g. mlp:256-128)"),
    "ensemble_size": ("ensemble_size={}", "a smaller ensemble_size"),
    "batch_size": ("batch_size={} (--batch-size)", "smaller batches"),
    "epochs": ("epochs={} (--epochs)", "fewer epochs"),
}


def training_bytes(config: ModelConfig, batch: int, epochs: int, rows: int) -> int:
    """The memory that training a network of ``config`` on ``rows`` rows per member, in
    batches of ``batch`` for up to ``epochs`` epochs, needs at least, in bytes: integer
    arithmetic on the sizes alone, so no size can overflow it or allocate anything."""
    members = int(config.n_members)
    weights = parameter_count(config) * TRAIN_BYTES_PER_PARAMETER
    per_value = max(min(batch, rows) * STEP_BYTES, min(PREDICT_ROWS, rows) * PREDICT_BYTES)
    activations = activation_values(config) * per_value
    bookkeeping = max(batch, rows) * ROW_BYTES + epochs * EPOCH_BYTES + MEMBER_BYTES
    return weights + activations + members * bookkeeping + len(config.hidden) * LAYER_BYTES


def check_memory(
    estimator, config: ModelConfig | None = None, *, rows: int = 0, members: int | None = None,
    labels: dict | None = None,
) -> None:  # fmt: skip
    """Refuse (UsageError) a configuration whose training would not fit in memory, before
    anything is allocated, naming the size parameter that weighs most, its value, the
    memory needed and the memory there is.

    ``config`` is the network to train on ``rows`` rows per member; without one, the
    smallest network the estimator's parameters allow (one input column, one output) with
    ``members`` members (``n_members`` by default): what any table needs at least, checked
    before the data is read. ``labels`` renames parameters in the message, as
    ``SIZE_PARAMETERS`` does (``compare``'s members are its folds x repeats)."""
    if config is None:
        config = smallest_config(estimator, estimator.n_members if members is None else members)
    rows = max(int(rows), 2)  # fit needs two rows at least
    batch, epochs = batch_and_epochs(estimator, rows)
    sizes = {"n_members": config.n_members, "hidden": estimator.hidden, "batch_size": batch}
    sizes.update(ensemble_size=config.ensemble_size, epochs=epochs)
    need = training_bytes(config, batch, epochs, rows)
    budget = memory.available(estimator.device)
    if need <= budget.bytes:
        return
    name = _heaviest(config, batch, epochs, rows)
    label, advice = {**SIZE_PARAMETERS, **(labels or {})}[name]
    raise UsageError(
        f"Too large for memory: {label.format(memory.shown(sizes[name]))} needs at least "
        f"{memory.in_words(need)} to train ({memory.shown(parameter_count(config))} "
        f"parameters), more than {budget.source} ({memory.in_words(budget.bytes)}). "
        f"Choose {advice}."
    )


def smallest_config(estimator, members: int) -> ModelConfig:
    """The network of the estimator's parameters for one numeric input and one output."""
    chosen = recipe(estimator)
    hidden = estimator.hidden
    return ModelConfig(
        n_numeric=1, indicator_columns=[], cardinalities=[], scaling=chosen.scaling,
        n_quantiles=0, n_outputs=1, hidden=hidden_sizes(hidden, 1), n_members=members,
        network=network_for(chosen.ensemble_size, chosen.numeric_embedding),
        ensemble_size=chosen.ensemble_size,
        numeric_embedding=chosen.numeric_embedding,
    )  # fmt: skip


def _heaviest(config: ModelConfig, batch: int, epochs: int, rows: int) -> str:
    """The size parameter whose smallest value would save the most memory."""
    smallest = {
        "n_members": (replace(config, n_members=1), batch, epochs),
        "hidden": (replace(config, hidden=[1] if config.hidden else []), batch, epochs),
        "ensemble_size": (replace(config, ensemble_size=1), batch, epochs),
        "batch_size": (config, 1, epochs),
        "epochs": (config, batch, 1),
    }
    left = {name: training_bytes(*args, rows) for name, args in smallest.items()}
    return min(left, key=left.get)


def describe_point(point: dict) -> str:
    """A short human name for a point of tuned parameters, e.g. ``mlp:128-128 ×4 lr 3.0e-03``."""
    layers = "-".join([str(point["width"])] * int(point["depth"]))
    embed = " periodic" if point["numeric_embedding"] != "none" else ""
    return (
        f"mlp:{layers} ×{point['ensemble_size']}{embed} dropout {point['dropout']:g} "
        f"batch {point['batch_size']} lr {point['lr']:.1e} wd {point['weight_decay']:.0e} "
        f"smoothing {point['label_smoothing']:.2f}"
    )
