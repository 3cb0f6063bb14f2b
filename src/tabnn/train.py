"""The training engine: a stack of members trained together on device-resident tensors.

Data lives on the device as a few tensors; each step gathers one batch of row indices per
member, so there is no per-row Dataset/DataLoader cost. Each member has its own training
rows, validation rows, seed, shuffling and early-stopping state; the best weights of each
member are restored at the end. Nothing here prints: progress goes to a callback.

What a step costs is kept to the arithmetic where possible:

- the inputs that do not train (numeric fill and scaling, indicators, one-hot) are encoded
  once per fit (``EncodedInputs``), and an epoch's batches, targets and loss weights are
  laid out once per epoch (``Epoch``);
- the parameters live in one flat buffer for the fit (``FlatParameters``, in
  ``optim.py`` with the per-member Adam and clipping): Adam is one fused kernel over it,
  gradients are written into it in place;
- plain networks (linear layers, ReLU, dropout) are differentiated by hand
  (``ManualSteps``): one batched matmul per product, no autograd graph, the loss computed
  once per epoch; everything else goes through autograd (``AutogradSteps``);
- on the CPU, small steps run on one thread and large products go to oneDNN where it
  computes float32 (``cpu.py``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .cpu import CpuMatmuls, cpu_matmuls_for, cpu_threads_for
from .errors import UsageError
from .model import Dropout, StackedNorm, TabularMLP, dropout_mask
from .optim import BestWeights, FlatParameters, GradientClipper, StackedAdam, make_optimizer

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
        loss = self.rows(logits, y)
        weight = self.row_weight(y)
        return loss, torch.ones_like(loss) if weight is None else weight

    def rows(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-row loss (K, B), unweighted."""
        logits = logits.float()
        if self.task == "multiclass":
            return F.cross_entropy(logits.transpose(1, 2), y, reduction="none")
        if self.task == "binary":
            return F.binary_cross_entropy_with_logits(logits[..., 0], y, reduction="none")
        return F.binary_cross_entropy_with_logits(
            logits, y, reduction="none", pos_weight=self.class_weight
        ).mean(-1)

    def row_weight(self, y: torch.Tensor) -> torch.Tensor | None:
        """Per-row weight (K, B) from the class weights, or None when every row weighs 1."""
        if self.class_weight is None or self.task == "multilabel":  # multilabel: pos_weight
            return None
        if self.task == "multiclass":
            return self.class_weight[y]
        # binary: (w_negative, w_positive)
        return torch.where(y > 0.5, self.class_weight[1], self.class_weight[0])

    def gradient_targets(
        self, y: torch.Tensor, n_outputs: int
    ) -> tuple[torch.Tensor | None, torch.Tensor, float]:
        """What the gradient of the loss with respect to the logits needs from the targets:
        d loss / d logits = (link(logits) * a - c) * factor, with ``a`` None for 1; link is
        softmax for multi-class, the sigmoid otherwise. y (..., B[, labels]) -> a and c
        (..., B, outputs) and the factor (1 / labels for the per-label mean)."""
        if self.task == "multiclass":
            return None, F.one_hot(y, n_outputs).float(), 1.0
        if self.task == "binary":
            return None, y[..., None], 1.0
        factor = 1.0 / y.shape[-1]
        if self.class_weight is None:
            return None, y, factor
        # d/dz of pw*y*softplus(-z) + (1-y)*softplus(z) = sigmoid(z)*(1 + (pw-1)*y) - pw*y
        pos_weight = self.class_weight
        return 1 + (pos_weight - 1) * y, pos_weight * y, factor

    def link(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits, -1) if self.task == "multiclass" else torch.sigmoid(logits)


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


