"""The training engine: a stack of members trained together on device-resident tensors.

Data lives on the device as a few tensors; each step gathers one batch of row indices per
member, so there is no per-row Dataset/DataLoader cost. Each member has its own training
rows, validation rows, seed, shuffling and early-stopping state; the best weights of each
member are restored at the end. Nothing here prints: progress goes to a callback.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.adam import adam

from .errors import UsageError
from .model import TabularMLP

TASKS = ("binary", "multiclass", "multilabel")


@dataclass
class TrainConfig:
    """Optimisation settings shared by every member of a stack."""

    epochs: int = 200
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    schedule: str = "cosine"
    warmup_epochs: int = 3
    patience: int = 20
    min_delta: float = 1e-4
    grad_clip: float = 1.0
    restore_best: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Member:
    """One member's share of the data: row indices into the stack's tensors, and a seed."""

    train_rows: np.ndarray
    val_rows: np.ndarray
    seed: int


@dataclass
class TensorData:
    """The whole table as tensors on one device."""

    x_num: torch.Tensor  # (rows, numeric) float32, NaN for missing
    x_cat: torch.Tensor  # (rows, categorical) int64, 0 for unknown/missing
    y: torch.Tensor  # binary (rows,) float, multiclass (rows,) int64, multilabel (rows, labels)

    @classmethod
    def from_arrays(cls, x_num, x_cat, y, device: torch.device) -> TensorData:
        y = torch.as_tensor(np.array(y))  # a copy: the caller's array may be read-only
        y = y.long() if y.dtype in (torch.int32, torch.int64) else y.float()
        return cls(
            torch.tensor(x_num, dtype=torch.float32, device=device),
            torch.tensor(x_cat, dtype=torch.int64, device=device),
            y.to(device),
        )


@dataclass
class History:
    """Per-epoch records (lists over members) and each member's best epoch."""

    epochs: list[dict]
    best_epoch: list[int]
    best_val_loss: list[float]


