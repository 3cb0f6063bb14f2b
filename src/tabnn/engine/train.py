"""The training engine: a stack of members trained together on device-resident tensors.

Data lives on the device as a few tensors; each step gathers one batch of row indices per
member, so there is no per-row Dataset/DataLoader cost. Each member has its own training
rows, validation rows, seed, shuffling and early-stopping state; the best weights of each
member are restored at the end. Nothing here prints: progress goes to a callback.

What a step costs is kept to the arithmetic where possible:

- the inputs that do not train (numeric fill and scaling, indicators, one-hot) are encoded
  once per fit (``inputs.DeviceInputs``), and an epoch's batches, targets and loss weights
  are laid out once per epoch (``inputs.Epoch``);
- the parameters live in one flat buffer for the fit (``FlatParameters``, in
  ``engine.optim`` with the per-member Adam and clipping): Adam is one fused kernel over it,
  gradients are written into it in place;
- plain networks (linear layers, ReLU, dropout) are differentiated by hand
  (``steps.ManualSteps``): one batched matmul per product, no autograd graph, the loss computed
  once per epoch; everything else goes through autograd (``steps.AutogradSteps``);
- on the CPU, small steps run on one thread and large products go to oneDNN where it
  computes float32 (``engine.cpu``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UsageError
from ..nn.mlp import Dropout, StackedNorm
from .config import FitSpec, History, Member, TensorData, TrainConfig, member_values
from .cpu import fit_policy
from .distributed import World
from .inputs import DeviceInputs, Epoch, EpochInputs, shuffled_rows
from .kernels import Kernels
from .optim import BestWeights, FlatParameters, make_optimizer
from .steps import AutogradSteps, LossFunction, ManualSteps, Validation


def lr_factor(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Linear warm-up, then cosine decay to zero over ``epochs`` (or constant)."""
    warmup = config.warmup_epochs * steps_per_epoch
    if step < warmup:
        return (step + 1) / warmup
    if config.schedule == "constant":
        return 1.0
    total = max(1, config.epochs * steps_per_epoch - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / total)))


def fit_stack(spec: FitSpec) -> History:
    """Train every member of ``spec.model`` on its own rows; return the per-epoch history.

    Each member ends as it would if trained alone with the same seed and rows (up to
    float rounding): it takes ceil(rows / batch_size) steps an epoch on its own learning
    rate schedule, and sits out the steps of the stack that it has no rows for. Dropout
    masks are the exception: they come from one random stream for the whole stack.

    Early stopping watches each member's validation loss; a member whose loss has not
    improved for ``patience`` epochs stops for good (no more updates; ``None`` for its
    training loss in the history) and gets its best weights back. Training ends when
    every member has stopped, or after ``epochs``. Members without validation rows train
    for all epochs and keep their last weights.

    ``spec.backward``: ``autograd`` differentiates any network with autograd; ``manual``
    insists on the hand-written backward pass (``steps.ManualSteps``: plain networks
    only, tested against autograd); ``auto`` (the default) takes it for plain networks,
    where it was measured to pay (``hand_written``), and autograd for every other design.

    No process-wide torch setting outlives the call: dropout draws from its own
    generator, and the CPU settings (thread count, matmul library, flushing of subnormal
    floats) are changed only inside ``engine.cpu.cpu_policy``, which restores them.

    ``spec.data`` may be a ``StreamData``: the training rows then come block by block, each
    epoch a new pass, and the members' ``train_rows`` are not read (their ``val_rows`` index
    the stream's validation tensors).

    Across processes (``spec.world``) ``data`` holds only this rank's rows, while
    ``members`` keep the row numbers of the whole table. Every rank must call with the
    same members, config and model.
    """
    manual = hand_written(spec)
    make_optimizer(spec.model, spec.config)  # checks the optimizer's name before any work
    inputs = DeviceInputs(spec.model, spec.held)  # a few large operations: on torch's threads
    with fit_policy(spec.model, spec.config.batch_size, spec.held.y.device) as matmuls:
        return _train(spec, inputs, manual, matmuls)


