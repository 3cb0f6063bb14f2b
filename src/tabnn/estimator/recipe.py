"""The one fit recipe: what the estimator does with its training rows, whether they sit in
memory (``fit``, ``fit_members``) or come as a stream (``tabnn train --stream``).

A source (``TrainingData``) says where the rows are and what was fitted on them (the
schema and the statistics); ``fit_recipe`` then builds the network those describe, trains
its stack (``engine.train.fit_stack``), refuses a fit whose weights diverged, and fits the
temperature (``calibrate=True``) and the decision threshold (``threshold="auto"``) on the
held-out rows. ``in_memory`` makes the source for checked rows in memory;
``scale.streaming`` makes the streamed one.

The training engine is imported when a fit runs, never by predicting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from ..engine.config import (
    FitSpec,
    History,
    Member,
    StreamData,
    TensorData,
    TrainConfig,
    device_of,
)  # fmt: skip
from ..errors import DataError
from ..features.preprocess import Preprocessor
from ..features.schema import Schema
from ..nn.config import ModelConfig
from ..nn.ensemble import build_network
from ..nn.forward import float64_network, mean_probabilities, member_probabilities
from ..nn.twins import TwinMember
from . import calibration, params

if TYPE_CHECKING:
    from ..engine.distributed import World


@dataclass
class HeldOut:
    """The rows the temperature and the threshold are fitted on: encoded inputs and labels
    of every such row (alike on every rank), and each member's (train, val) positions into
    them (the validation rows are the held-out ones)."""

    x_num: np.ndarray
    x_cat: np.ndarray
    y: np.ndarray
    member_rows: list[tuple[np.ndarray, np.ndarray]]


@dataclass
class TrainingData:
    """Where a fit's rows are and what was fitted on them: the source ``fit_recipe`` takes.

    ``statistics`` is the preprocessor the model keeps (fitted on every member's training
    rows); ``member_statistics[k]`` member k's own (a fold's training rows), or the same
    one. ``n_train`` is one member's training rows (the step budget counts them);
    ``resident_rows`` how many of them sit in memory (the memory check counts those: none
    for a stream). ``weight_labels`` are the encoded labels class weights come from.
    ``feature_names``: the columns the table had, where the estimator did not read them
    itself (a stream)."""

    schema: Schema
    statistics: Preprocessor
    member_statistics: list[Preprocessor]
    data: TensorData | StreamData
    members: list[Member]
    n_train: int
    resident_rows: int
    weight_labels: np.ndarray
    held_out: HeldOut
    world: World
    feature_names: list[str] | None = None
    twin_rows: np.ndarray | None = None  # rows the twin member may remember; None: no twins

    @property
    def device(self) -> torch.device:
        streamed = isinstance(self.data, StreamData)
        return (self.data.validation if streamed else self.data).y.device


@dataclass
class Fitted:
    """What a fit leaves on the estimator (``schema_``, ``preprocessor_``, ...)."""

    schema: Schema
    preprocessor: Preprocessor
    model_config: ModelConfig
    train_config: TrainConfig
    model: torch.nn.Module
    network: torch.nn.Module  # the float64 copy predictions run on (nn.forward)
    history: History | None
    threshold: float
    threshold_tuning: dict | None = None
    temperature: np.ndarray | None = None
    out_of_fold: np.ndarray | None = None  # a bag's (``bagging``): see ``out_of_fold_proba``
    twins: TwinMember | None = None  # the twin member, where it earned a weight
    twin_choice: dict | None = None  # what ``twin_choice.choose_twins`` saw


def fit_statistics(estimator, schema: Schema, frame: pd.DataFrame) -> Preprocessor:
    """The preprocessor the estimator's parameters describe, fitted on these rows."""
    return Preprocessor.fit(
        frame,
        schema.numeric,
        schema.categorical,
        scaling=params.recipe(estimator).scaling,
        missing_indicator=estimator.missing_indicator,
    )


def in_memory(
    estimator,
    schema,
    x_all,
    y_all,
    member_rows,
    *,
    vocabulary_rows=None,
    settings=None,
    twin_rows=None,
) -> TrainingData:
    """The source for checked rows ``x_all`` and encoded labels ``y_all`` in memory, member
    k learning from ``member_rows[k] = (train, val)`` with seed ``random_state + k`` and
    ``settings[k]`` (its own lr, weight decay, label smoothing or seed); ``twin_rows``
    the rows a twin member may remember (None, or the estimator's ``twins=False``: the
    model has none)."""
    from ..engine.distributed import World

    union = np.unique(np.concatenate([train for train, _ in member_rows]))
    vocabulary_rows = union if vocabulary_rows is None else vocabulary_rows
    world = World.current()  # torchrun's processes: rank 0 fits the statistics
    device = device_of(estimator.device)
    fitted = lambda: fit_statistics(estimator, schema, x_all.iloc[vocabulary_rows])  # noqa: E731
    shared = world.from_main(Preprocessor, fitted, device)
    x_num, x_cat = shared.transform(x_all)
    member_statistics = []
    for train, _ in member_rows:
        same = np.array_equal(np.sort(train), vocabulary_rows)  # an ensemble: no refit
        own = shared if same else fit_statistics(estimator, schema, x_all.iloc[train])
        member_statistics.append(own)
    own = world.own_rows(len(y_all))  # each rank holds its share of the rows
    settings = settings or [{}] * len(member_rows)
    seed = params.seed_of(estimator)
    n_train = len(member_rows[0][0])
    return TrainingData(
        schema, shared, member_statistics,
        data=TensorData.from_arrays(x_num[own], x_cat[own], y_all[own], device),
        members=[Member(tr, va, **{"seed": seed + k, **settings[k]})
                 for k, (tr, va) in enumerate(member_rows)],
        n_train=n_train, resident_rows=n_train, weight_labels=y_all[union],
        held_out=HeldOut(x_num, x_cat, y_all, list(member_rows)), world=world,
        twin_rows=twin_rows if estimator.twins else None,
    )  # fmt: skip


