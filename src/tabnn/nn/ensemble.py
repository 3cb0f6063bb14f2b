"""The default network: an efficient ensemble (TabM-mini), with optional periodic numeric
embeddings.

Two published recipes, read and rebuilt here for tabnn's stack of members:

- **TabM** (Gorishniy et al., ICLR 2025): ``E`` ensemble members share one MLP; each has its
  own rank-1 adapter in front of the first layer (``x * r_e``, ``r_e`` initialised to random
  signs) and its own output head. The ``E`` copies of a batch go through the shared layers as
  one matrix product, the training loss is the mean of the members' losses, and the
  prediction is the mean of their probabilities. This is TabM's "mini" variant, which the
  paper finds as accurate as adapters in every layer, for less arithmetic.
- **Periodic numeric embeddings** (Gorishniy et al., NeurIPS 2022; RealMLP's PBLD,
  Holzmüller et al., NeurIPS 2024): each numeric column ``x`` becomes
  ``ReLU(Linear([cos 2πcx, sin 2πcx]))`` with learnable frequencies ``c``, concatenated with
  ``x`` itself, so the network can bend each column's effect before the columns mix.

- **Piecewise-linear encodings** (Gorishniy et al., NeurIPS 2022, "On Embeddings for
  Numerical Features in Tabular Deep Learning"; TabM's PLE variant): each numeric column
  is cut at the quantiles of the member's own training rows into ``bins`` bins, and a
  value becomes how far it fills each bin (0 below, 1 above, linear inside; the outer bins
  open-ended), which a per-column linear map embeds beside a linear embedding of the
  value itself (the map starts at zero, rtdl's "version B"). A threshold on one column
  is then one weight, which is what lets MLPs match gradient boosting on tables whose
  signal is in sharp cuts of single columns.

Every parameter keeps tabnn's leading stack axis ``K`` (folds, seeds, trials: members that
share nothing), so ``K`` folds of an ``E``-member ensemble train as one stack. ``forward`` and
``mlp`` return, per stack member, the logits of the ensemble's mean probability (softmax or
sigmoid of them gives that mean back), so everything downstream of a network reads them as
it reads a plain MLP's; ``train_logits`` gives the members' own logits for the loss.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError
from .config import ACTIVATIONS, ModelConfig, network_input_width
from .mlp import Dropout, InputEncoder, StackedLinear, TabularMLP
from .network import TabularNetwork
from .size import size_problem

FREQUENCY_SCALE = 0.1  # initial frequencies ~ N(0, 0.1^2), as RealMLP's PBLD embeddings


class PeriodicEmbedding(nn.Module):
    """Numeric inputs (K, B, F) -> (K, B, F * width): per column, ``width`` ReLU units of a
    linear map of ``frequencies`` cosines and sines, with per-member (K) parameters."""

    def __init__(self, members: int, features: int, frequencies: int, width: int) -> None:
        super().__init__()
        self.frequencies = nn.Parameter(torch.empty(members, features, frequencies))
        self.weight = nn.Parameter(torch.empty(members, features, 2 * frequencies, width))
        self.bias = nn.Parameter(torch.empty(members, features, width))

    def reset_member(self, k: int, generator: torch.Generator) -> None:
        self.frequencies.data[k].normal_(0.0, FREQUENCY_SCALE, generator=generator)
        bound = 1.0 / math.sqrt(self.weight.shape[2])
        self.weight.data[k].uniform_(-bound, bound, generator=generator)
        self.bias.data[k].uniform_(-bound, bound, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angles = (2 * math.pi) * x[..., None] * self.frequencies[:, None]  # (K, B, F, n)
        waves = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)  # (K, B, F, 2n)
        # one product per column: (K, F, B, 2n) @ (K, F, 2n, width)
        out = torch.matmul(waves.transpose(1, 2), self.weight).transpose(1, 2)
        return F.relu(out + self.bias[:, None]).flatten(-2)


OPEN = 1e9  # the outer bins' open bound: past any scaled value (SCALED_LIMIT is 1e6)


class PiecewiseLinearEmbedding(nn.Module):
    """Numeric inputs (K, B, F) -> (K, B, F * width): per column, a linear embedding of the
    value plus a linear map of its piecewise-linear encoding over up to ``bins`` bins
    (``fit_bins`` sets each member's from its training rows; unused bins are masked)."""

    def __init__(self, members: int, features: int, bins: int, width: int) -> None:
        super().__init__()
        shape = (members, features, bins)
        self.register_buffer("left", torch.zeros(shape))
        self.register_buffer("span", torch.ones(shape))
        self.register_buffer("lower", torch.zeros(shape))
        self.register_buffer("upper", torch.ones(shape))
        self.register_buffer("used", torch.zeros(shape))
        self.value_weight = nn.Parameter(torch.empty(members, features, width))
        self.value_bias = nn.Parameter(torch.empty(members, features, width))
        self.weight = nn.Parameter(torch.empty(members, features, bins, width))

    def reset_member(self, k: int, generator: torch.Generator) -> None:
        bound = 1.0 / math.sqrt(self.value_weight.shape[-1])  # rtdl's LinearEmbeddings
        self.value_weight.data[k].uniform_(-bound, bound, generator=generator)
        self.value_bias.data[k].uniform_(-bound, bound, generator=generator)
        self.weight.data[k].zero_()

    def fit_bins(self, k: int, values: torch.Tensor) -> None:
        """Member ``k``'s bins from its training rows' scaled values (rows, F): edges at
        evenly spaced quantiles, repeated edges merged (a column of few values gets few
        bins; a constant one none)."""
        bins = self.left.shape[-1]
        levels = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
        for j, column in enumerate(values.detach().cpu().double().T):
            edges = torch.unique(torch.quantile(column, levels))
            n = len(edges) - 1
            self.used[k, j] = 0.0
            if n < 1:
                continue
            self.left[k, j, :n] = edges[:-1].to(self.left.dtype)
            self.span[k, j, :n] = edges.diff().to(self.span.dtype)
            self.lower[k, j, :n], self.upper[k, j, :n] = 0.0, 1.0
            self.lower[k, j, 0], self.upper[k, j, n - 1] = -OPEN, OPEN
            self.used[k, j, :n] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        filled = (x[..., None] - self.left[:, None]) / self.span[:, None]  # (K, B, F, bins)
        filled = torch.minimum(torch.maximum(filled, self.lower[:, None]), self.upper[:, None])
        filled = filled * self.used[:, None]
        # one product per column: (K, F, B, bins) @ (K, F, bins, width)
        pieces = torch.matmul(filled.transpose(1, 2), self.weight).transpose(1, 2)
        value = x[..., None] * self.value_weight[:, None] + self.value_bias[:, None]
        return (value + pieces).flatten(-2)


class EnsembleHead(nn.Module):
    """One linear head per ensemble member: (K, E, B, in) -> (K, E, B, out)."""

    def __init__(self, members: int, ensemble: int, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, ensemble, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(members, ensemble, 1, out_features))

    def reset_member(self, k: int, generator: torch.Generator) -> None:
        bound = 1.0 / math.sqrt(self.weight.shape[2])
        self.weight.data[k].uniform_(-bound, bound, generator=generator)
        self.bias.data[k].uniform_(-bound, bound, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(x, self.weight) + self.bias


class EnsembleMLP(nn.Module):
    """Encoder, periodic numeric embeddings, E-member adapters, a shared MLP, E heads: a
    ``network.TabularNetwork``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        k, e = config.n_members, config.ensemble_size
        self.encoder = InputEncoder(config)
        self.numeric_embedding = numeric_embedding(config)
        sizes = [network_input_width(config), *config.hidden]
        self.adapter = nn.Parameter(torch.ones(k, e, 1, sizes[0]))
        self.hidden = nn.ModuleList(StackedLinear(k, a, b) for a, b in zip(sizes, sizes[1:]))
        self.head = EnsembleHead(k, e, sizes[-1], config.n_outputs)
        self.activation = ACTIVATIONS[config.activation]
        self.dropout = Dropout(config.dropout)

    plain = False  # the engine's hand-written backward pass covers TabularMLP only

    def reset_member(self, k: int, seed: int) -> None:
        """Initialise stack member k from its own seed, whatever the other members are."""
        generator = torch.Generator().manual_seed(seed)
        self.encoder.reset_member(k, generator)
        if self.numeric_embedding is not None:
            self.numeric_embedding.reset_member(k, generator)
        # random signs: TabM's initialisation, which makes the members differ from step one
        signs = torch.randint(0, 2, self.adapter.shape[1:], generator=generator)
        self.adapter.data[k] = signs.to(self.adapter.dtype) * 2 - 1
        for layer in [*self.hidden, self.head]:
            layer.reset_member(k, generator)

    def matmul_shapes(self, batch: int) -> list[tuple[int, int, int, int]]:
        """(members, rows, in, out) of each layer's product for a batch of ``batch`` rows."""
        e = self.config.ensemble_size
        shapes = [(w.shape[0], e * batch, *w.shape[1:]) for w in (m.weight for m in self.hidden)]
        k, _, n_in, n_out = self.head.weight.shape
        return [*shapes, (k * e, batch, n_in, n_out)]

    def fit_inputs(self, k: int, x_num: np.ndarray, rows: np.ndarray) -> None:
        """Fit what member ``k`` learns from its training ``rows`` of the raw numeric
        values before training: the piecewise-linear encodings' bins, on its scaled values."""
        if isinstance(self.numeric_embedding, PiecewiseLinearEmbedding):
            raw = torch.as_tensor(x_num[rows], dtype=torch.float32)[None]
            scaled = self.encoder.numeric(raw, member=k)[0, :, : self.config.n_numeric]
            self.numeric_embedding.fit_bins(k, scaled)

    def layer_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Encoded inputs (K, B, encoded width) -> the first layer's inputs before the
        adapters (K, B, network_input_width): the encoder's, then the embeddings."""
        if self.numeric_embedding is None:
            return x
        numeric = x[..., : self.config.n_numeric]
        return torch.cat([x, self.numeric_embedding(numeric)], dim=-1)

    def input_scale(self) -> torch.Tensor:
        """The root mean square of the ensemble members' adapters (K, 1, input width)."""
        return self.adapter.pow(2).mean(1).sqrt()

    def train_logits(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Encoded inputs (K, B, width) -> every ensemble member's logits (K, E, B, out);
        ``mask`` is not read: no layer here normalises (``build_config`` refuses a norm)."""
        x = self.layer_inputs(x)[:, None] * self.adapter  # (K, E, B, width)
        k, e, b, width = x.shape
        x = x.reshape(k, e * b, width)
        dropout = self.dropout if self.dropout.p > 0 else None
        for layer in self.hidden:
            x = self.activation(layer(x))
            x = dropout(x) if dropout is not None else x
        return self.head(x.view(k, e, b, -1))

    def mlp(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Encoded inputs (K, B, width) -> logits of the ensemble's mean probability
        (K, B, out)."""
        return ensemble_logits(self.train_logits(x, mask), self.config.task == "multiclass")

    def forward(
        self, x_num: torch.Tensor, x_cat: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(K or 1, batch, ·) raw inputs -> (K, batch, outputs) logits of the mean
        probability."""
        return self.mlp(self.encoder(x_num, x_cat), mask)


def numeric_embedding(config: ModelConfig) -> nn.Module | None:
    """The numeric columns' embedding the configuration names (none without any)."""
    k, f, width = config.n_members, config.n_numeric, config.embedding_width
    if not f or config.numeric_embedding == "none":
        return None
    if config.numeric_embedding == "ple":
        return PiecewiseLinearEmbedding(k, f, config.bins, width)
    return PeriodicEmbedding(k, f, config.frequencies, width)


def ensemble_logits(logits: torch.Tensor, softmax: bool) -> torch.Tensor:
    """Members' logits (K, E, B, out) -> (K, B, out) logits whose softmax (or sigmoid) is
    the members' mean probability, computed in log space so that certain predictions stay
    finite: ``log mean softmax`` for the softmax, ``log mean sigmoid(z) - log mean
    sigmoid(-z)`` for the sigmoid."""
    e = logits.shape[1]
    if softmax:
        return torch.logsumexp(F.log_softmax(logits, dim=-1), dim=1) - math.log(e)
    positive = torch.logsumexp(F.logsigmoid(logits), dim=1)
    negative = torch.logsumexp(F.logsigmoid(-logits), dim=1)
    return positive - negative


def build_network(config: ModelConfig) -> TabularNetwork:
    """The network a configuration describes: an ``EnsembleMLP`` or a plain ``TabularMLP``;
    one too large for memory is refused first (a configuration read back from a model
    directory is checked before use)."""
    problem = size_problem(config)
    if problem:
        raise ModelError(f"The network described cannot be built: {problem}.")
    return EnsembleMLP(config) if config.network == "ensemble" else TabularMLP(config)
