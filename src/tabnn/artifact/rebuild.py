"""Rebuilding a saved network: the values of ``tabnn.json`` checked for their types (the
threshold and temperatures for their ranges too), its parts against each other, and the
network built from its configuration and filled with the tensors of ``model.safetensors``
(``artifact.load`` reads the files; this checks and assembles)."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import types
import typing
from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict

import numpy as np
import torch

from ..errors import ModelError

if TYPE_CHECKING:  # the network's modules are imported when a model is rebuilt
    from ..nn.network import TabularNetwork

WEIGHTS_FILE = "model.safetensors"
META_FILE = "tabnn.json"
PathLike = str | os.PathLike[str]
FIX = "Save or train the model again."


# --------------------------------------------------------------------------- value types


class StoredThreshold(TypedDict):
    """``threshold`` in ``tabnn.json``: see ``artifact.threshold_info``."""

    value: float
    tuning: dict | None


class TwinCounts(TypedDict):
    """What every ``twins.choice`` holds: the held-out rows, those with a twin, the weight."""

    held_out_rows: int
    with_twin: int
    weight: float


class StoredTwinChoice(TwinCounts, total=False):
    """``twins.choice`` in ``tabnn.json``: what chose the twin member's weight
    (``estimator.twin_choice.choose_twins``); the log losses only where there were enough
    held-out rows with a twin to choose on, the stored rows only where the weight is not 0
    (``total=False``: NotRequired is not read from postponed annotations on Python 3.11)."""

    network_log_loss: float
    blend_log_loss: float
    stored_rows: int


class StoredTwins(TypedDict):
    """``twins`` in ``tabnn.json``: the twin member's weight (0 where it stores nothing)
    and what chose it (``TabNNClassifier.twin_choice_``)."""

    weight: float
    choice: StoredTwinChoice | None


class StoredHistory(TypedDict):
    """``history`` in ``tabnn.json``: ``History``'s fields, where a member trained without
    validation rows has no best loss (null)."""

    epochs: list[dict]
    best_epoch: list[int]
    best_val_loss: list[float | None]


# The least value of the whole numbers that size the network, by key path, else by its
# first key: torch refuses a negative size in its own words, and a network needs a layer,
# an output and a member.
_AT_LEAST_ONE = ("hidden", "n_outputs", "n_members", "ensemble_size", "frequencies")
LEAST = {
    "model_config": 0,
    "n_features_in": 0,
    **{f"model_config.{name}": 1 for name in (*_AT_LEAST_ONE, "embedding_width")},
}


@functools.cache
def stored_types() -> type:
    """What ``tabnn.json`` holds for ``artifact.load``, as a TypedDict whose values are
    mostly the dataclasses of the fitted parts (their fields' annotations are the types)."""
    from ..engine.config import TrainConfig
    from ..features.preprocess import Preprocessor
    from ..features.schema import Schema
    from ..nn.config import ModelConfig

    # the call form, not a class: its types are objects here, not names to look up
    return TypedDict(
        "StoredModel",
        {
            "params": dict[str, Any],
            "schema": Schema,
            "preprocessor": Preprocessor,
            "model_config": ModelConfig,
            "train_config": TrainConfig,
            "history": StoredHistory,
            "n_features_in": int,
            "feature_names_in": NotRequired[list[str] | None],
            "threshold": NotRequired[StoredThreshold | None],
            "temperature": NotRequired[list[float] | None],
            "twins": NotRequired[StoredTwins | None],
        },
    )


@functools.cache
def narrower_types() -> dict[str, Any]:
    """Key paths whose values tabnn writes from fewer choices than their fields' annotations
    say: names of things tabnn knows, and classes that are labels (no lists or objects)."""
    from ..features.preprocess import SCALINGS
    from ..nn.config import ACTIVATIONS, NETWORKS, NORMS, NUMERIC_EMBEDDINGS

    return {
        "schema.classes": list[str | float | bool],
        "preprocessor.scaling": Literal[SCALINGS],
        "model_config.scaling": Literal[SCALINGS],
        "model_config.activation": Literal[tuple(ACTIVATIONS)],
        "model_config.norm": Literal[NORMS],
        "model_config.network": Literal[NETWORKS],
        "model_config.numeric_embedding": Literal[NUMERIC_EMBEDDINGS],
    }


def check_types(path: PathLike, meta: dict) -> None:
    """Refuse a ``tabnn.json`` holding a value of another type than tabnn writes (or a
    missing or unknown key of a part), naming the key, what was expected and what is there:
    what a forger's edit, or another tabnn's file, gets instead of an error from deep inside
    the rebuild."""
    problem = type_problem(meta, stored_types(), "")
    if problem:
        raise ModelError(f"'{path}': its {META_FILE} has {problem}. {FIX}")


def type_problem(value, hint, where: str) -> str | None:
    """What is wrong with ``value`` (at the dotted key path ``where``) for the type
    ``hint``, in words ("schema.numeric = a number (3); expected a list of names"), or
    None when it fits. Objects are TypedDicts or dataclasses, whose fields are required
    unless they have a default (or are NotRequired); only the top level (``where`` "")
    holds other keys too (training, evaluation...)."""
    hint = _option_of(value, hint)
    if _is_object_type(hint):
        return _object_problem(value, hint, where)
    if not _fits(value, hint):
        return f"{where} = {describe(value)}; expected {expected(hint)}"
    for key, item, item_hint in _items(value, hint, where):
        problem = type_problem(item, item_hint, key)
        if problem:
            return problem
    return _size_problem(value, where)


def _object_problem(value, hint, where: str) -> str | None:
    if not isinstance(value, dict):
        return f"{where} = {describe(value)}; expected an object"
    hints = typing.get_type_hints(hint)
    prefix = f"{where}." if where else ""
    for name in _required(hint):
        if name not in value:
            return f"no {prefix}{name} (expected {expected(_plain(hints[name]))})"
    for name, item in value.items():
        if name not in hints and where:  # a part's constructor would refuse it
            return f"{prefix}{name}, a key this tabnn does not know in {where}"
        if name in hints:
            item_hint = narrower_types().get(prefix + name, _plain(hints[name]))
            problem = type_problem(item, item_hint, prefix + name)
            if problem:
                return problem
    return None


def _required(hint) -> list[str]:
    """The fields of a dataclass without a default, or a TypedDict's required keys."""
    if typing.is_typeddict(hint):
        return sorted(hint.__required_keys__)
    missing = dataclasses.MISSING
    fields = dataclasses.fields(hint)
    return [f.name for f in fields if f.default is missing and f.default_factory is missing]


def _plain(hint):
    """``hint`` without ``NotRequired[...]`` around it."""
    return typing.get_args(hint)[0] if typing.get_origin(hint) is NotRequired else hint


def _is_object_type(hint) -> bool:
    return dataclasses.is_dataclass(hint) or typing.is_typeddict(hint)


def _option_of(value, hint):
    """Of a union, the type of ``value``'s own kind (the union itself when none is)."""
    if typing.get_origin(hint) not in (types.UnionType, typing.Union):
        return hint
    return next((option for option in typing.get_args(hint) if _fits(value, option)), hint)


def _fits(value, hint) -> bool:
    """Whether ``value`` is of ``hint``'s own kind (a list for ``list[int]``, an object for
    a dataclass: what they hold is checked after)."""
    origin, args = typing.get_origin(hint) or hint, typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return False  # none of its options fits (see _option_of)
    if _is_object_type(hint):
        return isinstance(value, dict)
    if origin is Literal:
        return isinstance(value, str) and value in args
    if origin is float:  # JSON has one kind of number: 1 is a float too
        return isinstance(value, int | float) and not isinstance(value, bool)
    if origin is int:  # True is an int to Python, not to JSON
        return isinstance(value, int) and not isinstance(value, bool)
    return origin is Any or isinstance(value, origin)


def _items(value, hint, where: str) -> list[tuple]:
    """(key path, item, its type) of each item of a list or dict whose ``hint`` types them."""
    args = typing.get_args(hint)
    if isinstance(value, list) and args:
        return [(f"{where}[{i}]", item, args[0]) for i, item in enumerate(value)]
    if isinstance(value, dict) and len(args) == 2:
        return [(f"{where}.{key}", item, args[1]) for key, item in value.items()]
    return []


def _size_problem(value, where: str) -> str | None:
    """A whole number below its least value (LEAST), in words."""
    path = re.sub(r"\[\d+\]", "", where)
    least = LEAST.get(path, LEAST.get(path.split(".")[0]))
    if least is None or not isinstance(value, int) or isinstance(value, bool) or value >= least:
        return None
    return f"{where} = {describe(value)}; expected a whole number of at least {least}"


def expected(hint) -> str:
    """A type in words: ``list[str]`` -> "a list of names"."""
    origin, args = typing.get_origin(hint) or hint, typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return _either(["null" if a is type(None) else expected(a) for a in args])
    if origin is Literal:
        return "one of " + ", ".join(args)
    if origin is list:
        return f"a list of {_plural(args[0])}" if args else "a list"
    words = {int: "a whole number", float: "a number", str: "text", bool: "true/false"}
    return words.get(origin, "an object")


def _either(words: list[str]) -> str:
    return " or ".join(words) if len(words) < 3 else f"{', '.join(words[:-1])} or {words[-1]}"


def _plural(hint) -> str:
    if (typing.get_origin(hint) or hint) is list:
        return "lists" + expected(hint).removeprefix("a list")
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        return _either(["null" if a is type(None) else _plural(a) for a in typing.get_args(hint)])
    words = {int: "whole numbers", float: "numbers", str: "names", bool: "true/false"}
    return words.get(typing.get_origin(hint) or hint, "objects")


def describe(value) -> str:
    """A JSON value in a few words for a message: ``a number (3)``, ``text ("abc")``."""
    if value is None:
        return "null"
    kinds = {bool: "true/false", int: "a number", float: "a number", str: "text"}
    kind = kinds.get(type(value)) or ("a list" if isinstance(value, list) else "an object")
    text = json.dumps(value)
    return f"{kind} ({text[:40] + '...' if len(text) > 43 else text})"


# --------------------------------------------------------------------------- agreement


def check_parts_agree(path: PathLike, parts: dict) -> None:
    """Refuse a ``tabnn.json`` whose parts disagree on a size: each sizes or indexes another
    (columns, indicators, vocabularies, the network's inputs and outputs). Their types and
    choices are checked before (:func:`check_types`)."""
    schema, prep, config = parts["schema"], parts["preprocessor"], parts["model_config"]
    binary, names = schema.task == "binary", parts["feature_names_in"]
    cards, indicators = prep.cardinalities, [i for i, on in enumerate(prep.indicators) if on]
    checks = [  # (what, found, expected)
        ("the preprocessor's numeric columns", prep.numeric, schema.numeric),
        ("the preprocessor's categorical columns", prep.categorical, schema.categorical),
        ("the number of missing indicators", len(prep.indicators), len(schema.numeric)),
        ("the number of vocabularies", len(prep.vocabularies), len(schema.categorical)),
        ("distinct categories + 1", [len(set(v)) + 1 for v in prep.vocabularies], cards),
        ("model_config.n_numeric", config.n_numeric, len(schema.numeric)),
        ("model_config.indicator_columns", config.indicator_columns, indicators),
        ("model_config.cardinalities", config.cardinalities, cards),
        ("model_config.embedding_dims", len(config.embedding_dims), len(cards)),
        ("model_config.n_outputs", config.n_outputs, 1 if binary else len(schema.classes)),
        ("the number of classes", len(schema.classes), 2 if binary else len(schema.classes)),
        ("model_config.task", config.task, config.task and schema.task),
        ("n_features_in", parts["n_features_in"], len(names) if names else parts["n_features_in"]),
    ]
    for what, found, expected in checks:
        if found != expected:
            raise ModelError(
                f"'{path}' has a {META_FILE} whose parts disagree: {what} is {_short(found)}, "
                f"expected {_short(expected)}. Save or train the model again."
            )


def network_from_tensors(
    path: PathLike, config, tensors: dict[str, torch.Tensor]
) -> TabularNetwork:
    """The network holding the saved tensors, once built on the meta device (nothing
    allocated) and compared name by name, shape and type with ``model.safetensors``.
    The layer counts are compared first, so even the empty modules are few."""
    from ..nn.ensemble import build_network

    layers = [n for n in tensors if re.fullmatch(r"hidden\.\d+\.weight|encoder\.embeddings\..+", n)]
    described = len(config.hidden) + sum(1 for dim in config.embedding_dims if dim)
    if len(layers) != described:
        raise ModelError(
            f"'{path}' has a {META_FILE} describing {described} layers and embeddings, but its "
            f"{WEIGHTS_FILE} holds {len(layers)}. Save or train the model again."
        )
    with torch.device("meta"):
        model = build_network(config)
    expected = model.state_dict()
    names = [*expected, *(name for name in tensors if name not in expected)]
    for name in names:
        want, have = expected.get(name), tensors.get(name)
        if want is None or have is None or (want.shape, want.dtype) != (have.shape, have.dtype):
            raise ModelError(
                f"'{path}' does not match its weights: {META_FILE} describes {name} as "
                f"{_tensor_text(want)}, {WEIGHTS_FILE} holds {_tensor_text(have)}. "
                "Save or train the model again."
            )
    if tensors["encoder.indicator_columns"].tolist() != list(config.indicator_columns):
        raise ModelError(f"'{path}' has other indicator columns in its two files.")
    model.load_state_dict(tensors, strict=True, assign=True)  # the tensors, not copies
    return model


def _tensor_text(tensor: torch.Tensor | None) -> str:
    return "nothing" if tensor is None else f"{tuple(tensor.shape)} {tensor.dtype}"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def saved_twins(path: PathLike, meta: dict, tensors: dict, parts: dict):
    """The twin member that ``tabnn.json`` and the ``twins.*`` tensors describe (taken out
    of ``tensors``), or None: its weight in (0, 1], and tensors shaped for the model's
    inputs and classes, every count a whole number of at least 1."""
    from ..nn.twins import TENSORS, TwinMember

    stored = {name: tensors.pop(f"twins.{name}") for name in TENSORS if f"twins.{name}" in tensors}
    twins = meta.get("twins") or {}
    weight = twins.get("weight", 0.0)
    if not stored and not weight:
        return None
    if not twins:
        raise ModelError(
            f"'{path}' stores twin rows (twins.* tensors), but its {META_FILE} has no twins "
            f"entry to say how much they weigh. {FIX}"
        )
    config, classes = parts["model_config"], len(parts["schema"].classes)
    rows = len(stored["keys"]) if "keys" in stored else 0
    width = 2 * config.n_numeric + len(config.cardinalities)
    shapes = {"keys": (rows, width), "label_sums": (rows, classes), "counts": (rows,),
              "prior": (classes,)}  # fmt: skip
    found = {name: tuple(stored[name].shape) if name in stored else None for name in TENSORS}
    if not isinstance(weight, int | float) or not 0 < weight <= 1:
        raise ModelError(
            f"'{path}': its {META_FILE} has twins.weight = {describe(weight)}; expected a "
            f"number in (0, 1] for a model that stores twin rows. {FIX}"
        )
    if found != shapes:
        raise ModelError(
            f"'{path}' has twin tensors that do not fit the model: shaped {found}, expected "
            f"{shapes}. {FIX}"
        )
    member = TwinMember.from_tensors({f"twins.{k}": v for k, v in stored.items()}, weight)
    problem = twin_problem(member, parts["schema"].task == "multilabel", config)
    if problem:
        raise ModelError(f"'{path}' has a twin member that cannot be right: {problem}. {FIX}")
    choice = twins.get("choice") or {}
    if any(key not in choice for key in CHOICE_KEYS) or choice["stored_rows"] != rows:
        raise ModelError(
            f"'{path}': its {META_FILE} has twins.choice = {describe(twins.get('choice'))}; "
            f"expected what chose the weight ({', '.join(CHOICE_KEYS)}) for its {rows} stored "
            f"rows. {FIX}"
        )
    return member


# what ``twins.choice`` holds beside the counts wherever the twins earned a weight
CHOICE_KEYS = ("network_log_loss", "blend_log_loss", "stored_rows")


def twin_problem(member, multilabel: bool, config) -> str | None:
    """What makes saved twin tensors impossible for a fit to have written, or None: keys
    no encoded row has (a missing flag other than 0 or 1, a category code outside the
    column's known codes), rows that are not distinct, counts that are not whole numbers
    from 1, label sums outside [0, count] (one class per row: summing to the count), a
    prior that is no share."""
    sums, counts, prior = member.label_sums, member.counts, member.prior
    arrays = (member.keys, sums, counts, prior)
    if not member.rows or not all(np.isfinite(a).all() for a in arrays):
        return "no stored rows, or values that are not finite numbers"
    flags = member.keys[:, config.n_numeric : 2 * config.n_numeric]
    codes = member.keys[:, 2 * config.n_numeric :]
    if not np.isin(flags, (0.0, 1.0)).all():
        return "missing flags other than 0 or 1"
    known = (codes >= 1) & (codes < np.asarray(config.cardinalities)) & (codes == codes.round())
    if not known.all():  # code 0 (unknown) is never stored: such a row has no twin
        return "category codes outside their columns' known codes"
    if not ((counts >= 1) & (counts == counts.round())).all():
        return "counts that are not whole numbers from 1"
    if len(np.unique(member.keys, axis=0)) != member.rows:
        return "a stored row twice"
    outside = (sums < 0).any() or (sums > counts[:, None]).any()
    if outside or not (multilabel or np.allclose(sums.sum(1), counts)):
        return "label sums that do not fit their counts"
    if (prior < 0).any() or (prior > 1).any() or not (multilabel or np.isclose(prior.sum(), 1)):
        return "a prior that is not a share of the labels"
    return None


def saved_temperature(meta: dict, path: PathLike, outputs: int) -> list[float] | None:
    """The temperatures in ``tabnn.json``; None for a model saved before calibration
    existed or without it. Each must be a positive finite number, one for binary and
    multi-class models, one per label for multi-label ones (``outputs``)."""
    saved = meta.get("temperature")  # a list of numbers or None (check_types)
    if saved is None:
        return None
    if len(saved) != outputs or not all(0 < t < float("inf") for t in saved):
        raise ModelError(
            f"'{path}': its {META_FILE} has temperature = {describe(saved)}; expected a list "
            f"of {outputs} positive number(s). {FIX}"
        )
    return [float(t) for t in saved]


def saved_threshold(meta: dict, path: PathLike) -> tuple[float, dict | None]:
    """The threshold in ``tabnn.json`` and how it was tuned; a model saved before
    thresholds could be tuned applies its ``threshold`` parameter."""
    saved = meta.get("threshold")  # {"value": number, "tuning": ...} or None (check_types)
    if saved:
        key, value, tuning = "threshold.value", saved["value"], saved["tuning"]
    else:
        key, value, tuning = "params.threshold", meta["params"].get("threshold"), None
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
        raise ModelError(
            f"'{path}': its {META_FILE} has {key} = {describe(value)}; expected a decision "
            f"threshold, a number from 0 to 1. {FIX}"
        )
    return float(value), tuning
