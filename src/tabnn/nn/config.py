"""A network's configuration: everything needed to rebuild a network of either design
(``ModelConfig``, ``tabnn.json``'s ``model_config``; weights come from safetensors), the
choices it is made of, and ``build_config``, which sizes one for the columns a fitted
preprocessor describes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

from ..errors import UsageError
from ..features.preprocess import Preprocessor
from . import memory
from .designs import NAMED_DESIGNS, design_name, network_for

ACTIVATIONS = {
    "relu": F.relu,
    "gelu": F.gelu,
    "silu": F.silu,
    "selu": F.selu,
    "tanh": torch.tanh,
    "leaky_relu": F.leaky_relu,
    "identity": lambda x: x,  # a linear model: the W4 demonstration that circles need more
}
NORMS = ("none", "batch", "layer")
NUMERIC_EMBEDDINGS = ("none", "periodic", "ple")
# piecewise-linear encodings (``ensemble.PiecewiseLinearEmbedding``): 16 quantile bins per
# numeric column embedded in 8 units. TabM's published setting (48 bins, 16 units) measured
# 0.8835 mean accuracy on 8 dev tables for 89.9 s of fits; 16 x 8 measured 0.8874 for
# 72.4 s (docs/default-model.md): fewer bins overfit less on small tables (heart +2 points)
PLE_BINS = 16
PLE_WIDTH = 8
NETWORKS = ("mlp", "ensemble")  # TabularMLP, ensemble.EnsembleMLP
SCALED_LIMIT = 1e6  # standard deviations (or IQRs) from the center a scaled input may reach
ONE_HOT_MAX = 16  # categorical columns with at most this many categories are one-hot encoded
MAX_UNITS = 131_072  # the widest layer built


@dataclass
class ModelConfig:
    """Everything needed to rebuild the network (weights come from safetensors)."""

    n_numeric: int
    indicator_columns: list[int]
    cardinalities: list[int]
    scaling: str
    n_quantiles: int
    n_outputs: int
    hidden: list[int]
    activation: str = "relu"
    dropout: float = 0.0
    norm: str = "none"
    n_members: int = 1
    embedding_dims: list[int] = field(default_factory=list)
    # the efficient ensemble (``nn.ensemble``); a plain TabularMLP has network "mlp"
    network: str = "mlp"
    task: str = ""
    ensemble_size: int = 1
    numeric_embedding: str = "none"
    frequencies: int = 16
    embedding_width: int = 4  # RealMLP's PBLD: 16 frequencies -> 4 units per column
    bins: int = 0  # piecewise-linear encodings' bins per numeric column (PLE_BINS)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, state: dict) -> ModelConfig:
        return cls(**state)


def embedding_dim(cardinality: int) -> int:
    """0 means one-hot; otherwise fastai's rule of thumb, capped at 32. ``cardinality``
    counts the code for unknown and missing values besides the categories."""
    if cardinality - 1 <= ONE_HOT_MAX:
        return 0
    return min(32, round(1.6 * cardinality**0.56))


def encoded_width(n_numeric: int, n_indicators: int, cardinalities: list[int]) -> int:
    """Width of the encoder's output: the MLP's input size."""
    widths = [embedding_dim(c) or c for c in cardinalities]
    return n_numeric + n_indicators + sum(widths)


def network_input_width(config: ModelConfig) -> int:
    """Width of the first layer's inputs: the encoder's, plus any numeric embeddings (an
    ensemble's: ``ensemble.EnsembleMLP``)."""
    width = encoded_width(config.n_numeric, len(config.indicator_columns), config.cardinalities)
    if config.numeric_embedding != "none":
        width += config.n_numeric * config.embedding_width
    return width


def hidden_sizes(design: str | list[int], input_width: int) -> list[int]:
    """Hidden layer sizes from a design name or an explicit list.

    ``wide`` is one layer of 3 x the inputs and ``deep`` three layers as wide as the
    inputs (workload W1's designs); ``default`` two layers of 128, shared by the members
    of the default design's efficient ensemble (``nn.ensemble``; the docs' "The
    default model" has the measurements behind the width).
    """
    if not isinstance(design, str):
        sizes = [int(s) for s in design]
        if not sizes or min(sizes) < 1:
            raise UsageError(f"hidden sizes must be positive integers; got {design!r}.")
        return sizes
    if design == "wide":
        return [3 * input_width]
    if design == "deep":
        return [input_width] * 3
    if design == "default":
        return [128, 128]
    raise UsageError(f"Unknown design {design!r}; valid designs: {', '.join(NAMED_DESIGNS)}.")


def build_config(
    preprocessor: Preprocessor,
    n_outputs: int,
    *,
    preset: str | list[int] = "default",
    activation: str = "relu",
    dropout: float = 0.0,
    norm: str = "none",
    n_members: int = 1,
    task: str = "",
    ensemble_size: int = 1,
    numeric_embedding: str = "none",
) -> ModelConfig:
    """A ModelConfig sized for the columns a fitted preprocessor describes: a plain MLP,
    or an efficient ensemble (``nn.ensemble``) when ``ensemble_size`` > 1 or the numeric
    columns are embedded."""
    if activation not in ACTIVATIONS:
        raise UsageError(
            f"Unknown activation {activation!r}; valid: {', '.join(sorted(ACTIVATIONS))}."
        )
    if norm not in NORMS:
        raise UsageError(f"Unknown norm {norm!r}; valid: {', '.join(NORMS)}.")
    network = network_for(ensemble_size, numeric_embedding)
    if norm != "none" and network == "ensemble":  # the estimator refuses this first
        raise UsageError(
            f"norm {norm!r} cannot be honoured by the efficient ensemble network "
            f"(ensemble_size={ensemble_size}, numeric_embedding={numeric_embedding!r}): its "
            "layers have no normalisation. Use norm='none', or ensemble_size=1 and "
            "numeric_embedding='none' for a plain MLP."
        )
    indicators = [i for i, flag in enumerate(preprocessor.indicators) if flag]
    cards = preprocessor.cardinalities
    width = encoded_width(len(preprocessor.numeric), len(indicators), cards)
    config = ModelConfig(
        n_numeric=len(preprocessor.numeric),
        indicator_columns=indicators,
        cardinalities=cards,
        scaling=preprocessor.scaling,
        n_quantiles=len(preprocessor.quantiles[0]) if preprocessor.quantiles else 0,
        n_outputs=n_outputs,
        hidden=hidden_sizes(preset, width),
        activation=activation,
        dropout=float(dropout),
        norm=norm,
        n_members=n_members,
        embedding_dims=[embedding_dim(c) for c in cards],
        network=network,
        task=task,
        ensemble_size=int(ensemble_size),
        numeric_embedding=numeric_embedding,
        **({"bins": PLE_BINS, "embedding_width": PLE_WIDTH} if numeric_embedding == "ple" else {}),
    )
    if config.hidden and max(config.hidden) > MAX_UNITS:
        raise UsageError(
            f"The design {design_name(preset)} is too large: a layer of "
            f"{memory.shown(max(config.hidden))} units, above the limit of {MAX_UNITS:,}. "
            "Choose smaller layers (e.g. mlp:256-128)."
        )
    return config