def lr_factor(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Linear warm-up, then cosine decay to zero over ``epochs`` (or constant)."""
    warmup = config.warmup_epochs * steps_per_epoch
    if step < warmup:
        return (step + 1) / warmup
    if config.schedule == "constant":
        return 1.0
    total = max(1, config.epochs * steps_per_epoch - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / total)))


def is_correct(logits: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    """1.0 where the prediction is right: the class for single-label tasks, the share of
    labels right (1 - Hamming loss) for multi-label."""
    if task == "multiclass":
        return (logits.argmax(-1) == y).float()
    if task == "binary":
        return ((logits[..., 0] > 0).float() == y).float()
    return ((logits > 0).float() == y).float().mean(-1)


# --- inputs and batches ---------------------------------------------------------------

# Encode the inputs that do not train (numeric fill, scaling, indicators, one-hot) once per
# fit when the encoded table takes at most this; otherwise every batch encodes its rows.
ENCODED_BYTES = 1 << 30
# Values encoded at a time: few enough for the temporaries to stay in cache.
ENCODE_CHUNK = 1 << 18
# Gather a whole epoch's encoded batches at once when they take at most this.
EPOCH_BYTES = 1 << 24


class EncodedInputs:
    """The network's inputs for any rows of the table, encoded once where that fits.

    With per-member statistics (folds) the table is (K, rows, width); when every member
    scales alike (seeds, an ensemble) one (1, rows, width) table serves them all. The
    values are exactly those the encoder computes batch by batch. Embeddings train, so
    they are looked up per batch."""

    def __init__(self, model: TabularMLP, data: TensorData, max_bytes: int = ENCODED_BYTES):
        encoder = model.encoder
        self.encoder, self.data = encoder, data
        self.members, n, width = encoder.n_members, data.x_num.shape[0], encoder.fixed_width
        shared = self.members == 1 or encoder.shares_statistics()
        copies = 1 if shared else self.members
        self.table: torch.Tensor | None = None
        self.offsets: torch.Tensor | None = None
        if copies * n * width * data.x_num.element_size() > max_bytes:
            return
        table = torch.empty(copies, n, width, device=data.x_num.device)
        with torch.no_grad():
            chunk = max(1, ENCODE_CHUNK // width)
            for start in range(0, n, chunk):
                part = slice(start, start + chunk)
                table[:, part] = encoder.encode_fixed(
                    data.x_num[None, part], data.x_cat[None, part], first_member=shared
                )
        self.table = table.view(copies * n, width)
        if not shared:
            self.offsets = (torch.arange(copies, device=table.device) * n).view(-1, 1, 1)

    def table_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Row indices (..., K, b) into the table: each member's own copy of its rows."""
        if self.offsets is None:
            return rows
        return rows + self.offsets.view(-1, 1)

    def __call__(self, rows: torch.Tensor) -> torch.Tensor:
        """rows (K, b) -> inputs (K, b, encoded width)."""
        if self.table is None:
            return self.encoder(self.data.x_num[rows], self.data.x_cat[rows])
        at = self.table_rows(rows)
        fixed = self.table.index_select(0, at.reshape(-1)).view(*rows.shape, -1)
        return self.encoder.assemble(fixed, self.data.x_cat[rows])


@dataclass
class Epoch:
    """One epoch's batches for every member, laid out step by step.

    A member's rows come in its own shuffled order, ``batch`` at a time; a member with
    fewer steps than the stack (fewer rows, or stopped) sits the rest out as padding rows
    with a zero mask. ``scale`` is each row's share of its member's batch loss (class
    weight / the batch's weight sum), so a member's batch loss is ``sum(loss * scale)``.
    """

    index: torch.Tensor  # (steps, K, batch) rows of the table, 0 for padding
    mask: torch.Tensor  # (steps, K, batch) 1.0 for real rows
    y: torch.Tensor  # (steps, K, batch[, labels]) targets
    scale: torch.Tensor  # (steps, K, batch)
    counts: torch.Tensor  # (steps, K) real rows of each member's batch
    widths: list[int]  # per step, the most real rows any member has: the batch is cut there
    padded: list[bool]  # per step, whether some member has fewer real rows than the width

    @classmethod
    def shuffle(cls, members, generators, live, steps, batch, data, loss_fn) -> Epoch:
        device = data.y.device
        index = np.zeros((len(members), steps * batch), dtype=np.int64)
        sizes = np.zeros((len(members), 1), dtype=np.int64)
        for k, (member, generator) in enumerate(zip(members, generators)):
            if live[k]:
                rows = member.train_rows
                index[k, : len(rows)] = rows[torch.randperm(len(rows), generator=generator).numpy()]
                sizes[k] = len(rows)
        counts = np.clip(sizes - batch * np.arange(steps), 0, batch).T  # (steps, K)
        widths = counts.max(1, initial=0)
        padded = (counts < widths[:, None]).any(1)
        mask = (np.arange(batch) < counts[..., None]).astype(np.float32)  # (steps, K, batch)
        index = index.reshape(len(members), steps, batch).transpose(1, 0, 2)
        index_t = torch.from_numpy(np.ascontiguousarray(index)).to(device)
        mask_t = torch.from_numpy(mask).to(device)
        y = data.y[index_t]
        weight = loss_fn.row_weight(y)
        weight = mask_t if weight is None else weight * mask_t
        scale = weight / weight.sum(-1, keepdim=True).clamp_min(1e-12)
        counts_t = torch.from_numpy(counts.astype(np.float32)).to(device)
        return cls(index_t, mask_t, y, scale, counts_t, widths.tolist(), padded.tolist())

    def member_loss(self, row_loss: torch.Tensor) -> torch.Tensor:
        """Per-row losses (steps, K, batch) -> each member's mean batch loss over the epoch,
        each batch counted by its real rows (K,)."""
        batch_loss = (row_loss * self.scale).sum(-1)  # (steps, K)
        return (batch_loss * self.counts).sum(0) / self.counts.sum(0).clamp_min(1)


class EpochInputs:
    """An epoch's encoded batches: gathered at once when small, else batch by batch."""

    def __init__(self, inputs: EncodedInputs, epoch: Epoch) -> None:
        self.inputs, self.index = inputs, epoch.index
        self.whole: tuple[torch.Tensor, ...] | None = None
        table = inputs.table
        if table is None:
            return
        self.at = inputs.table_rows(epoch.index)
        size = self.at.numel() * table.shape[1] * table.element_size()
        if size <= EPOCH_BYTES:
            whole = table.index_select(0, self.at.view(-1)).view(*self.at.shape, -1)
            self.whole = whole.unbind(0)

    def __call__(self, step: int, width: int) -> torch.Tensor:
        """The inputs of one step (K, width, encoded width)."""
        inputs = self.inputs
        if inputs.table is None:
            rows = self.index[step][:, :width]
            return inputs.encoder(inputs.data.x_num[rows], inputs.data.x_cat[rows])
        if self.whole is not None:
            fixed = self.whole[step]
            if width == fixed.shape[1] and not inputs.encoder.has_embeddings:
                return fixed
        else:
            at = self.at[step]
            fixed = inputs.table.index_select(0, at.view(-1)).view(*at.shape, -1)
        fixed = fixed[:, :width] if width < fixed.shape[1] else fixed
        if not inputs.encoder.has_embeddings:
            return fixed
        return inputs.encoder.assemble(fixed, inputs.data.x_cat[self.index[step][:, :width]])


class Validation:
    """Each epoch's validation loss and accuracy per member (the weighted loss and the
    share of rows ``is_correct``), with what does not change between epochs (the chunks
    of rows, their inputs while small, targets, weights and counts) prepared once."""

    def __init__(self, model, data, members, loss_fn, task, inputs, chunk=8192) -> None:
        self.model, self.loss_fn, self.task, self.inputs = model, loss_fn, task, inputs
        self.has_val = [len(m.val_rows) > 0 for m in members]
        rows, mask = padded_rows([m.val_rows for m in members], data.y.device)
        self.count = mask.sum(1).clamp_min(1)
        self.forward = model.mlp
        self.modal = [m for m in model.modules() if isinstance(m, (StackedNorm, Dropout))]
        self.chunks = []
        # embeddings train: inputs that hold them are looked up again every epoch
        table = inputs.table
        keep = (
            table is not None
            and not model.encoder.has_embeddings
            and rows.numel() * table.shape[1] * table.element_size() <= EPOCH_BYTES
        )
        total_weight = torch.zeros(rows.shape[0], device=rows.device)
        for start in range(0, rows.shape[1] if any(self.has_val) else 0, chunk):
            r, m = rows[:, start : start + chunk], mask[:, start : start + chunk]
            y = data.y[r]
            weight = loss_fn.row_weight(y)
            weighted_mask = m if weight is None else weight * m
            total_weight += weighted_mask.sum(1)
            self.chunks.append((inputs(r) if keep else r, keep, y, m, weighted_mask))
        self.total_weight = total_weight.clamp_min(1e-12)

    @torch.no_grad()
    def __call__(self) -> tuple[list[float], list[float]]:
        """-> validation loss and accuracy per member, as lists."""
        for module in self.modal:
            module.training = False
        sums = []
        for x, kept, y, m, weighted_mask in self.chunks:
            logits = self.forward(x if kept else self.inputs(x))
            loss = (self.loss_fn.rows(logits, y) * weighted_mask).sum(1)
            correct = (is_correct(logits, y, self.task) * m).sum(1)
            sums = [loss, correct] if not sums else [sums[0] + loss, sums[1] + correct]
        total_loss, correct = sums
        for module in self.modal:
            module.training = True
        loss, accuracy = total_loss / self.total_weight, correct / self.count
        return torch.stack([loss, accuracy]).tolist()


# --- one epoch of steps -----------------------------------------------------------------


class AutogradSteps:
    """Training steps for any network: forward, the loss, ``backward`` into the flat
    gradient buffer, per-member clipping and the stacked Adam step."""

    def __init__(self, model, optimizer: StackedAdam, loss_fn: LossFunction, config) -> None:
        self.model, self.optimizer, self.loss_fn, self.config = model, optimizer, loss_fn, config

    def epoch(self, epoch: Epoch, inputs: EpochInputs, plan) -> torch.Tensor:
        """Run one epoch's steps -> per-row training losses (steps, K, batch)."""
        model, optimizer, loss_fn = self.model, self.optimizer, self.loss_fn
        clip = self.config.grad_clip
        clipper = GradientClipper(optimizer.flat.grads) if clip else None
        row_loss = torch.zeros_like(epoch.scale)
        for step, (rates, active) in enumerate(plan):
            width = epoch.widths[step]
            mask = epoch.mask[step][:, :width] if epoch.padded[step] else None
            logits = model.mlp(inputs(step, width), mask)  # padding kept out of batch norm
            loss = loss_fn.rows(logits, epoch.y[step][:, :width])
            optimizer.zero_grad()
            # members share no weights: each gets its own gradient
            (loss * epoch.scale[step][:, :width]).sum().backward()
            row_loss[step, :, :width] = loss.detach()
            if clipper is not None:
                clipper(clip)
            optimizer.step(rates, active)
        return row_loss


class ManualSteps:
    """Training steps for a plain network (linear layers, ReLU or no activation, dropout;
    see ``TabularMLP.plain``) with the backward pass written out: per layer one batched
    matmul forward, and for the weight and input gradients one each, written straight into
    the flat gradient buffer. No autograd graph, no gradient zeroing, and the loss itself
    is only computed once per epoch, from the logits kept step by step. Dropout draws its
    masks with the model's own ``dropout_mask`` (the same calls on the same random
    stream), so the two paths train the same model."""

    def __init__(
        self,
        model,
        optimizer: StackedAdam,
        loss_fn: LossFunction,
        config,
        matmuls: CpuMatmuls | None = None,
    ) -> None:
        layers = [*model.hidden, model.head]
        self.select = matmuls.select if matmuls is not None and any(matmuls.layers) else None
        self.onednn = matmuls.layers if self.select is not None else [False] * len(layers)
        self.weights = [layer.weight.detach() for layer in layers]  # views of the flat buffer
        self.transposed = [w.transpose(1, 2) for w in self.weights]
        self.hidden = [(layer.weight.detach(), layer.bias.detach()) for layer in model.hidden]
        self.head = (model.head.weight.detach(), model.head.bias.detach())
        self.grads = [(layer.weight.grad, layer.bias.grad) for layer in layers]
        self.relu = model.config.activation == "relu"
        self.dropout = model.config.dropout
        self.noise: list[torch.Tensor] = []  # the last training forward's dropout masks
        self.n_outputs = model.config.n_outputs
        self.optimizer, self.loss_fn, self.config = optimizer, loss_fn, config

    def forward(
        self, x: torch.Tensor, out: torch.Tensor | None = None, training: bool = True
    ) -> list[torch.Tensor]:
        """Inputs -> every layer's output, the logits last (written to ``out`` if given)."""
        outputs, select = [x], self.select
        dropout = self.dropout if training else 0.0
        if dropout:
            self.noise = []
        for i, (weight, bias) in enumerate(self.hidden):
            if select is not None:
                select(self.onednn[i])
            x = torch.baddbmm(bias, x, weight)
            if self.relu:
                x.relu_()
            if dropout:  # as the model's Dropout, call for call
                noise = dropout_mask(x, dropout)
                x = x * noise
                self.noise.append(noise)
            outputs.append(x)
        if select is not None:
            select(self.onednn[-1])
        weight, bias = self.head
        outputs.append(torch.baddbmm(bias, x, weight, out=out))
        return outputs

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The logits alone in evaluation mode, as ``model.mlp`` computes them (the same
        kernels)."""
        return self.forward(x, training=False)[-1]

    def backward(self, outputs: list[torch.Tensor], grad: torch.Tensor) -> None:
        """Every layer's output but the logits, and d loss / d logits (K, B, outputs) ->
        every weight's and bias's gradient, in the flat gradient buffer."""
        threshold_backward, select = torch.ops.aten.threshold_backward, self.select
        for i in range(len(self.weights) - 1, -1, -1):
            if select is not None:
                select(self.onednn[i])
            x = outputs[i]
            weight_grad, bias_grad = self.grads[i]
            torch.bmm(x.transpose(1, 2), grad, out=weight_grad)
            torch.sum(grad, 1, keepdim=True, out=bias_grad)
            if i:
                grad = torch.bmm(grad, self.transposed[i])
                if self.dropout:
                    grad.mul_(self.noise[i - 1])
                if self.relu:
                    # x is relu(z) after dropout: positive exactly where z is and the
                    # mask kept the unit; the gradient is already 0 where it did not
                    grad = threshold_backward(grad, x, 0)

    @torch.no_grad()
    def epoch(self, epoch: Epoch, inputs: EpochInputs, plan) -> torch.Tensor:
        """Run one epoch's steps -> per-row training losses (steps, K, batch)."""
        optimizer, loss_fn, link = self.optimizer, self.loss_fn, self.loss_fn.link
        clip = self.config.grad_clip
        clipper = GradientClipper(optimizer.flat.grads) if clip else None
        steps, members, batch = epoch.scale.shape
        # the loss's targets, and the logits from which the epoch's loss is computed at
        # its end, are prepared for the whole epoch while that is small (few classes, few
        # rows); otherwise step by step, and the loss too
        whole = epoch.scale.numel() * self.n_outputs * 4 <= EPOCH_BYTES
        if whole:
            offsets, slopes = (t.unbind(0) for t in self.targets(epoch.y, epoch.scale))
            logits = torch.zeros(steps, members, batch, self.n_outputs, device=epoch.y.device)
            step_logits = logits.unbind(0)
        else:
            row_loss = torch.zeros_like(epoch.scale)
        step_scale = epoch.scale.unbind(0)
        for step, (rates, active) in enumerate(plan):
            width = epoch.widths[step]
            x = inputs(step, width)
            if not whole:
                y = epoch.y[step][:, :width]
                offset, slope = self.targets(y, step_scale[step][:, :width])
                outputs = self.forward(x)
                row_loss[step, :, :width] = loss_fn.rows(outputs[-1], y)
            elif width == batch:
                offset, slope = offsets[step], slopes[step]
                outputs = self.forward(x, out=step_logits[step])
            else:  # the short last batch of every member
                offset, slope = offsets[step][:, :width], slopes[step][:, :width]
                outputs = self.forward(x)
                step_logits[step][:, :width] = outputs[-1]
            # d loss / d logits = link(logits) * slope + offset
            grad = torch.addcmul(offset, link(outputs.pop()), slope)
            self.backward(outputs, grad)
            if clipper is not None:
                clipper(clip)
            optimizer.step(rates, active)
        if not whole:
            return row_loss
        flat_logits = logits.view(steps * members, batch, -1)
        flat_y = epoch.y.view(steps * members, *epoch.y.shape[2:])
        return loss_fn.rows(flat_logits, flat_y).view(steps, members, batch)

    def targets(self, y: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Targets (..., B[, labels]) and their rows' loss shares (..., B) -> ``offset``
        and ``slope`` (..., B, outputs or 1), so that the gradient of the stack's loss
        with respect to the logits is ``link(logits) * slope + offset``: two kernels."""
        a, c, factor = self.loss_fn.gradient_targets(y, self.n_outputs)
        slope = (scale * factor)[..., None]
        offset = -(c * slope)
        return offset, (slope if a is None else a * slope)


BACKWARDS = ("auto", "autograd", "manual")


def fit_stack(
    model: TabularMLP,
    data: TensorData,
    members: Sequence[Member],
    task: str,
    config: TrainConfig,
    *,
    class_weight: torch.Tensor | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    backward: str = "auto",
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

    ``backward``: ``auto`` differentiates plain networks (``TabularMLP.plain``) by hand
    and everything else with autograd; ``autograd`` always uses autograd (the reference
    the hand-written pass is tested against); ``manual`` insists on the hand-written one.
    """
    if backward not in BACKWARDS:
        raise UsageError(f"backward must be one of {', '.join(BACKWARDS)}; got {backward!r}.")
    plain = model.plain and all(p.requires_grad for p in model.parameters())
    if backward == "manual" and not plain:
        raise UsageError(
            "backward='manual' needs a plain network: a relu or identity activation, no "
            "norm, no embeddings, dropout below 1 and every parameter trained."
        )
    manual = backward == "manual" or (backward == "auto" and plain)
    make_optimizer(model, config)  # checks the optimizer's name before any work
    inputs = EncodedInputs(model, data)  # a few large operations: on torch's threads
    device = data.y.device
    with (
        cpu_threads_for(model, config.batch_size, device),
        cpu_matmuls_for(model, config.batch_size, device) as matmuls,
    ):
        return _fit_stack(
            model, data, members, task, config, class_weight, on_epoch, manual, matmuls, inputs
        )


def _fit_stack(
    model, data, members, task, config, class_weight, on_epoch, manual, matmuls, inputs
) -> History:
    for i, member in enumerate(members):
        model.reset_member(i, member.seed)
    loss_fn = LossFunction(task, class_weight)
    torch.manual_seed(members[0].seed)  # dropout masks
    validation = Validation(model, data, members, loss_fn, task, inputs)
    has_val = validation.has_val
    stopping = EarlyStopping(has_val, config.patience, config.min_delta)
    flat = FlatParameters([p for p in model.parameters() if p.requires_grad])
    try:
        optimizer = make_optimizer(model, config, flat)
        if manual:
            steps = ManualSteps(model, optimizer, loss_fn, config, matmuls)
            validation.forward = steps.logits  # the same kernels as model.mlp, no modules
        else:
            steps = AutogradSteps(model, optimizer, loss_fn, config)
        norms = [m for m in model.modules() if isinstance(m, StackedNorm)]
        best = BestWeights(flat, [b for m in norms for b in m.buffers(recurse=False)])
        records = run_epochs(
            model,
            data,
            members,
            config,
            loss_fn,
            inputs,
            steps,
            validation,
            stopping,
            best,
            on_epoch,
        )
        if config.restore_best and any(has_val):
            best.restore(has_val)  # members without validation keep their last weights
    finally:
        flat.release()
    model.eval()
    best_epoch = [e if h else len(records) for e, h in zip(stopping.best_epoch, has_val)]
    best_values = [v if h else None for v, h in zip(stopping.best_loss, has_val)]
    return History(records, best_epoch, best_values)


def run_epochs(
    model, data, members, config, loss_fn, inputs, steps, validation, stopping, best, on_epoch
) -> list[dict]:
    """The epoch loop: shuffle, train, validate, keep each member's best weights, report."""
    generators = [torch.Generator().manual_seed(m.seed + 1) for m in members]
    clock = MemberClock(config, [len(m.train_rows) for m in members])
    has_val = validation.has_val
    records = []
    model.train()
    for epoch_number in range(1, config.epochs + 1):
        was_stopped = list(stopping.stopped)
        plan = clock.epoch(was_stopped)
        live = [not s for s in was_stopped]
        epoch = Epoch.shuffle(
            members, generators, live, len(plan), config.batch_size, data, loss_fn
        )
        row_loss = steps.epoch(epoch, EpochInputs(inputs, epoch), plan)
        train_loss = epoch.member_loss(row_loss).tolist()
        record = {
            "epoch": epoch_number,
            "train_loss": [None if s else v for v, s in zip(train_loss, was_stopped)],
            "val_loss": [None] * len(members),
            "val_accuracy": [None] * len(members),
            "lr": max(r for r, on in zip(*plan[-1]) if on) if plan else 0.0,
        }
        if any(has_val):
            val_loss, val_accuracy = validation()
            best.update(stopping.update(epoch_number, val_loss))
            record["val_loss"] = [v if h else None for v, h in zip(val_loss, has_val)]
            record["val_accuracy"] = [v if h else None for v, h in zip(val_accuracy, has_val)]
        records.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if all(stopping.stopped):
            break
    return records


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