def hand_written(spec: FitSpec) -> bool:
    """Whether this fit takes the hand-written backward pass (``steps.ManualSteps``).

    ``auto`` takes it for every plain network: benchmarks/engine_paths.py (2-core AMD
    EPYC, torch 2.13, quiet machine; hand-written against autograd, both with the private
    kernels as ``auto`` runs them) measured 1.8x and 1.5x on W1's wide and deep 5-fold
    stacks (batch 10), 1.9x on throughput.py's 3x128 MLP at batch 128, 1.2x on its 3x256
    at batch 1024 and 1.07x on a 5-fold stack of 2x256 at batch 128: it earns its keep on
    the workloads plain networks serve (W1, throughput) and is never slower. Every other
    design (the default ``EnsembleMLP`` included) trains by autograd."""
    model = spec.model
    plain = model.plain and all(p.requires_grad for p in model.parameters())
    if spec.backward == "manual" and not plain:
        raise UsageError(
            "backward='manual' needs a plain network: a relu or identity activation, no "
            "norm, no embeddings, dropout below 1 and every parameter trained."
        )
    if spec.backward != "auto":
        return spec.backward == "manual"
    return plain


@dataclass
class Run:
    """One fit in progress: its specification and the parts every epoch uses."""

    spec: FitSpec
    world: World
    loss_fn: LossFunction
    inputs: DeviceInputs
    steps: ManualSteps | AutogradSteps
    validation: Validation
    stopping: EarlyStopping
    best: BestWeights


def _train(spec: FitSpec, inputs: DeviceInputs, manual: bool, matmuls) -> History:
    model, members, config = spec.model, spec.members, spec.config
    world = spec.world or World()
    for i, member in enumerate(members):
        model.reset_member(i, member.seed)
    loss_fn = loss_function(spec, inputs.data.y.device)
    # dropout masks: one stream for the stack (each rank its own), never torch's global one
    dropouts = [m for m in model.modules() if isinstance(m, Dropout)]
    for dropout in dropouts:
        seed = members[0].seed + world.rank
        dropout.generator = torch.Generator(inputs.data.y.device).manual_seed(seed)
    validation = Validation(model, members, loss_fn, inputs, world)
    has_val = validation.has_val
    stopping = EarlyStopping(has_val, config.patience, config.min_delta)
    flat = FlatParameters([p for p in model.parameters() if p.requires_grad])
    world.broadcast_(flat.weight)  # as DDP: every rank starts from rank 0's weights
    try:
        decays = member_values(members, config, "weight_decay")
        optimizer = make_optimizer(model, config, flat, Kernels(spec.private_kernels), decays)
        if manual:
            steps = ManualSteps(model, optimizer, loss_fn, config, matmuls, world)
            validation.forward = steps.logits  # the same kernels as model.mlp, no modules
        else:
            steps = AutogradSteps(model, optimizer, loss_fn, config, world)
        norms = [m for m in model.modules() if isinstance(m, StackedNorm)]
        buffers = [b for m in norms for b in m.buffers(recurse=False)]
        best = BestWeights(flat, buffers, optimizer.kernels)
        records = run_epochs(Run(spec, world, loss_fn, inputs, steps, validation, stopping, best))
        if config.restore_best and any(has_val):
            best.restore(has_val)  # members without validation keep their last weights
    finally:
        flat.release()
        for dropout in dropouts:
            dropout.generator = None  # a trained model holds no random state
    model.eval()
    best_epoch = [e if h else len(records) for e, h in zip(stopping.best_epoch, has_val)]
    best_values = [v if h else None for v, h in zip(stopping.best_loss, has_val)]
    return History(records, best_epoch, best_values)


def loss_function(spec: FitSpec, device: torch.device) -> LossFunction:
    """The stack's loss: one label smoothing share, or each member's (a search's trials)."""
    weight = spec.class_weight
    smoothing = member_values(spec.members, spec.config, "label_smoothing")
    if smoothing.count(smoothing[0]) < len(smoothing):
        return LossFunction(spec.task, weight, torch.tensor(smoothing, device=device))
    return LossFunction(spec.task, weight, smoothing[0])


