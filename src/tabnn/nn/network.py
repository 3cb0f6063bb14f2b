"""The one interface of tabnn's networks (``TabularNetwork``): what the training engine, the
estimator, the exporter, the artifact and the report use of a network, and nothing more.

Both designs implement it: the plain MLP (``mlp.TabularMLP``) and the default design's
efficient ensemble (``ensemble.EnsembleMLP``); ``ensemble.build_network`` builds the one a
configuration names. Code that needs a design's own parts (the exporter's operators, the
engine's hand-written backward pass) asks for that class instead.

Shapes: ``K`` is the stack's member axis (folds, seeds, trials: members that share
nothing; ``config.n_members``), ``B`` the rows, ``width`` the encoder's output width
(``mlp.encoded_width``) and ``E`` an efficient ensemble's own members inside each stack
member (``config.ensemble_size``; a plain MLP has no such axis).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from .config import ModelConfig
from .mlp import Dropout, InputEncoder


@runtime_checkable
class TabularNetwork(Protocol):
    """A stack of K networks of one design. Both designs are ``torch.nn.Module``s; of the
    module's methods, those declared at the end are the ones tabnn calls."""

    config: ModelConfig
    """What it was built from (``tabnn.json``'s ``model_config``)."""
    encoder: InputEncoder
    """Raw inputs -> encoded inputs (K, B, width), with each member's statistics."""
    hidden: nn.ModuleList
    """The hidden layers: ``StackedLinear``, weights (K, in, out); an ensemble's members
    share them."""
    head: nn.Module
    """The output layer: weights (K, in, outputs), or (K, E, in, outputs) for an ensemble
    (one head per member)."""
    dropout: Dropout
    """Dropout after each hidden activation; the engine sets its ``generator`` for a fit."""

    @property
    def plain(self) -> bool:
        """Whether the engine may differentiate the network by hand (``ManualSteps``): an
        encoder without embeddings, then ``hidden`` and ``head`` as (K, in, out) products
        with ReLU or no activation and dropout below 1 between them, and nothing else. Only
        a plain MLP can be."""
        ...

    def reset_member(self, k: int, seed: int) -> None:
        """Initialise stack member ``k`` from its own ``seed``, whatever the other members
        hold, so that a member of a stack trains as it would alone."""
        ...

    def matmul_shapes(self, batch: int) -> list[tuple[int, int, int, int]]:
        """(members, rows, in, out) of each layer's matrix product for a training batch of
        ``batch`` rows per stack member: what the engine weighs a step's CPU work by."""
        ...

    def fit_inputs(self, k: int, x_num: np.ndarray, rows: np.ndarray) -> None:
        """Before training, fit what member ``k`` learns from its training ``rows`` of the
        raw numeric values ``x_num`` (table rows, numeric) besides the encoder's statistics
        (the piecewise-linear encodings' bins); nothing, and no copy of the rows, for
        designs without such a part."""
        ...

    def layer_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Encoded inputs (K, B, width) -> the first layer's inputs (K, B, input width): the
        same, or with the periodic numeric embeddings after them."""
        ...

    def input_scale(self) -> torch.Tensor:
        """(K, 1, input width): what each of the first layer's inputs is multiplied by
        before its product, as a root mean square over the ensemble's members (their
        adapters); ones where nothing scales them."""
        ...

    def train_logits(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Encoded inputs (K, B, width) -> the logits the training loss reads: (K, B,
        outputs), or every ensemble member's own (K, E, B, outputs), whose losses are
        averaged. ``mask`` (K, B) marks the real rows of a padded batch (for batch norm)."""
        ...

    def mlp(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Encoded inputs (K, B, width) -> (K, B, outputs) logits whose sigmoid (softmax for
        multi-class) is each stack member's probability: an ensemble's mean probability.
        What validation and prediction read."""
        ...

    def forward(
        self, x_num: torch.Tensor, x_cat: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Raw inputs, x_num (K or 1, B, numeric) float and x_cat (K or 1, B, categorical)
        int64 -> ``mlp`` of their encoding, (K, B, outputs). Called as ``network(x_num,
        x_cat)``."""
        ...

    # torch.nn.Module's methods that tabnn calls on a network
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...
    def modules(self) -> Iterator[nn.Module]: ...
    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]: ...
    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any: ...
    def train(self, mode: bool = True) -> TabularNetwork: ...
    def eval(self) -> TabularNetwork: ...
    def to(self, *args: Any, **kwargs: Any) -> TabularNetwork: ...
    def cpu(self) -> TabularNetwork: ...
    def float(self) -> TabularNetwork: ...
    def double(self) -> TabularNetwork: ...
