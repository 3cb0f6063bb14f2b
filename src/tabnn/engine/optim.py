"""The optimiser side of the engine: per-member gradient clipping, the stack's parameters
in one flat buffer, each member's best weights, and Adam with per-member state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from ..errors import UsageError
from .kernels import Kernels

if TYPE_CHECKING:
    from .config import TrainConfig


class GradientClipper:
    """Scales (K, ...) gradient tensors so that each member's norm over all of them is at
    most ``max_norm``: one norm per tensor (all members at once), then one multiply over
    the list. Views and shapes are taken once, for a fit's worth of steps."""

    def __init__(self, grads: list[torch.Tensor], kernels: Kernels | None = None) -> None:
        members = grads[0].shape[0]
        self.grads, self.kernels = grads, Kernels() if kernels is None else kernels
        self.rows = [g.reshape(members, -1) for g in grads]
        self.shapes = [(-1, *([1] * (g.dim() - 1))) for g in grads]

    def __call__(self, max_norm: float) -> None:
        norms = torch.stack([torch.linalg.vector_norm(r, dim=1) for r in self.rows])
        total = torch.linalg.vector_norm(norms, dim=0)
        factor = (max_norm / (total + 1e-6)).clamp(max=1.0)
        self.kernels.mul_(self.grads, [factor.view(shape) for shape in self.shapes])