def run_epochs(run: Run) -> list[dict]:
    """The epoch loop: shuffle, train, validate, keep each member's best weights, report."""
    spec, stopping = run.spec, run.stopping
    members, config, data = spec.members, spec.config, spec.data
    generators = [torch.Generator().manual_seed(m.seed + 1) for m in members]
    sizes = [data.n_train if spec.streaming else len(m.train_rows) for m in members]
    clock = MemberClock(config, sizes, member_values(members, config, "lr"))
    has_val = run.validation.has_val
    records = []
    spec.model.train()
    for epoch_number in range(1, config.epochs + 1):
        was_stopped = list(stopping.stopped)
        plan = clock.epoch(was_stopped)
        live = [not s for s in was_stopped]
        if spec.streaming:
            blocks = data.blocks(epoch_number)
            train_loss = stream_epoch(run, blocks, generators, live, plan)
        else:
            order = shuffled_rows(members, generators, live, len(plan), config.batch_size)
            epoch = Epoch.lay_out(order, data, run.loss_fn, run.world)
            row_loss = run.steps.epoch(epoch, EpochInputs(run.inputs, epoch), plan)
            train_loss = epoch.member_loss(row_loss).tolist()
        record = {
            "epoch": epoch_number,
            "train_loss": [None if s else v for v, s in zip(train_loss, was_stopped)],
            "val_loss": [None] * len(members),
            "val_accuracy": [None] * len(members),
            "lr": max(r for r, on in zip(*plan[-1]) if on) if plan else 0.0,
        }
        if any(has_val):
            val_loss, val_accuracy = run.validation()
            run.best.update(stopping.update(epoch_number, val_loss))
            record["val_loss"] = [v if h else None for v, h in zip(val_loss, has_val)]
            record["val_accuracy"] = [v if h else None for v, h in zip(val_accuracy, has_val)]
        records.append(record)
        halted = spec.on_epoch(record) if spec.on_epoch is not None else None
        if halted:  # members the caller stops now (a search's pruned trials)
            stopping.halt(halted)
        if all(stopping.stopped):
            break
    return records


def stream_epoch(run: Run, blocks, generators, live, plan) -> list[float]:
    """One epoch over a stream's blocks: each block's rows shuffled and cut into batches,
    its steps taking the next share of the epoch's plan -> each member's mean loss.

    Across processes each rank holds its own rows of the same blocks: a block takes as
    many steps as all its rows need, each rank's batches its even share of them, and the
    losses' scale is the batch's weight summed over ranks."""
    members, world = run.spec.members, run.world
    batch, done, total, rows = run.spec.config.batch_size, 0, 0.0, 0
    for block in blocks:
        n = len(block.y)
        count = math.ceil(n / batch)
        local_batch = batch
        if world.size > 1:
            every = world.sum_(torch.tensor([float(n)], device=block.y.device))
            count = max(1, math.ceil(int(every.item()) / batch))
            local_batch = max(1, math.ceil(n / count))
            block = block if n else padding_row(block)  # a step with no rows of its own
        everyone = [Member(np.arange(n), np.arange(0), m.seed) for m in members]
        order = shuffled_rows(everyone, generators, live, count, local_batch)
        epoch = Epoch.lay_out(order, block, run.loss_fn, world, local=True)
        inputs = EpochInputs(DeviceInputs(run.spec.model, block), epoch)
        share = plan[done : done + count]
        share += plan[-1:] * (count - len(share))  # blocks cut apart: a step or two more
        row_loss = run.steps.epoch(epoch, inputs, share)
        total = total + epoch.member_loss(row_loss).cpu() * n
        done, rows = done + count, rows + n
    return (total / max(rows, 1)).tolist() if rows else [math.nan] * len(members)


def padding_row(block: TensorData) -> TensorData:
    """One all-zero row shaped like the block's (its mask keeps it out of every loss)."""
    zeros = [t.new_zeros((1, *t.shape[1:])) for t in (block.x_num, block.x_cat, block.y)]
    return TensorData(*zeros)


class MemberClock:
    """Each member's own steps and learning rates: a member takes ceil(rows / batch) steps
    an epoch and follows the schedule on its own step count, exactly as it would alone;
    the stack runs as many steps as its longest live member."""

    def __init__(
        self, config: TrainConfig, train_sizes: Sequence[int], lrs: Sequence[float]
    ) -> None:
        self.config, self.lrs = config, list(lrs)
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
        return self.lrs[k] * lr_factor(self.config, self.steps[k] + step, self.per_epoch[k])


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
            patience_out = self.has_val[k] and self.since_best[k] >= self.patience
            self.stopped[k] = self.stopped[k] or patience_out  # halted members stay stopped
            improved.append(better)
        return improved

    def halt(self, members) -> None:
        """Stop these members for good now (they keep their best weights so far)."""
        for k in members:
            self.stopped[k] = True
