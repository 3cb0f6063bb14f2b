"""The training engine: a stack of members trained together on device-resident tensors.

Data lives on the device as a few tensors; each step gathers one batch of row indices per
member, so there is no per-row Dataset/DataLoader cost. Each member has its own training
rows, validation rows, seed, shuffling and early-stopping state; the best weights of each
member are restored at the end. Nothing here prints: progress goes to a callback.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

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
    """``auto`` picks CUDA when present."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("device 'cuda' was asked for, but PyTorch sees no CUDA device here.")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise UsageError(f"device must be auto, cpu or cuda; got {name!r}.")
    return torch.device(name)


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
    logits = model(data.x_num[rows], data.x_cat[rows])
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


def make_optimizer(model, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam(W) with the fused kernel: one kernel over all parameters instead of a Python
    loop per tensor, which on small tabular models is most of a step's time."""
    kinds = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}
    if config.optimizer not in kinds:
        raise UsageError(f"optimizer must be adamw or adam; got {config.optimizer!r}.")
    return kinds[config.optimizer](
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True
    )


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

    Early stopping watches each member's validation loss; a member whose loss has not
    improved for ``patience`` epochs keeps its best weights, and training ends when every
    member has stopped (or after ``epochs``). Members without validation rows train for
    all epochs and keep their last weights.
    """
    with cpu_threads_for(model, config.batch_size, data.y.device):
        return _fit_stack(model, data, members, task, config, class_weight, on_epoch)


def _fit_stack(model, data, members, task, config, class_weight, on_epoch) -> History:
    device = data.y.device
    k = len(members)
    for i, member in enumerate(members):
        model.reset_member(i, member.seed)
    torch.manual_seed(members[0].seed)  # dropout masks
    generators = [torch.Generator().manual_seed(m.seed + 1) for m in members]
    val_rows, val_mask = padded_rows([m.val_rows for m in members], device)
    has_val = val_mask.sum(1) > 0
    loss_fn = LossFunction(task, class_weight)
    optimizer = make_optimizer(model, config)
    best = BestWeights(model)
    best_loss = torch.full((k,), math.inf, device=device)
    best_epoch = [0] * k
    since_best = torch.zeros(k, device=device)
    steps_per_epoch = math.ceil(max(len(m.train_rows) for m in members) / config.batch_size)
    params = [p for p in model.parameters() if p.requires_grad]
    records, step = [], 0
    model.train()
    for epoch in range(1, config.epochs + 1):
        order, order_mask = shuffled_rows(members, generators, device)
        train_loss = torch.zeros(k, device=device)
        for start in range(0, order.shape[1], config.batch_size):
            for group in optimizer.param_groups:
                group["lr"] = config.lr * lr_factor(config, step, steps_per_epoch)
            rows = order[:, start : start + config.batch_size]
            mask = order_mask[:, start : start + config.batch_size]
            losses = member_losses(model, data, rows, mask, loss_fn)
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()  # members share no weights: each gets its own gradient
            if config.grad_clip:
                clip_per_member(params, config.grad_clip)
            optimizer.step()
            train_loss += losses.detach() * mask.sum(1)
            step += 1
        train_loss /= order_mask.sum(1).clamp_min(1)
        val_loss, val_acc = evaluate_members(model, data, val_rows, val_mask, loss_fn, task)
        improved = has_val & (val_loss < best_loss - 1e-7)
        best_loss = torch.where(improved, val_loss, best_loss)
        since_best = torch.where(improved, torch.zeros_like(since_best), since_best + 1)
        best.update(model, improved)
        for i in torch.nonzero(improved).flatten().tolist():
            best_epoch[i] = epoch
        record = {
            "epoch": epoch,
            "train_loss": train_loss.tolist(),
            "val_loss": [v if h else None for v, h in zip(val_loss.tolist(), has_val.tolist())],
            "val_accuracy": [v if h else None for v, h in zip(val_acc.tolist(), has_val.tolist())],
            "lr": optimizer.param_groups[0]["lr"],
        }
        records.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if bool(has_val.all()) and bool((since_best >= config.patience).all()):
            break
    if config.restore_best and bool(has_val.any()):
        keep_last = ~has_val
        best.update(model, keep_last)  # members without validation keep their last weights
        best.restore(model)
    model.eval()
    best_values = [v if h else None for v, h in zip(best_loss.tolist(), has_val.tolist())]
    for i in range(k):
        if not has_val[i]:
            best_epoch[i] = len(records)
    return History(records, best_epoch, best_values)


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