class FlatParameters:
    """Every trainable (K, ...) tensor of a stack as a view into one flat buffer, and its
    gradient as a view into another, for the length of a fit.

    Each tensor keeps a contiguous block (all members), so batched matmuls write weight
    gradients in place; the optimizer then runs as one fused kernel over the whole buffer,
    and clipping and best-weight copies work block by block, with no concatenation or
    splitting at any step. ``release`` gives every parameter its own storage back (a saved
    model must not hold views into one buffer).
    """

    def __init__(self, params: Sequence[torch.Tensor]) -> None:
        self.params = list(params)
        first = self.params[0]
        self.members = first.shape[0]
        self.sizes = [p.numel() for p in self.params]
        self.weight = torch.empty(sum(self.sizes), dtype=first.dtype, device=first.device)
        self.grad = torch.zeros_like(self.weight)
        self.weights = self.blocks(self.weight)
        self.grads = self.blocks(self.grad)
        with torch.no_grad():
            for p, w, g in zip(self.params, self.weights, self.grads):
                w.copy_(p)
                p.data = w
                p.grad = g

    def blocks(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Views of a buffer laid out like ``weight``, one per parameter, shaped like it."""
        out, offset = [], 0
        for p, size in zip(self.params, self.sizes):
            out.append(flat[offset : offset + size].view(p.shape))
            offset += size
        return out

    def release(self) -> None:
        with torch.no_grad():
            for p in self.params:
                p.data = p.data.clone(memory_format=torch.contiguous_format)
                p.grad = None


class BestWeights:
    """A copy of each member's best weights (and batch-norm statistics)."""

    def __init__(self, flat: FlatParameters, buffers: list[torch.Tensor], kernels: Kernels):
        self.kernels = kernels
        self.live = flat.weights + buffers
        self.saved = flat.blocks(flat.weight.clone()) + [b.clone() for b in buffers]
        members = range(flat.members)
        # each member's slice of every tensor, taken once: copies then take one call
        self.live_rows = [[t[k] for t in self.live] for k in members]
        self.saved_rows = [[t[k] for t in self.saved] for k in members]

    def update(self, improved: Sequence[bool]) -> None:
        """Keep the current weights of the members that improved."""
        self._copy(self.saved, self.saved_rows, self.live, self.live_rows, improved)

    def restore(self, members: Sequence[bool]) -> None:
        """Give the chosen members their best weights back."""
        self._copy(self.live, self.live_rows, self.saved, self.saved_rows, members)

    def _copy(self, target, target_rows, source, source_rows, chosen: Sequence[bool]) -> None:
        ks = [k for k, on in enumerate(chosen) if on]
        if len(ks) == len(chosen):
            self.kernels.copy_(target, source)
        elif ks:
            self.kernels.copy_(
                [t for k in ks for t in target_rows[k]], [t for k in ks for t in source_rows[k]]
            )


def make_optimizer(
    model,
    config: TrainConfig,
    flat: FlatParameters | None = None,
    kernels: Kernels | None = None,
    weight_decay: Sequence[float] | None = None,
) -> StackedAdam:
    """Adam or AdamW over every parameter of a stack, with per-member state (and, given
    ``weight_decay`` per member, each member's own decay)."""
    kinds = {"adamw": True, "adam": False}
    if config.optimizer not in kinds:
        raise UsageError(f"optimizer must be adamw or adam; got {config.optimizer!r}.")
    return StackedAdam(
        [p for p in model.parameters() if p.requires_grad],
        weight_decay=config.weight_decay if weight_decay is None else weight_decay,
        decoupled=kinds[config.optimizer],
        betas=(0.9, config.beta2),
        flat=flat,
        kernels=kernels,
    )


class StackedAdam:
    """Adam (L2 weight decay) or AdamW (decoupled decay) that keeps each member apart.

    ``torch.optim.Adam`` keeps one step count per tensor, shared by all the members of a
    stacked weight, and moves every member at every step: a member with an empty batch
    (fewer rows than the longest member, or stopped early) would still see its moments
    decay, its weights decay and its bias correction advance. Here each member has its
    own step count and learning rate (and may have its own weight decay), and a member
    that sits a step out is left exactly as it was. The update is torch's fused Adam
    kernel: over the whole flat buffer (or every tensor) while every member has taken
    every step with one rate and decay (folds of equal size before any stops early), then
    over each member's slices, once per distinct learning rate and decay.

    Examples
    --------
    >>> w = torch.nn.Parameter(torch.ones(2, 3))
    >>> opt = StackedAdam([w], weight_decay=0.0, decoupled=True)
    >>> w.sum().backward()
    >>> opt.step([0.1, 0.1], [True, False])
    >>> w.detach()
    tensor([[0.9000, 0.9000, 0.9000],
            [1.0000, 1.0000, 1.0000]])
    """

    def __init__(
        self,
        params: Sequence[torch.Tensor],
        *,
        weight_decay: float | Sequence[float] = 0.0,
        decoupled: bool = True,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        flat: FlatParameters | None = None,
        kernels: Kernels | None = None,
    ) -> None:
        self.params = list(params)
        self.flat = flat
        # torch.optim.adam's fused path minus its per-call grouping of tensors by device
        self.kernels = Kernels() if kernels is None else kernels
        members = self.params[0].shape[0]
        if isinstance(weight_decay, float | int):  # one decay for every member
            weight_decay = [weight_decay] * members
        self.decays = [float(d) for d in weight_decay]
        self.options = {"beta1": betas[0], "beta2": betas[1], "eps": eps, "decoupled": decoupled}
        if flat is None:
            self.weights = [p.detach() for p in self.params]
            self.exp_avg = [torch.zeros_like(w) for w in self.weights]
            self.exp_avg_sq = [torch.zeros_like(w) for w in self.weights]
            self.whole = None
        else:
            moments, squares = torch.zeros_like(flat.weight), torch.zeros_like(flat.weight)
            self.weights = flat.weights
            self.exp_avg, self.exp_avg_sq = flat.blocks(moments), flat.blocks(squares)
            self.whole = ([flat.weight], [flat.grad], [moments], [squares])
        device = self.weights[0].device
        self.shared_steps = 0  # while in lockstep
        self.step_values: list[torch.Tensor] = []
        # one kernel over everything while members share a rate, a decay and every step
        self.lockstep = self.decays.count(self.decays[0]) == members
        self.member_steps = [torch.zeros((), device=device) for _ in range(members)]
        self.member_state = [
            ([w[k] for w in self.weights], [m[k] for m in self.exp_avg])
            + ([v[k] for v in self.exp_avg_sq],)
            for k in range(members)
        ]

    def _step_value(self, count: int) -> torch.Tensor:
        """The step count as the 0-d tensor the kernel reads, from a table made 4096 at a
        time (cheaper than incrementing a tensor at every step)."""
        index = count - 1
        if index >= len(self.step_values):
            start = len(self.step_values) + 1
            table = torch.arange(start, start + 4096, dtype=torch.float32)
            self.step_values.extend(table.to(self.weights[0].device).unbind())
        return self.step_values[index]

    def zero_grad(self) -> None:
        if self.flat is not None:
            self.flat.grad.zero_()
            return
        for p in self.params:
            p.grad = None

    def step(self, lrs: Sequence[float], active: Sequence[bool]) -> None:
        """Move the ``active`` members, member k with learning rate ``lrs[k]``. (The
        tensors it updates do not require gradients: no ``no_grad`` needed.)"""
        lr = lrs[0]
        if self.lockstep and all(active) and lrs.count(lr) == len(lrs):
            self.shared_steps += 1
            step = self._step_value(self.shared_steps)
            if self.whole is not None:
                weights, grads, moments, squares = self.whole
                steps = [step]
            else:
                weights, moments, squares = self.weights, self.exp_avg, self.exp_avg_sq
                grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
                steps = [step] * len(weights)
            self.kernels.adam_(
                weights, grads, moments, squares, steps, lr=lr, weight_decay=self.decays[0],
                **self.options,
            )  # fmt: skip
            return
        if self.flat is not None:
            grads = self.flat.grads
        else:
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        if self.lockstep:  # from now on each member counts its own steps
            self.lockstep = False
            for count in self.member_steps:
                count.fill_(self.shared_steps)
        groups: dict[tuple[float, float], list[int]] = {}
        for k, (rate, on) in enumerate(zip(lrs, active)):
            if on:
                groups.setdefault((rate, self.decays[k]), []).append(k)
        for (rate, decay), ks in groups.items():
            self.kernels.add_([self.member_steps[k] for k in ks], 1)
            weights, moments, squares = (
                [t for k in ks for t in self.member_state[k][i]] for i in range(3)
            )
            member_grads = [g[k] for k in ks for g in grads]
            steps = [self.member_steps[k] for k in ks for _ in grads]
            self.kernels.adam_(
                weights, member_grads, moments, squares, steps, lr=rate, weight_decay=decay,
                **self.options,
            )  # fmt: skip