class LossFunction:
    """Per-row losses for a task, with optional class weights; never a sigmoid or softmax
    before the loss: the ``*_with_logits`` functions do that stably."""

    def __init__(self, task: str, class_weight: torch.Tensor | None = None) -> None:
        self.task, self.class_weight = task, class_weight

    def __call__(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """logits (K, B, out), y (K, B[, labels]) -> per-row loss and per-row weight (K, B)."""
        logits = logits.float()
        if self.task == "multiclass":
            loss = F.cross_entropy(logits.transpose(1, 2), y, reduction="none")
            weight = self.class_weight[y] if self.class_weight is not None else None
        elif self.task == "binary":
            loss = F.binary_cross_entropy_with_logits(logits[..., 0], y, reduction="none")
            weight = None
            if self.class_weight is not None:  # (w_negative, w_positive)
                weight = torch.where(y > 0.5, self.class_weight[1], self.class_weight[0])
        else:
            pos_weight = self.class_weight
            loss = F.binary_cross_entropy_with_logits(
                logits, y, reduction="none", pos_weight=pos_weight
            ).mean(-1)
            weight = None
        return loss, torch.ones_like(loss) if weight is None else weight


def device_of(name: str) -> torch.device:
    """``auto`` picks CUDA when present; ``cpu``, ``cuda`` and ``cuda:N`` are checked."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name != "cpu" and name != "cuda" and not re.fullmatch(r"cuda:\d+", name):
        raise UsageError(f"device must be auto, cpu, cuda or cuda:N; got {name!r}.")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(
                f"device {name!r} was asked for, but PyTorch sees no CUDA device here."
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(
                f"device {name!r} was asked for, but PyTorch sees only "
                f"{torch.cuda.device_count()} CUDA device(s) (cuda:0 onwards)."
            )
    return device


def padded_rows(row_sets: Sequence[np.ndarray], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Ragged per-member row lists -> (K, longest) indices and a 0/1 mask of real entries."""
    longest = max(1, max(len(r) for r in row_sets))
    index = torch.zeros(len(row_sets), longest, dtype=torch.long)
    mask = torch.zeros(len(row_sets), longest)
    for k, rows in enumerate(row_sets):
        index[k, : len(rows)] = torch.as_tensor(rows, dtype=torch.long)
        mask[k, : len(rows)] = 1.0
    return index.to(device), mask.to(device)


def shuffled_rows(members: Sequence[Member], generators, device):
    """One epoch's order: each member's rows permuted by its own generator, then padded."""
    orders = [
        m.train_rows[torch.randperm(len(m.train_rows), generator=g).numpy()]
        for m, g in zip(members, generators)
    ]
    return padded_rows(orders, device)


def lr_factor(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Linear warm-up, then cosine decay to zero over ``epochs`` (or constant)."""
    warmup = config.warmup_epochs * steps_per_epoch
    if step < warmup:
        return (step + 1) / warmup
    if config.schedule == "constant":
        return 1.0
    total = max(1, config.epochs * steps_per_epoch - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / total)))


def clip_per_member(params: list[torch.Tensor], max_norm: float) -> None:
    """Clip each member's gradient norm on its own, so members stay independent."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    squares = torch.stack([g.pow(2).flatten(1).sum(1) for g in grads]).sum(0)  # (K,)
    factor = (max_norm / (squares.sqrt() + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(factor.view(-1, *([1] * (g.dim() - 1))))


def member_losses(model, data: TensorData, rows, mask, loss_fn) -> torch.Tensor:
    """Mean weighted loss per member over the given (K, B) rows -> (K,)."""
    logits = model(data.x_num[rows], data.x_cat[rows], mask)  # padding kept out of batch norm
    loss, weight = loss_fn(logits, data.y[rows])
    weight = weight * mask
    return (loss * weight).sum(1) / weight.sum(1).clamp_min(1e-12)


@torch.no_grad()
def evaluate_members(model, data, rows, mask, loss_fn, task, chunk=8192):
    """Validation loss and accuracy per member (K,), in chunks of rows."""
    model.eval()
    total_loss = torch.zeros(rows.shape[0], device=rows.device)
    total_weight = torch.zeros_like(total_loss)
    correct = torch.zeros_like(total_loss)
    for start in range(0, rows.shape[1], chunk):
        r, m = rows[:, start : start + chunk], mask[:, start : start + chunk]
        logits = model(data.x_num[r], data.x_cat[r])
        loss, weight = loss_fn(logits, data.y[r])
        total_loss += (loss * weight * m).sum(1)
        total_weight += (weight * m).sum(1)
        correct += (is_correct(logits, data.y[r], task) * m).sum(1)
    model.train()
    return total_loss / total_weight.clamp_min(1e-12), correct / mask.sum(1).clamp_min(1)


def is_correct(logits: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    """1.0 where the prediction is right: the class for single-label tasks, the share of
    labels right (1 - Hamming loss) for multi-label."""
    if task == "multiclass":
        return (logits.argmax(-1) == y).float()
    if task == "binary":
        return ((logits[..., 0] > 0).float() == y).float()
    return ((logits > 0).float() == y).float().mean(-1)


def make_optimizer(model, config: TrainConfig) -> StackedAdam:
    """Adam or AdamW over every parameter of a stack, with per-member state."""
    kinds = {"adamw": True, "adam": False}
    if config.optimizer not in kinds:
        raise UsageError(f"optimizer must be adamw or adam; got {config.optimizer!r}.")
    return StackedAdam(
        [p for p in model.parameters() if p.requires_grad],
        weight_decay=config.weight_decay,
        decoupled=kinds[config.optimizer],
    )


class StackedAdam:
    """Adam (L2 weight decay) or AdamW (decoupled decay) that keeps each member apart.

    ``torch.optim.Adam`` keeps one step count per tensor, shared by all the members of a
    stacked weight, and moves every member at every step: a member with an empty batch
    (fewer rows than the longest member, or stopped early) would still see its moments
    decay, its weights decay and its bias correction advance. Here each member has its
    own step count and learning rate, and a member that sits a step out is left exactly
    as it was. The update is torch's fused Adam kernel: over whole tensors while every
    member has taken every step (folds of equal size before any stops early), then over
    each member's slices, once per distinct learning rate.

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
        weight_decay: float = 0.0,
        decoupled: bool = True,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params = list(params)
        self.options = {
            "decoupled_weight_decay": decoupled,
            "amsgrad": False,
            "beta1": betas[0],
            "beta2": betas[1],
            "weight_decay": weight_decay,
            "eps": eps,
            "maximize": False,
        }
        self.weights = weights = [p.detach() for p in self.params]
        self.exp_avg = [torch.zeros_like(p) for p in weights]
        self.exp_avg_sq = [torch.zeros_like(p) for p in weights]
        self.steps = [torch.zeros((), device=p.device) for p in weights]  # while in lockstep
        self.lockstep = True
        members = range(weights[0].shape[0])
        # member k -> its slice of every tensor, and its own step counts once out of lockstep
        self.member_state = [
            (
                [w[k] for w in weights],
                [m[k] for m in self.exp_avg],
                [v[k] for v in self.exp_avg_sq],
                [torch.zeros((), device=w.device) for w in weights],
            )
            for k in members
        ]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, lrs: Sequence[float], active: Sequence[bool]) -> None:
        """Move the ``active`` members, member k with learning rate ``lrs[k]``."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        if self.lockstep and all(active) and len(set(lrs)) == 1:
            state = (self.exp_avg, self.exp_avg_sq, [], self.steps)
            adam(self.weights, grads, *state, fused=True, lr=lrs[0], **self.options)
            return
        if self.lockstep:  # from now on each member counts its own steps
            self.lockstep = False
            for *_, counts in self.member_state:
                for count, shared in zip(counts, self.steps):
                    count.copy_(shared)
        by_lr: dict[float, list[int]] = {}
        for k, (lr, on) in enumerate(zip(lrs, active)):
            if on:
                by_lr.setdefault(lr, []).append(k)
        for lr, ks in by_lr.items():
            weights, moments, squares, steps = (
                [t for k in ks for t in self.member_state[k][i]] for i in range(4)
            )
            member_grads = [g[k] for k in ks for g in grads]
            state = (moments, squares, [], steps)
            adam(weights, member_grads, *state, fused=True, lr=lr, **self.options)


class BestWeights:
    """A copy of each member's best state, updated member by member."""

    def __init__(self, model) -> None:
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def update(self, model, improved: torch.Tensor) -> None:
        for name, value in model.state_dict().items():
            if value.dim() and value.shape[0] == improved.shape[0]:
                keep = improved.view(-1, *([1] * (value.dim() - 1)))
                self.state[name] = torch.where(keep, value.detach(), self.state[name])

    def restore(self, model) -> None:
        model.load_state_dict(self.state)


# Below this many floating-point operations per step, CPU threads cost more in
# synchronisation than they save, and on a busy machine they can stall a step for
# milliseconds while a thread waits for a core.
SMALL_STEP_FLOPS = 2e8


@contextmanager
def cpu_threads_for(model, batch_size: int, device: torch.device):
    """Run small CPU steps on one thread; restore torch's setting afterwards."""
    per_row = sum(p.numel() for p in model.parameters())
    small = 6 * batch_size * per_row < SMALL_STEP_FLOPS  # forward + backward ~ 6 flops/weight
    if device.type != "cpu" or not small:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit_stack(
    model: TabularMLP,
    data: TensorData,
    members: Sequence[Member],
    task: str,
    config: TrainConfig,
    *,
    class_weight: torch.Tensor | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> History:
    """Train every member of ``model`` on its own rows; return the per-epoch history.

    Each member ends as it would if trained alone with the same seed and rows (up to
    float rounding): it takes ceil(rows / batch_size) steps an epoch on its own learning
    rate schedule, and sits out the steps of the stack that it has no rows for. Dropout
    masks are the exception: they come from one random stream for the whole stack.

    Early stopping watches each member's validation loss; a member whose loss has not
    improved for ``patience`` epochs stops for good (no more updates; ``None`` for its
    training loss in the history) and gets its best weights back. Training ends when
    every member has stopped, or after ``epochs``. Members without validation rows train
    for all epochs and keep their last weights.
    """
    with cpu_threads_for(model, config.batch_size, data.y.device):
        return _fit_stack(model, data, members, task, config, class_weight, on_epoch)


def _fit_stack(model, data, members, task, config, class_weight, on_epoch) -> History:
    device = data.y.device
    for i, member in enumerate(members):
        model.reset_member(i, member.seed)
    torch.manual_seed(members[0].seed)  # dropout masks
    generators = [torch.Generator().manual_seed(m.seed + 1) for m in members]
    val_rows, val_mask = padded_rows([m.val_rows for m in members], device)
    has_val = [len(m.val_rows) > 0 for m in members]
    loss_fn = LossFunction(task, class_weight)
    optimizer = make_optimizer(model, config)
    clock = MemberClock(config, [len(m.train_rows) for m in members])
    stopping = EarlyStopping(has_val, config.patience, config.min_delta)
    best = BestWeights(model)
    records = []
    model.train()
    for epoch in range(1, config.epochs + 1):
        train_loss, lr = train_epoch(
            model, data, members, generators, optimizer, loss_fn, config, clock, stopping.stopped
        )
        val_loss, val_acc = evaluate_members(model, data, val_rows, val_mask, loss_fn, task)
        was_stopped = list(stopping.stopped)
        improved = stopping.update(epoch, val_loss.tolist())
        best.update(model, torch.tensor(improved, device=device))
        record = {
            "epoch": epoch,
            "train_loss": [None if s else v for v, s in zip(train_loss.tolist(), was_stopped)],
            "val_loss": [v if h else None for v, h in zip(val_loss.tolist(), has_val)],
            "val_accuracy": [v if h else None for v, h in zip(val_acc.tolist(), has_val)],
            "lr": lr,
        }
        records.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if all(stopping.stopped):
            break
    if config.restore_best and any(has_val):
        best.update(model, torch.tensor([not h for h in has_val], device=device))
        best.restore(model)  # members without validation keep their last weights
    model.eval()
    best_epoch = [e if h else len(records) for e, h in zip(stopping.best_epoch, has_val)]
    best_values = [v if h else None for v, h in zip(stopping.best_loss, has_val)]
    return History(records, best_epoch, best_values)


def train_epoch(model, data, members, generators, optimizer, loss_fn, config, clock, stopped):
    """One epoch for every member still training -> per-member mean training loss (K,)
    and the learning rate at the epoch's last step. Stopped members sit it out."""
    device = data.y.device
    order, order_mask = shuffled_rows(members, generators, device)
    order_mask *= torch.tensor([not s for s in stopped], device=device)[:, None]
    plan = clock.epoch(stopped)
    train_loss = torch.zeros(len(members), device=device)
    for step, (rates, active) in enumerate(plan):
        batch = slice(step * config.batch_size, (step + 1) * config.batch_size)
        rows, mask = order[:, batch], order_mask[:, batch]
        losses = member_losses(model, data, rows, mask, loss_fn)
        optimizer.zero_grad()
        losses.sum().backward()  # members share no weights: each gets its own gradient
        if config.grad_clip:
            clip_per_member(optimizer.params, config.grad_clip)
        optimizer.step(rates, active)
        train_loss += losses.detach() * mask.sum(1)
    last_lr = max(r for r, on in zip(*plan[-1]) if on) if plan else 0.0
    return train_loss / order_mask.sum(1).clamp_min(1), last_lr


class MemberClock:
    """Each member's own steps and learning rates: a member takes ceil(rows / batch) steps
    an epoch and follows the schedule on its own step count, exactly as it would alone;
    the stack runs as many steps as its longest live member."""

    def __init__(self, config: TrainConfig, train_sizes: Sequence[int]) -> None:
        self.config = config
        self.per_epoch = [math.ceil(n / config.batch_size) for n in train_sizes]
        self.steps = [0] * len(train_sizes)

    def epoch(self, stopped: Sequence[bool]) -> list[tuple[list[float], list[bool]]]:
        """For each step of the coming epoch: per-member learning rates and activity."""
        live = [0 if s else n for n, s in zip(self.per_epoch, stopped)]
        plan = [
            ([self._lr(k, step) for k in range(len(live))], [step < n for n in live])
            for step in range(max(live, default=0))
        ]
        self.steps = [done + n for done, n in zip(self.steps, live)]
        return plan

    def _lr(self, k: int, step: int) -> float:
        return self.config.lr * lr_factor(self.config, self.steps[k] + step, self.per_epoch[k])


class EarlyStopping:
    """Each member's best validation loss and epoch; a member stops for good after
    ``patience`` epochs without an improvement of more than ``min_delta`` (as
    scikit-learn's ``tol``: the best weights still follow every new minimum, but crawling
    gains on a solved problem do not keep it training). Members without validation rows
    never stop."""

    def __init__(self, has_val: Sequence[bool], patience: int, min_delta: float = 0.0) -> None:
        self.has_val, self.patience, self.min_delta = list(has_val), patience, min_delta
        self.best_loss = [math.inf] * len(has_val)
        self.best_epoch = [0] * len(has_val)
        self.since_best = [0] * len(has_val)
        self.stopped = [False] * len(has_val)

    def update(self, epoch: int, losses: Sequence[float]) -> list[bool]:
        """Record one epoch's validation losses -> which members improved."""
        improved = []
        for k, loss in enumerate(losses):
            live = self.has_val[k] and not self.stopped[k]
            better = live and loss < self.best_loss[k]
            if live:
                clear_gain = loss < self.best_loss[k] - self.min_delta
                self.since_best[k] = 0 if clear_gain else self.since_best[k] + 1
            if better:
                self.best_loss[k], self.best_epoch[k] = loss, epoch
            self.stopped[k] = self.has_val[k] and self.since_best[k] >= self.patience
            improved.append(better)
        return improved


@torch.no_grad()
def predict_logits(model: TabularMLP, x_num, x_cat, device, chunk: int = 65536) -> torch.Tensor:
    """Logits (K, rows, outputs) for arrays of raw inputs, computed in chunks."""
    model.eval()
    x_num = torch.tensor(np.asarray(x_num), dtype=torch.float32)
    x_cat = torch.tensor(np.asarray(x_cat), dtype=torch.int64)
    outs = []
    for start in range(0, max(1, x_num.shape[0]), chunk):
        n = x_num[start : start + chunk].to(device)[None]
        c = x_cat[start : start + chunk].to(device)[None]
        outs.append(model(n, c).cpu())
    return torch.cat(outs, dim=1)
