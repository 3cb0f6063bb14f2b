"""One model trained across processes started by ``torchrun``: which rows each rank holds,
and the few collectives the engine needs (gloo on the CPU, NCCL on GPUs).

Rank ``r`` of ``n`` holds the rows whose number is ``r`` modulo ``n`` (the ``n``-th row from
``r`` on), as row ``number // n`` of its own tensors. Every rank draws the same shuffled
order of *all* rows, so a step's global batch is exactly the one-process batch; each rank
computes the loss of its own rows of it, scaled by the batch's weight summed over ranks, and
the gradients are summed over ranks before clipping and the optimizer step. The model then
trains as one process does with the same batch (up to float rounding), and validation
losses, summed over ranks, are the same number on every rank, so early stopping and the
best epoch agree without a vote.

The gradients sit in the engine's one flat buffer (``optim.FlatParameters``), so the
all-reduce is one call on it per step: what ``DistributedDataParallel``'s reducer does with
its buckets, for both the autograd and the hand-written backward passes. DDP's module
wrapper itself is not used: it hooks ``forward`` and per-parameter gradients, which the
hand-written pass does not have.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from ..errors import TabnnError, UsageError

Shared = TypeVar("Shared")  # a class with to_dict() and from_dict()


class World:
    """This process's rank among ``size`` training processes (one process: rank 0 of 1)."""

    def __init__(self, rank: int = 0, size: int = 1) -> None:
        self.rank, self.size = rank, size

    @classmethod
    def current(cls) -> World:
        """The process group torchrun started, or a world of one."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return cls(torch.distributed.get_rank(), torch.distributed.get_world_size())
        return cls()

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that evaluates, writes and prints."""
        return self.rank == 0

    def own_rows(self, n: int) -> slice:
        """This rank's rows of an ``n``-row table, as a slice (a view, no copy)."""
        return slice(self.rank, n, self.size)

    def owns(self, rows: np.ndarray) -> np.ndarray:
        """Whether each row number is this rank's."""
        return rows % self.size == self.rank

    def local(self, rows: np.ndarray) -> np.ndarray:
        """Row numbers this rank owns -> their positions in its own tensors."""
        return rows // self.size

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over ranks, in place; every rank gets the same result."""
        if self.size > 1:
            with _peers_checked(self.rank):
                torch.distributed.all_reduce(tensor)
        return tensor

    def broadcast_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Rank 0's ``tensor`` on every rank, in place."""
        if self.size > 1:
            with _peers_checked(self.rank):
                torch.distributed.broadcast(tensor, 0)
        return tensor

    def from_main(self, kind: type[Shared], make: Callable[[], Shared], device) -> Shared:
        """``make()`` run on rank 0 alone and handed to every rank through the JSON form
        of ``kind`` (``to_dict``/``from_dict``): statistics computed once, nothing unpickled."""
        if self.size == 1:
            return make()
        made = make() if self.is_main else None
        text = json.dumps(made.to_dict()).encode() if made is not None else b""
        length = self.broadcast_(torch.tensor([len(text)], device=device))
        data = torch.zeros(int(length.item()), dtype=torch.uint8, device=device)
        if self.is_main:
            data.copy_(torch.frombuffer(bytearray(text), dtype=torch.uint8))
        state = json.loads(bytes(self.broadcast_(data).cpu().numpy()).decode())
        return made if made is not None else kind.from_dict(state)


class PeerFailed(TabnnError):
    """Another rank of the job stopped (crashed, killed, lost its network): this one cannot
    go on, and writes nothing."""


@contextmanager
def _peers_checked(rank: int):
    """A collective's failure (gloo and NCCL raise RuntimeError) -> ``PeerFailed``."""
    try:
        yield
    except RuntimeError as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise PeerFailed(
            f"rank {rank}: another process of this torchrun job stopped, so training "
            f"cannot go on and nothing was written (see torchrun's summary for which rank "
            f"and why). The collective said: {first[:300]}"
        ) from error


def started_by_torchrun() -> bool:
    """Whether this process is one of several that torchrun (or another launcher setting
    PyTorch's environment variables) started."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def join(device: str) -> tuple[World, str]:
    """Join the process group torchrun describes in the environment -> this rank's world
    and the device it trains on (``cuda:LOCAL_RANK`` for CUDA; NCCL there, gloo on CPUs)."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        if torch.cuda.device_count() <= local_rank:
            raise UsageError(
                f"local rank {local_rank} needs its own GPU, but PyTorch sees "
                f"{torch.cuda.device_count()}: start at most that many processes per node."
            )
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    elif device == "auto":
        device = "cpu"
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if cuda else "gloo")
    return World.current(), device


@contextmanager
def joined(device: str):
    """Run a command as one rank of torchrun's job when torchrun started it, else as a
    world of one -> (world, device); the process group is left at the end either way."""
    if not started_by_torchrun():
        yield World(), device
        return
    try:
        yield join(device)
    except PeerFailed:  # the rank that stopped first is torchrun's root cause, not this one
        raise
    except TabnnError as error:
        tell_torchrun(str(error))
        raise
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def tell_torchrun(message: str) -> None:
    """Write a rank's error where torchrun reads it (the file its environment variable
    ``TORCHELASTIC_ERROR_FILE`` names, in the layout of torch's ``ErrorHandler``), so that
    the summary torchrun prints once a rank has failed shows ``error: MESSAGE`` on its
    ``traceback :`` line, not a link to PyTorch's documentation. No Python call stack
    goes in: a user's error is no bug. (The error reaches the user first on stderr.)"""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path:
        return
    stamp = str(int(time.time()))  # torchrun orders the failures by it: whole seconds
    data = {"message": {"message": f"error: {message}", "extraInfo": {"timestamp": stamp}}}
    with contextlib.suppress(OSError):  # a courtesy to torchrun: never a failure of its own
        Path(path).write_text(json.dumps(data))
