"""How much memory this process may use, and sizes in words: what tabnn's size checks
compare a configuration's needs with, before anything is allocated.

Only the standard library at import (torch only for a CUDA device, or a fit that ran out
of memory: ``out_of_memory_explained`` says what to do), and
only integer arithmetic on sizes: a size parameter of any magnitude cannot overflow here.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from ..errors import OutOfMemoryError, TabnnError

# a machine whose memory cannot be read (no sysconf) is taken to have this much
UNKNOWN_MACHINE_BYTES = 1 << 40
# cgroup v2 (a container's limit) and v1
CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


class Budget(NamedTuple):
    """The most memory there is, and what sets it (in words, for messages)."""

    bytes: int
    source: str


def available(device: str = "cpu") -> Budget:
    """The lowest of the limits on this process's memory: the machine's physical memory,
    its container's limit, ``ulimit -v`` and ``ulimit -d`` (less what the process uses of
    them already: torch alone maps gigabytes) and, for a CUDA device, its memory."""
    limits = [_physical(), _cgroup(), *_ulimits()]
    if device != "cpu":
        limits.append(_gpu(device))
    return min((limit for limit in limits if limit is not None), key=lambda b: b.bytes)


def _physical() -> Budget:
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not a POSIX system
        return Budget(UNKNOWN_MACHINE_BYTES, "the memory assumed for this machine")
    return Budget(pages, "this machine's physical memory")


def _cgroup() -> Budget | None:
    for name in CGROUP_LIMITS:
        try:
            text = Path(name).read_text().strip()
        except OSError:
            continue
        if text.isdigit():  # "max" means none; v1 writes a huge number instead
            return Budget(int(text), "this container's memory limit")
    return None


def _ulimits() -> list[Budget]:
    try:
        import resource
    except ImportError:  # Windows
        return []
    # (limit, its field in /proc/self/statm: the pages mapped, the data segment's, its name)
    kinds = [(resource.RLIMIT_AS, 0, "ulimit -v"), (resource.RLIMIT_DATA, 5, "ulimit -d")]
    budgets = []
    for kind, field, name in kinds:
        soft, _ = resource.getrlimit(kind)
        if soft != resource.RLIM_INFINITY:
            left = max(0, soft - _used(field))
            budgets.append(Budget(left, f"what the process's memory limit ({name}) leaves"))
    return budgets


def _used(field: int) -> int:
    """Bytes of one field of /proc/self/statm (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[field]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _gpu(device: str) -> Budget | None:
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    if device != "auto" and not device.startswith("cuda"):
        return None
    index = int(device.partition(":")[2] or torch.cuda.current_device())
    if index >= torch.cuda.device_count():
        return None  # device_of names that error when the device is used
    total = torch.cuda.get_device_properties(index).total_memory
    return Budget(int(total), f"the memory of cuda:{index}")


def in_words(size: int) -> str:
    """Bytes in words, with integer arithmetic only (any size): ``1.5 GB``, ``12,000.0 TB``,
    and beyond a million terabytes ``over 1,000,000 TB``."""
    if size > 10**18:
        return "over 1,000,000 TB"
    for unit, scale in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= scale:
            whole, tenth = divmod(size * 10 // scale, 10)
            return f"{whole:,}.{tenth} {unit}"
    return f"{size:,} bytes"


def shown(value) -> str:
    """A size parameter's value for a message: ``1,000,000,000``; an integer too long to
    print whole (Python refuses str() beyond 4,300 digits) as its order of magnitude."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"about 2**{value.bit_length() - 1}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(map(shown, value)) + "]"
    return repr(value)


@contextmanager
def out_of_memory_explained():
    """A MemoryError (or CUDA's out-of-memory error) while fitting, as an error that says
    what to do: the sizes were checked before, so it is the table or what it needs."""
    import torch

    try:
        yield
    except (MemoryError, torch.cuda.OutOfMemoryError) as error:
        if isinstance(error, TabnnError):
            raise
        raise OutOfMemoryError(
            "Training ran out of memory: the table and the network together are too large "
            "for this machine. Train on fewer rows (tabnn train --stream reads a large table "
            "in blocks), or choose fewer members (n_members), smaller layers (hidden) or "
            "smaller batches (batch_size)."
        ) from error
