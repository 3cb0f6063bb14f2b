"""Rebuilding a saved network: the parts of ``tabnn.json`` checked against each other, and
the network built from its configuration and filled with the tensors of
``model.safetensors`` (``artifact.load`` reads the files; this checks and assembles)."""

from __future__ import annotations

import os
import re

import torch

from .errors import ModelError

WEIGHTS_FILE = "model.safetensors"
META_FILE = "tabnn.json"
PathLike = str | os.PathLike[str]


def check_parts_agree(path: PathLike, parts: dict) -> None:
    """Refuse a ``tabnn.json`` whose parts disagree on a size: each sizes or indexes another
    (columns, indicators, vocabularies, the network's inputs and outputs)."""
    from .model import NETWORKS, NORMS, NUMERIC_EMBEDDINGS

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
        ("model_config.norm", config.norm, config.norm if config.norm in NORMS else NORMS),
        ("model_config.network", config.network, _one_of(config.network, NETWORKS)),
        (
            "model_config.numeric_embedding",
            config.numeric_embedding,
            _one_of(config.numeric_embedding, NUMERIC_EMBEDDINGS),
        ),  # fmt: skip
        ("model_config.task", config.task, config.task and schema.task),
        ("n_features_in", parts["n_features_in"], len(names) if names else parts["n_features_in"]),
    ]
    for what, found, expected in checks:
        if found != expected:
            raise ModelError(
                f"'{path}' has a {META_FILE} whose parts disagree: {what} is {_short(found)}, "
                f"expected {_short(expected)}. Save or train the model again."
            )


def network_from_tensors(path: PathLike, config, tensors: dict[str, torch.Tensor]):
    """The network holding the saved tensors, once built on the meta device (nothing
    allocated) and compared name by name, shape and type with ``model.safetensors``.
    The layer counts are compared first, so even the empty modules are few."""
    from .ensemble_net import build_network

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


def _one_of(value, choices: tuple):
    """``value`` when it is one of ``choices``, else the choices (what was expected)."""
    return value if value in choices else choices


def _tensor_text(tensor: torch.Tensor | None) -> str:
    return "nothing" if tensor is None else f"{tuple(tensor.shape)} {tensor.dtype}"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
