"""What a network configuration costs, from its sizes alone: parameters, multiply-adds per
row, activation values, and whether it fits in memory. Integer arithmetic only, so a size
of any magnitude is weighed before anything is allocated."""

from __future__ import annotations

from . import memory
from .config import MAX_UNITS, ModelConfig, network_input_width

# Bytes a parameter takes: to train, the float32 weight, its gradient, AdamW's two moments
# and the best weights so far, and the float64 copy predictions run on; to predict, the
# float32 weights and that copy. Networks are sized against memory with these before any
# tensor exists (``size_problem`` here, ``params.check_memory`` for training).
TRAIN_BYTES_PER_PARAMETER = 5 * 4 + 8
PREDICT_BYTES_PER_PARAMETER = 4 + 8


def parameter_count(config: ModelConfig) -> int:
    """Weights and biases of every member (embeddings included), before any allocation."""
    width = network_input_width(config)  # a plain MLP's is the encoder's
    per_member = sum(c * d for c, d in zip(config.cardinalities, config.embedding_dims))
    if config.network == "ensemble":  # see ensemble.EnsembleMLP
        e, numeric = config.ensemble_size, config.n_numeric
        d = config.embedding_width
        if config.numeric_embedding == "periodic":
            n = config.frequencies
            per_member += numeric * (n + 2 * n * d + d)
        if config.numeric_embedding == "ple":
            per_member += numeric * (config.bins * d + 2 * d)
        per_member += e * width  # the adapters
        sizes = [width, *config.hidden]
        last = sizes[-1]
        per_member += e * (last * config.n_outputs + config.n_outputs)  # the heads
    else:
        sizes = [width, *config.hidden, config.n_outputs]
    per_member += sum(a * b + b for a, b in zip(sizes, sizes[1:]))
    return int(config.n_members) * per_member


def multiply_adds_per_row(config: ModelConfig) -> int:
    """The multiply-adds of one row's prediction: the parameters, with an ensemble's shared
    layers counted once per ensemble member (each member's copy of the row goes through
    them)."""
    count = parameter_count(config)
    if config.network != "ensemble":
        return count
    sizes = [network_input_width(config), *config.hidden]
    shared = sum(a * b for a, b in zip(sizes, sizes[1:]))
    return count + config.n_members * (config.ensemble_size - 1) * shared


def activation_values(config: ModelConfig) -> int:
    """Values one row's pass through the stack produces: its inputs and every layer's
    outputs, for every member and efficient-ensemble member."""
    per_member = network_input_width(config) + sum(config.hidden) + config.n_outputs
    return int(config.n_members) * int(config.ensemble_size) * per_member


def size_problem(config: ModelConfig) -> str:
    """Why a network of this configuration cannot be built to predict with ('' when it
    can): its weights would not fit in memory, or a layer is wider than MAX_UNITS; in
    words with its size. Integer arithmetic on the sizes only: nothing is allocated."""
    count = parameter_count(config)
    need, budget = count * PREDICT_BYTES_PER_PARAMETER, memory.available()
    if need > budget.bytes:
        members = memory.shown(config.n_members)
        return (
            f"{memory.shown(count)} parameters in {members} member(s) need about "
            f"{memory.in_words(need)}, more than {budget.source} ({memory.in_words(budget.bytes)})"
        )
    if config.hidden and max(config.hidden) > MAX_UNITS:
        widest = memory.shown(max(config.hidden))
        return f"a layer of {widest} units, above the limit of {MAX_UNITS:,}"
    return ""
