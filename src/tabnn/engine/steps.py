"""One epoch of training steps and the validation pass: the loss per task, the autograd
path every network can take (``AutogradSteps``) and the hand-written backward pass for plain
ReLU networks (``ManualSteps``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..nn.mlp import Dropout, StackedNorm, dropout_mask
from ..nn.network import TabularNetwork
from .cpu import CpuMatmuls
from .distributed import World
from .inputs import EPOCH_BYTES, Epoch, EpochInputs, padded_rows
from .optim import GradientClipper, StackedAdam


class LossFunction:
    """Per-row losses for a task, with optional class weights; never a sigmoid or softmax
    before the loss: the ``*_with_logits`` functions do that stably."""

    def __init__(
        self,
        task: str,
        class_weight: torch.Tensor | None = None,
        label_smoothing: float | torch.Tensor = 0.0,
    ) -> None:
        """``label_smoothing``: one share for the stack, or a (K,) tensor of each member's."""
        self.task, self.class_weight, self.label_smoothing = task, class_weight, label_smoothing

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

    def train_rows(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """What training minimises, per row (K, B): ``rows`` with the targets smoothed by
        ``label_smoothing`` (towards the uniform distribution over the classes, or 1/2 for
        each sigmoid output); for an ensemble's logits (K, E, B, out), the mean of its
        members' losses (TabM's loss: each member learns on its own)."""
        ensemble = logits.dim() == 4
        if ensemble:
            k, e, b, out = logits.shape
            y = y[:, None].expand(k, e, *y.shape[1:]).reshape(k, e * b, *y.shape[2:])
            logits = logits.reshape(k, e * b, out)
        smoothing = self.smoothing(dims=2)
        if smoothing is None:
            loss = self.rows(logits, y)
        elif self.task == "multiclass":
            # cross-entropy against (1 - s) one-hot + s / classes, as torch's label_smoothing
            log_p = torch.log_softmax(logits.float(), -1)
            nll = -log_p.gather(-1, y[..., None])[..., 0]
            loss = (1 - smoothing) * nll - smoothing * log_p.mean(-1)
        else:
            loss = self.rows(logits, self.smoothed(y))
        return loss.view(k, e, b).mean(1) if ensemble else loss

    def smoothing(self, dims: int) -> torch.Tensor | float | None:
        """The smoothing share, shaped to broadcast against (K, B, ...) of ``dims`` axes
        (None without smoothing)."""
        s = self.label_smoothing
        if not torch.is_tensor(s):
            return s or None
        return s.view(-1, *[1] * (dims - 1))

    def smoothed(self, y: torch.Tensor) -> torch.Tensor:
        """Sigmoid targets moved towards 1/2 by the smoothing share (y: (..., K, B[, L]))."""
        s = self.smoothing(dims=2 if self.task == "binary" else 3)
        return y if s is None else y * (1 - s) + s / 2

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
            s = self.smoothing(dims=3)
            one_hot = F.one_hot(y, n_outputs).float()
            return None, one_hot if s is None else one_hot * (1 - s) + s / n_outputs, 1.0
        y = self.smoothed(y)  # label smoothing moves the targets, and so the gradient
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


class Validation:
    """Each epoch's validation loss and accuracy per member (the weighted loss and the
    share of rows ``is_correct``), with what does not change between epochs (the chunks
    of rows, their inputs while small, targets, weights and counts) prepared once."""

    def __init__(self, model: TabularNetwork, members, loss_fn, inputs, world, chunk=8192) -> None:
        """``inputs`` (``DeviceInputs``) holds the rows the members' ``val_rows`` index."""
        data, task = inputs.data, loss_fn.task
        self.model, self.loss_fn, self.task, self.inputs = model, loss_fn, task, inputs
        self.world = world  # losses and counts are summed over ranks: the same on each
        self.has_val = [len(m.val_rows) > 0 for m in members]
        own = [world.local(r[world.owns(r)]) for r in (m.val_rows for m in members)]
        rows, mask = padded_rows(own, data.y.device)
        self.count = world.sum_(mask.sum(1)).clamp_min(1)
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
        self.total_weight = world.sum_(total_weight).clamp_min(1e-12)

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
        total_loss, correct = self.world.sum_(torch.stack(sums))
        for module in self.modal:
            module.training = True
        loss, accuracy = total_loss / self.total_weight, correct / self.count
        return torch.stack([loss, accuracy]).tolist()


# --- one epoch of steps -----------------------------------------------------------------


class AutogradSteps:
    """Training steps for any network: forward, the loss, ``backward`` into the flat
    gradient buffer, per-member clipping and the stacked Adam step. An epoch's forward
    and backward passes compute only the members that train in it (``LiveMembers``): a
    stopped member of a bag or a pruned trial is no longer carried as padding."""

    def __init__(
        self, model: TabularNetwork, optimizer: StackedAdam, loss_fn: LossFunction, config, world
    ) -> None:
        self.model, self.optimizer, self.loss_fn, self.config = model, optimizer, loss_fn, config
        self.world = world  # gradients are summed over ranks before clipping

    def epoch(self, epoch: Epoch, inputs: EpochInputs, plan) -> torch.Tensor:
        """Run one epoch's steps -> per-row training losses (steps, K, batch)."""
        optimizer = self.optimizer
        clip = self.config.grad_clip
        clipper = GradientClipper(optimizer.flat.grads, optimizer.kernels) if clip else None
        row_loss = torch.zeros_like(epoch.scale)
        live = LiveMembers.of(self.model, self.loss_fn, plan)
        for step, (rates, active) in enumerate(plan):
            width = epoch.widths[step]
            mask = epoch.mask[step][:, :width] if epoch.padded[step] else None
            x, y = inputs(step, width), epoch.y[step][:, :width]
            scale = epoch.scale[step][:, :width]
            if live is None:
                logits = self.model.train_logits(x, mask)  # mask: for batch norm
                loss = self.loss_fn.train_rows(logits, y)
            else:
                x, y, scale = live.rows(x), live.rows(y), live.rows(scale)
                loss = live.loss_fn.train_rows(live.train_logits(x), y)
            optimizer.zero_grad()
            # members share no weights: each gets its own gradient
            (loss * scale).sum().backward()
            if live is None:
                row_loss[step, :, :width] = loss.detach()
            else:
                row_loss[step, live.index, :width] = loss.detach()
            self.world.sum_(optimizer.flat.grad)
            if clipper is not None:
                clipper(clip)
            optimizer.step(rates, active)
        return row_loss


class LiveMembers:
    """An epoch's forward pass over the members that train in it alone: the network's
    weights and buffers cut to those members along the stack axis (``index_select``
    again every step, so autograd carries each gradient back into its member's place of
    the flat buffer), the inputs, targets and losses alike. Members share nothing, so a
    member's step is what the whole stack's would give it (up to float rounding)."""

    def __init__(self, model: TabularNetwork, loss_fn: LossFunction, members: list[int]):
        device = next(model.parameters()).device
        self.forward, self.index = TrainLogits(model), torch.tensor(members, device=device)
        k = model.config.n_members
        named = [*model.named_parameters(), *model.named_buffers()]
        # the encoder is outside train_logits (the inputs come encoded)
        self.stacked = {
            name: tensor
            for name, tensor in named
            if not name.startswith("encoder.") and tensor.dim() and tensor.shape[0] == k
        }
        smoothing = loss_fn.label_smoothing
        if torch.is_tensor(smoothing):
            smoothing = smoothing[self.index]
        self.loss_fn = LossFunction(loss_fn.task, loss_fn.class_weight, smoothing)

    @classmethod
    def of(cls, model: TabularNetwork, loss_fn: LossFunction, plan) -> LiveMembers | None:
        """The members of the stack with a step in ``plan``, or None when that is all of
        them, or the network normalises batches (a norm's running statistics are updated
        in place: a cut copy would lose them)."""
        k = model.config.n_members
        members = [m for m in range(k) if any(active[m] for _, active in plan)]
        norms = any(isinstance(m, StackedNorm) for m in model.modules())
        if len(members) in (0, k) or norms:
            return None
        return cls(model, loss_fn, members)

    def rows(self, tensor: torch.Tensor) -> torch.Tensor:
        """(K, ...) -> the live members' (live, ...)."""
        return tensor.index_select(0, self.index)

    def train_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The live members' encoded inputs (live, B, width) -> their ``train_logits``."""
        cut = {f"network.{name}": self.rows(t) for name, t in self.stacked.items()}
        return torch.func.functional_call(self.forward, cut, (x,))


class TrainLogits(torch.nn.Module):
    """A network's ``train_logits`` as a module's ``forward``: what
    ``torch.func.functional_call`` runs with other weights in place."""

    def __init__(self, network: TabularNetwork) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network.train_logits(x)


class ManualSteps:
    """Training steps for a plain network (linear layers, ReLU or no activation, dropout;
    see ``TabularNetwork.plain``) with the backward pass written out: per layer one batched
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
        world: World | None = None,
    ) -> None:
        self.world = world or World()  # gradients are summed over ranks before clipping
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
        self.generator = model.dropout.generator  # the same stream as the model's Dropout
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
                noise = dropout_mask(x, dropout, self.generator)
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
        relu_backward, select = self.optimizer.kernels.relu_backward, self.select
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
                    grad = relu_backward(grad, x)

    @torch.no_grad()
    def epoch(self, epoch: Epoch, inputs: EpochInputs, plan) -> torch.Tensor:
        """Run one epoch's steps -> per-row training losses (steps, K, batch)."""
        optimizer, loss_fn, link = self.optimizer, self.loss_fn, self.loss_fn.link
        clip = self.config.grad_clip
        clipper = GradientClipper(optimizer.flat.grads, optimizer.kernels) if clip else None
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
                row_loss[step, :, :width] = loss_fn.train_rows(outputs[-1], y)
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
            self.world.sum_(optimizer.flat.grad)
            if clipper is not None:
                clipper(clip)
            optimizer.step(rates, active)
        if not whole:
            return row_loss
        if loss_fn.smoothing(dims=2) is not None:  # what autograd reports: the smoothed loss
            return torch.stack([loss_fn.train_rows(z, y) for z, y in zip(logits, epoch.y)])
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
