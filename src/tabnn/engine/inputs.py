"""The network's inputs for the engine: the table encoded once per fit where it fits in
memory (``DeviceInputs``), and each epoch's shuffled batches laid out once (``Epoch``,
``EpochInputs``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..nn.network import TabularNetwork
from .config import TensorData
from .distributed import World


def padded_rows(row_sets: Sequence[np.ndarray], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Ragged per-member row lists -> (K, longest) indices and a 0/1 mask of real entries."""
    longest = max(1, max(len(r) for r in row_sets))
    index = torch.zeros(len(row_sets), longest, dtype=torch.long)
    mask = torch.zeros(len(row_sets), longest)
    for k, rows in enumerate(row_sets):
        index[k, : len(rows)] = torch.as_tensor(rows, dtype=torch.long)
        mask[k, : len(rows)] = 1.0
    return index.to(device), mask.to(device)


# fit when the encoded table takes at most this; otherwise every batch encodes its rows.
ENCODED_BYTES = 1 << 30
# Values encoded at a time: few enough for the temporaries to stay in cache.
ENCODE_CHUNK = 1 << 18
# Gather a whole epoch's encoded batches at once when they take at most this.
EPOCH_BYTES = 1 << 24


class DeviceInputs:
    """The network's inputs for any rows of the table, encoded once where that fits.

    With per-member statistics (folds) the table is (K, rows, width); when every member
    scales alike (seeds, an ensemble) one (1, rows, width) table serves them all. The
    values are exactly those the encoder computes batch by batch. Embeddings train, so
    they are looked up per batch."""

    def __init__(self, model: TabularNetwork, data: TensorData, max_bytes: int = ENCODED_BYTES):
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
            chunk = max(1, ENCODE_CHUNK // max(1, width))  # width 0: every column embedded
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
class RowOrder:
    """One epoch's rows for every member in batches: ``index`` (steps, K, batch) row
    numbers (0 for padding) and ``counts`` (steps, K) the real rows of each batch."""

    index: np.ndarray
    counts: np.ndarray


def shuffled_rows(members, generators, live, steps: int, batch: int) -> RowOrder:
    """Each live member's training rows in a fresh order from its generator, cut into
    ``steps`` batches of ``batch`` rows (a stopped member's batches are all padding)."""
    index = np.zeros((len(members), steps * batch), dtype=np.int64)
    sizes = np.zeros((len(members), 1), dtype=np.int64)
    for k, (member, generator) in enumerate(zip(members, generators)):
        if live[k]:
            rows = member.train_rows
            index[k, : len(rows)] = rows[torch.randperm(len(rows), generator=generator).numpy()]
            sizes[k] = len(rows)
    counts = np.clip(sizes - batch * np.arange(steps), 0, batch).T  # (steps, K)
    return RowOrder(index.reshape(len(members), steps, batch).transpose(1, 0, 2), counts)


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
    world: World | None = None  # a run across processes: batch losses are summed over ranks

    @classmethod
    def lay_out(cls, order: RowOrder, data, loss_fn, world=None, local=False) -> Epoch:
        """An epoch's batches of rows in ``order`` (``shuffled_rows``): their targets, masks
        and loss scales on the data's device; across processes, the rows of each global
        batch that this rank holds, or with ``local`` this rank's own rows (a stream's),
        its batches its share of the step's."""
        device = data.y.device
        index, counts = order.index, order.counts
        global_counts, across = counts, world is not None and world.size > 1
        if across and not local:
            index, counts = _own_share(index, counts, world)
        elif across:
            summed = world.sum_(torch.from_numpy(counts.astype(np.float64)).to(device))
            global_counts = summed.cpu().numpy()
        widths = counts.max(1, initial=0)
        if across:
            widths = np.maximum(widths, 1)  # a rank with no rows of a step still takes it
        padded = (counts < widths[:, None]).any(1)
        width = index.shape[-1]
        mask = (np.arange(width) < counts[..., None]).astype(np.float32)  # (steps, K, width)
        index_t = torch.from_numpy(np.ascontiguousarray(index)).to(device)
        mask_t = torch.from_numpy(mask).to(device)
        y = data.y[index_t]
        weight = loss_fn.row_weight(y)
        weight = mask_t if weight is None else weight * mask_t
        total = weight.sum(-1, keepdim=True)
        if world is not None:
            world.sum_(total)
        scale = weight / total.clamp_min(1e-12)
        counts_t = torch.from_numpy(global_counts.astype(np.float32)).to(device)
        return cls(index_t, mask_t, y, scale, counts_t, widths.tolist(), padded.tolist(), world)

    def member_loss(self, row_loss: torch.Tensor) -> torch.Tensor:
        """Per-row losses (steps, K, batch) -> each member's mean batch loss over the epoch,
        each batch counted by its real rows (K,)."""
        batch_loss = (row_loss * self.scale).sum(-1)  # (steps, K)
        if self.world is not None:
            self.world.sum_(batch_loss)
        return (batch_loss * self.counts).sum(0) / self.counts.sum(0).clamp_min(1)


def _own_share(index: np.ndarray, counts: np.ndarray, world: World):
    """Global batches (steps, K, batch) of row numbers and their real rows (steps, K) ->
    this rank's rows of each batch, first in the batch's order, as positions in its own
    tensors, and how many there are; cut to the widest batch any step has here."""
    real = np.arange(index.shape[-1]) < counts[..., None]
    owned = real & world.owns(index)
    order = np.argsort(~owned, axis=-1, kind="stable")  # owned rows first, in order
    index = np.where(owned, world.local(index), 0)
    index = np.take_along_axis(index, order, axis=-1)
    counts = owned.sum(-1)
    return index[..., : max(1, int(counts.max(initial=0)))], counts


class EpochInputs:
    """An epoch's encoded batches: gathered at once when small, else batch by batch."""

    def __init__(self, inputs: DeviceInputs, epoch: Epoch) -> None:
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
