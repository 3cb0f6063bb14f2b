"""How much each original column moves a network's first layer: a cheap stand-in for
permutation importance, used by the report to choose which columns to permute."""

from __future__ import annotations

import numpy as np
import torch

from ..nn.config import ModelConfig
from ..nn.network import TabularNetwork


def input_contributions(network: TabularNetwork, x_num, x_cat) -> np.ndarray:
    """How much each original column moves the first layer on these rows: the variance
    over the rows of the column's term in the first layer's pre-activations (its inputs
    times their weights), summed over the units, averaged over the members.

    One pass of the encoder, no prediction: a column whose term barely varies cannot
    change what the network says. Each input is weighed by the network's ``input_scale``
    (for an ensemble, ``nn.ensemble``, its adapters' root mean square over the ensemble
    members: exact for columns with one input). Columns in the preprocessing's order
    (numeric, then categorical).
    """
    config = network.config
    with torch.no_grad():
        dtype = network.encoder.medians.dtype
        encoded = network.encoder(
            torch.as_tensor(np.asarray(x_num), dtype=dtype)[None],
            torch.as_tensor(np.asarray(x_cat), dtype=torch.int64)[None],
        )
        x = network.layer_inputs(encoded)
        x = x - x.mean(1, keepdim=True)  # (K, rows, width)
        x = x * network.input_scale()  # an ensemble's adapters (ones otherwise: exact)
        weight = (network.hidden[0] if len(network.hidden) else network.head).weight
        owner = torch.as_tensor(input_owners(config))
        features = config.n_numeric + len(config.cardinalities)
        result = torch.zeros(x.shape[0], features, dtype=dtype)
        counts = torch.bincount(owner, minlength=features)
        single = counts[owner] == 1  # one input per column: its variance times |w|^2
        terms = x[..., single].pow(2).mean(1) * weight[:, single].pow(2).sum(-1)
        result.index_add_(1, owner[single], terms)
        for column in torch.nonzero(counts > 1).flatten().tolist():
            inputs = owner == column
            term = x[..., inputs] @ weight[:, inputs]  # (K, rows, units)
            result[:, column] = term.pow(2).mean(1).sum(-1)
    return result.mean(0).numpy()


def input_owners(config: ModelConfig) -> np.ndarray:
    """The original column (numeric then categorical) of each input of the first layer:
    scaled numbers, missing indicators, categories, then any numeric embeddings."""
    numeric = list(range(config.n_numeric))
    indicators = list(config.indicator_columns)
    categorical = [
        config.n_numeric + j
        for j, (card, dim) in enumerate(zip(config.cardinalities, config.embedding_dims))
        for _ in range(dim or card)
    ]
    embedded = []
    if config.network == "ensemble" and config.numeric_embedding != "none":
        embedded = [j for j in numeric for _ in range(config.embedding_width)]
    return np.asarray(numeric + indicators + categorical + embedded, dtype=np.int64)
