"""The plain network: an input encoder and an MLP, built as a *stack* of independent
members (its configuration: ``config``).

Every weight has a leading member axis, ``(members, in, out)``, and every activation is
``(members, batch, features)``, so K members (folds, seeds, an ensemble) train with one
batched matmul per layer. K = 1 is an ordinary model. ``forward`` returns logits: the
losses apply sigmoid/softmax themselves, and ``forward.probabilities`` does it for
inference.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..features.preprocess import Preprocessor
from .config import ACTIVATIONS, SCALED_LIMIT, ModelConfig, encoded_width


class StackedLinear(nn.Module):
    """K independent ``nn.Linear`` layers applied with one batched matmul."""

    def __init__(
        self, members: int, in_features: int, out_features: int, bias: bool = True
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, in_features, out_features))
        bias_values = torch.zeros(members, 1, out_features)
        if bias:
            self.bias = nn.Parameter(bias_values)
        else:  # a zero buffer keeps the state_dict's layout
            self.register_buffer("bias", bias_values)

    def reset_member(self, k: int, generator: torch.Generator) -> None:
        # nn.Linear's default: U(-1/sqrt(in), 1/sqrt(in)) for weights and biases
        bound = 1.0 / math.sqrt(self.weight.shape[1])
        self.weight.data[k].uniform_(-bound, bound, generator=generator)
        if isinstance(self.bias, nn.Parameter):
            self.bias.data[k].uniform_(-bound, bound, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (members, batch, in) @ (members, in, out) + (members, 1, out)
        return torch.baddbmm(self.bias, x, self.weight)


class StackedNorm(nn.Module):
    """Batch or layer normalisation with separate statistics and affine per member.

    Batch statistics count only the rows a mask marks as real, so the padding that evens
    out the members' batches changes neither the output nor the running statistics; a
    member with fewer than two real rows in a batch is normalised with its running
    statistics, as in evaluation. Running variance is the unbiased one, as in
    ``nn.BatchNorm1d``.
    """

    def __init__(self, kind: str, members: int, features: int, momentum: float = 0.1) -> None:
        super().__init__()
        self.kind, self.momentum = kind, momentum
        self.weight = nn.Parameter(torch.ones(members, 1, features))
        self.bias = nn.Parameter(torch.zeros(members, 1, features))
        if kind == "batch":
            self.register_buffer("running_mean", torch.zeros(members, 1, features))
            self.register_buffer("running_var", torch.ones(members, 1, features))

    def reset_member(self, k: int, generator: torch.Generator) -> None:
        self.weight.data[k] = 1.0
        self.bias.data[k] = 0.0
        if self.kind == "batch":
            self.running_mean[k] = 0.0
            self.running_var[k] = 1.0

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (K, batch, features), mask (K, batch) of 1 for real rows -> same shape as x."""
        if self.kind == "layer":
            x = F.layer_norm(x, x.shape[-1:])
        elif self.training:
            x = self._batch_norm(x, mask)
        else:
            x = (x - self.running_mean) / torch.sqrt(self.running_var + 1e-5)
        return x * self.weight + self.bias

    def _batch_norm(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        real = torch.ones_like(x[..., :1]) if mask is None else mask[..., None].to(x.dtype)
        count = real.sum(1, keepdim=True)  # (K, 1, 1)
        mean = (x * real).sum(1, keepdim=True) / count.clamp_min(1)
        var = ((x - mean).pow(2) * real).sum(1, keepdim=True) / count.clamp_min(1)
        enough = count > 1
        with torch.no_grad():
            unbiased = var * count / (count - 1).clamp_min(1)
            rate = self.momentum * enough.to(x.dtype)  # 0: running statistics stay
            self.running_mean.lerp_(mean, rate)
            self.running_var.lerp_(unbiased, rate)
        batch = (x - mean) / torch.sqrt(var + 1e-5)
        running = (x - self.running_mean) / torch.sqrt(self.running_var + 1e-5)
        return torch.where(enough, batch, running)


class InputEncoder(nn.Module):
    """Raw arrays -> network inputs: median fill, missing indicators, scaling, one-hot
    and embeddings, with per-member statistics (each fold fits its own)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        k, f = config.n_members, config.n_numeric
        self.scaling = config.scaling
        self.register_buffer("medians", torch.zeros(k, 1, f))
        self.register_buffer("centers", torch.zeros(k, 1, f))
        self.register_buffer("scales", torch.ones(k, 1, f))
        self.register_buffer("quantiles", torch.zeros(k, f, config.n_quantiles))
        self.register_buffer("indicator_columns", torch.tensor(config.indicator_columns).long())
        self.cardinalities = config.cardinalities
        self.embedding_dims = config.embedding_dims
        self.embeddings = nn.ParameterDict(
            {
                str(j): nn.Parameter(torch.empty(k, card, dim))
                for j, (card, dim) in enumerate(zip(config.cardinalities, config.embedding_dims))
                if dim
            }
        )

    def set_statistics(self, member: int, prep: Preprocessor) -> None:
        """Copy one member's fitted preprocessing statistics into the buffers."""
        self.medians[member, 0] = torch.tensor(prep.medians)
        self.centers[member, 0] = torch.tensor(prep.centers)
        self.scales[member, 0] = torch.tensor(prep.scales)
        if prep.quantiles:
            self.quantiles[member] = torch.tensor(prep.quantiles)

    def reset_member(self, k: int, generator: torch.Generator) -> None:
        for table in self.embeddings.values():
            table.data[k].normal_(0.0, 1.0, generator=generator)

    @property
    def n_members(self) -> int:
        return self.medians.shape[0]

    @property
    def fixed_width(self) -> int:
        """Width of the part of the inputs that does not train: scaled numeric columns,
        missing indicators and one-hot columns (everything but the embeddings)."""
        widths = [card for card, dim in zip(self.cardinalities, self.embedding_dims) if not dim]
        return self.medians.shape[-1] + len(self.indicator_columns) + sum(widths)

    @property
    def has_embeddings(self) -> bool:
        return any(self.embedding_dims)

    def shares_statistics(self) -> bool:
        """Whether every member scales with the same statistics (an ensemble of seeds on one
        split, rather than folds): then one encoding of the table serves them all."""
        stats = [self.medians, self.centers, self.scales, self.quantiles]
        return all(bool((s == s[:1]).all()) for s in stats)

    def numeric(self, x_num: torch.Tensor, *, member: int | None = None) -> torch.Tensor:
        """(members or 1, batch, numeric) raw values -> filled, scaled values and indicators;
        with ``member`` only that member's statistics are applied: (1, batch, ·)."""
        stats = slice(None) if member is None else slice(member, member + 1)
        missing = torch.isnan(x_num)
        filled = torch.where(missing, self.medians[stats], x_num)
        if self.scaling == "quantile":
            scaled = self._quantile_normal(filled, self.quantiles[stats])
        else:
            scaled = (filled - self.centers[stats]) / self.scales[stats]
            # a value far outside the training range (scale floors at 1e-12) must not
            # overflow float32 in the layers after; no real value comes near the bound
            scaled = scaled.clamp(-SCALED_LIMIT, SCALED_LIMIT)
            if self.scaling == "clipped":  # smooth clipping to (-3, 3), as RealMLP
                scaled = scaled / torch.sqrt(1 + (scaled / 3) ** 2)
        if not len(self.indicator_columns):
            return scaled
        indicators = missing[..., self.indicator_columns].to(scaled.dtype)
        return torch.cat([scaled, indicators.expand(scaled.shape[0], -1, -1)], dim=-1)

    @staticmethod
    def _quantile_normal(x: torch.Tensor, knots: torch.Tensor) -> torch.Tensor:
        # piecewise-linear map through the training quantiles to (0, 1), then to a normal
        # score; a value that equals several knots (a tie: a constant or discrete column)
        # sits in the middle of them, as in scikit-learn's QuantileTransformer
        # knots: (members, features, q)
        q = knots.shape[-1]
        values = x.expand(knots.shape[0], -1, -1).transpose(1, 2).contiguous()  # (K, F, B)
        below = torch.searchsorted(knots, values)  # knots < value
        at_or_below = torch.searchsorted(knots, values, right=True)  # knots <= value
        upper = below.clamp(1, q - 1)
        lo, hi = knots.gather(2, upper - 1), knots.gather(2, upper)
        between = upper - 1 + ((values - lo) / (hi - lo).clamp_min(1e-12)).clamp(0, 1)
        tied = (below + at_or_below - 1).to(values.dtype) / 2
        position = torch.where(at_or_below > below, tied, between)
        uniform = (position / (q - 1)).clamp(1e-3, 1 - 1e-3)
        return (math.sqrt(2) * torch.erfinv(2 * uniform - 1)).transpose(1, 2)

    def encode_fixed(
        self, x_num: torch.Tensor, x_cat: torch.Tensor, *, first_member: bool = False
    ) -> torch.Tensor:
        """The inputs that do not train, in the order ``forward`` uses them with the
        embedding columns left out: (K, batch, fixed_width), or (1, batch, fixed_width)
        with member 0's statistics when ``first_member``. Training computes this once per
        fit and gathers batches of it; the embeddings are added per batch by ``assemble``."""
        members = 1 if first_member else self.n_members
        parts = [self.numeric(x_num, member=0 if first_member else None).expand(members, -1, -1)]
        for j, (card, dim) in enumerate(zip(self.cardinalities, self.embedding_dims)):
            if not dim:
                one_hot = F.one_hot(x_cat[..., j], card).to(parts[0].dtype)
                parts.append(one_hot.expand(members, -1, -1))
        return torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]

    def assemble(self, fixed: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        """Fixed inputs (K, batch, fixed_width) and category codes (K or 1, batch, ·) ->
        the network's inputs (K, batch, encoded width), embeddings looked up per member."""
        if not self.has_embeddings:
            return fixed
        members = fixed.shape[0]
        x_cat = x_cat.expand(members, -1, -1)
        member_index = torch.arange(members, device=x_cat.device)[:, None]
        start = self.medians.shape[-1] + len(self.indicator_columns)
        parts = [fixed[..., :start]]
        for j, (card, dim) in enumerate(zip(self.cardinalities, self.embedding_dims)):
            if dim:
                parts.append(self.embeddings[str(j)][member_index, x_cat[..., j]])
            else:
                parts.append(fixed[..., start : start + card])
                start += card
        return torch.cat(parts, dim=-1)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        """x_num (K or 1, batch, numeric) float, x_cat (K or 1, batch, categorical) long ->
        (K, batch, encoded width)."""
        return self.assemble(self.encode_fixed(x_num, x_cat), x_cat)

    def design_matrix(
        self, x_num: torch.Tensor, x_cat: torch.Tensor, member: int = 0
    ) -> torch.Tensor:
        """One member's inputs with every categorical one-hot: what a linear baseline sees
        (each fold's baseline uses that fold's statistics)."""
        parts = [self.numeric(x_num[None], member=member)[0]]
        for j, card in enumerate(self.cardinalities):
            parts.append(F.one_hot(x_cat[:, j], card).to(parts[0].dtype))
        return torch.cat(parts, dim=-1)


def dropout_mask(
    x: torch.Tensor, p: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Inverted-dropout multipliers shaped like x: 0 with probability p, else 1 / (1 - p).
    One uniform draw and a comparison: twice as fast on the CPU as ``bernoulli_``, which
    ``nn.Dropout`` uses, and shared by the autograd and hand-written training paths. The
    draw comes from ``generator`` (torch's global one when None)."""
    noise = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return noise.ge_(p).mul_(1 / (1 - p))


class Dropout(nn.Module):
    """``nn.Dropout`` with masks from ``dropout_mask``, drawn from ``generator``: the
    training engine sets one per fit (seeded by the stack), so that no fit reads or
    moves torch's global random state."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p <= 0:
            return x
        return x * dropout_mask(x, self.p, self.generator)


class TabularMLP(nn.Module):
    """Encoder, hidden blocks (linear, norm, activation, dropout) and a linear head: a
    ``network.TabularNetwork``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        k = config.n_members
        self.encoder = InputEncoder(config)
        width = encoded_width(config.n_numeric, len(config.indicator_columns), config.cardinalities)
        sizes = [width, *config.hidden]
        # batch norm subtracts any bias before it: such a bias would only drift on the
        # rounding noise of its zero gradient, which Adam scales up to full steps
        bias = config.norm != "batch"
        self.hidden = nn.ModuleList(
            StackedLinear(k, a, b, bias=bias) for a, b in zip(sizes, sizes[1:])
        )
        self.norms = nn.ModuleList(
            StackedNorm(config.norm, k, b) if config.norm != "none" else nn.Identity()
            for b in config.hidden
        )
        self.head = StackedLinear(k, sizes[-1], config.n_outputs)
        self.activation = ACTIVATIONS[config.activation]
        self.dropout = Dropout(config.dropout)

    def reset_member(self, k: int, seed: int) -> None:
        """Initialise member k from its own seed, whatever the other members are."""
        generator = torch.Generator().manual_seed(seed)
        self.encoder.reset_member(k, generator)
        for layer in [*self.hidden, self.head]:
            layer.reset_member(k, generator)
        for norm in self.norms:
            if isinstance(norm, StackedNorm):
                norm.reset_member(k, generator)

    def matmul_shapes(self, batch: int) -> list[tuple[int, int, int, int]]:
        """(members, rows, in, out) of each layer's product for a batch of ``batch`` rows."""
        return [(m.weight.shape[0], batch, *m.weight.shape[1:]) for m in [*self.hidden, self.head]]

    def layer_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Encoded inputs -> the first layer's inputs: the same here."""
        return x

    def fit_inputs(self, k: int, x_num: np.ndarray, rows: np.ndarray) -> None:
        """Nothing here is fitted on a member's training rows beyond the encoder's
        statistics."""

    def input_scale(self) -> torch.Tensor:
        """Ones (K, 1, input width): nothing scales the first layer's inputs here."""
        first = (self.hidden[0] if len(self.hidden) else self.head).weight  # (K, in, out)
        return first.new_ones(first.shape[0], 1, first.shape[1])

    @property
    def plain(self) -> bool:
        """Whether the network is linear layers with ReLU (or nothing) and dropout in
        between, with no norm and no embedding: the case the training engine
        differentiates by hand."""
        c = self.config
        return (
            c.norm == "none"
            and 0 <= c.dropout < 1
            and c.activation in ("relu", "identity")
            and not self.encoder.has_embeddings
        )

    def forward(
        self, x_num: torch.Tensor, x_cat: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(K or 1, batch, ·) inputs -> (K, batch, outputs) logits; ``mask`` (K, batch)
        marks the real rows of a padded training batch, for batch norm."""
        return self.mlp(self.encoder(x_num, x_cat), mask)

    def mlp(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Encoded inputs (K, batch, encoded width) -> (K, batch, outputs) logits (also
        what training reads: ``train_logits``)."""
        dropout = self.dropout if self.dropout.p > 0 else None
        for layer, norm in zip(self.hidden, self.norms):
            x = layer(x)
            x = norm(x, mask) if isinstance(norm, StackedNorm) else x
            x = self.activation(x)
            x = dropout(x) if dropout is not None else x
        return self.head(x)

    train_logits = mlp  # no ensemble axis: training reads the prediction's logits