def check_held_out(estimator, schema: Schema, held: HeldOut) -> None:
    """Refuse, before any training, a threshold or calibration the held-out rows cannot fit."""
    if estimator.threshold == "auto":
        from .threshold import check_threshold_tuning  # fit time only

        check_threshold_tuning(schema, held.y, held.member_rows)
    if estimator.calibrate:
        calibration.check_calibration(held.member_rows)


def fit_recipe(estimator, training: TrainingData, on_epoch=None) -> Fitted:
    """Train the network the estimator's parameters describe on ``training``."""
    from ..engine.train import fit_stack  # training code: imported once a fit runs

    schema, held = training.schema, training.held_out
    check_held_out(estimator, schema, held)
    n_members = len(training.members)
    config = params.network_config(
        estimator, schema, training.statistics, n_members, training.resident_rows
    )
    model = build_network(config)
    for k, statistics in enumerate(training.member_statistics):
        model.encoder.set_statistics(k, statistics)
        model.fit_inputs(k, held.x_num, held.member_rows[k][0])
    device = training.device
    model.to(device)
    validated = all(len(member.val_rows) for member in training.members)
    train_config = params.train_config(estimator, training.n_train, validated)
    weights = params.loss_weights(estimator, schema, training.weight_labels)
    history = fit_stack(
        FitSpec(
            model, training.data, training.members, schema.task, train_config,
            class_weight=None if weights is None else weights.to(device),
            on_epoch=on_epoch, world=training.world,
        )
    )  # fmt: skip
    refuse_divergence(model)
    model = model.cpu().eval()
    network = float64_network(model)
    temperature = held_out_temperature(estimator, network, held)
    twins, twin_choice, out_of_fold = held_out_members(
        held, network, temperature, schema, training.twin_rows
    )
    blended = out_of_fold if twins is not None else None
    threshold, tuning = held_out_threshold(estimator, network, held, temperature, blended)
    if params.bagging_of(estimator) is None:
        out_of_fold = None  # only a bag's held-out rows are every training row
    elif out_of_fold is None:
        out_of_fold = out_of_fold_proba(network, held, temperature)
    return Fitted(
        schema, training.statistics, config, train_config, model, network, history,
        threshold, tuning, temperature, out_of_fold, twins, twin_choice,
    )  # fmt: skip


def held_out_members(held: HeldOut, network, temperature, schema: Schema, stored_rows) -> tuple:
    """(the twin member remembering ``stored_rows`` or None, what chose it, the held-out
    probabilities with the twins blended in), chosen on ``held``'s validation rows; all
    None when the model may have no twins (``stored_rows`` None) or nothing was held out.
    ``fit`` chooses here, and ``compare`` for each of its folds."""
    from .threshold import validation_union  # fit time only

    rows = validation_union(held.member_rows)
    if stored_rows is None or not len(rows):
        return None, None, None
    from .twin_choice import choose_twins

    proba = out_of_fold_proba(network, held, temperature)
    return choose_twins(held, proba, rows, stored_rows, schema.task, len(schema.classes))


def refuse_divergence(model: torch.nn.Module) -> None:
    """A DataError when training left weights that are no longer finite."""
    if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
        raise DataError(
            "Training diverged: the network's weights are no longer finite numbers. "
            "Lower the learning rate (lr) or check the data for extreme values."
        )


def held_out_temperature(estimator, network, held: HeldOut) -> np.ndarray | None:
    """The temperature ``calibrate=True`` fits on the held-out rows (None without it):
    first, as the twin member and the threshold are chosen on calibrated probabilities."""
    if not estimator.calibrate:
        return None
    return calibration.network_temperature(
        network, held.x_num, held.x_cat, held.y, held.member_rows
    )


def held_out_threshold(estimator, network, held: HeldOut, temperature, blended=None) -> tuple:
    """The threshold and its tuning: ``threshold="auto"`` is tuned on the held-out rows'
    probabilities as ``predict`` would give them, calibrated (``temperature``) and, where
    the twin member earned a weight, with its answer blended in (``blended``:
    ``held_out_members``' probabilities)."""
    if estimator.threshold != "auto":
        return float(estimator.threshold), None
    from .threshold import tune_network_threshold, tune_pooled_threshold

    metric = estimator.threshold_metric
    if blended is not None:
        threshold, tuning = tune_pooled_threshold(held.y, held.member_rows, blended[:, 1], metric)
    else:
        inputs = (held.x_num, held.x_cat, held.y, held.member_rows)
        threshold, tuning = tune_network_threshold(network, *inputs, metric, temperature)
    return float(threshold), tuning


def out_of_fold_proba(network, held: HeldOut, temperature=None) -> np.ndarray:
    """Each held-out row scored by the members that held it out, shaped like
    ``predict_proba`` (calibrated when there is a ``temperature``): for a bag, every
    training row's out-of-fold prediction, which no member trained on."""
    from .threshold import held_out_by, held_out_mean, validation_union

    rows = validation_union(held.member_rows)
    task = network.config.task
    members = member_probabilities(
        network, task, held.x_num[rows], held.x_cat[rows], temperature=temperature
    )
    pooled = held_out_mean(members, held_out_by(rows, held.member_rows))  # (rows, outputs)
    return mean_probabilities(pooled[None], task)
