"""The CPU policy: how tabnn uses torch's process-wide CPU settings, in one place.

What a fit sets (measured with benchmarks/throughput.py and benchmarks/w1_tutorial.py):
one thread for small steps (``SMALL_STEP_FLOPS``), MKL or oneDNN per layer
(``cpu_matmuls_for``), and subnormal floats flushed to zero (``denormals_flushed``).
Bulk prediction sets one torch thread per worker (``inference.bulk``). A server process
runs every request on one torch thread for its whole life (``serving.app``).

The settings belong to the whole process, so every change goes through ``cpu_policy``:
it holds one lock for the process (re-entrant), sets, and restores in ``finally`` in the
reverse order. Two fits in two threads therefore run one after the other (on a CPU they
would only share its cores) and can never restore each other's values in the wrong order.
A thread that changes nothing (``predict_proba``) takes no lock; with torch's OpenMP
backend the thread count is per thread, and threads started inside a policy inherit it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

import torch

from ..nn.network import TabularNetwork

_POLICY = threading.RLock()  # held while any of torch's process-wide CPU settings is changed


@contextmanager
def cpu_policy(threads: int | None = None) -> Iterator[None]:
    """Hold the process's CPU settings (waiting for another thread's policy to end); with
    ``threads``, run torch on that many threads; restore everything on the way out."""
    with _POLICY:
        before = torch.get_num_threads()
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def cpu_policy_is_free() -> bool:
    """Whether another thread could enter ``cpu_policy`` now (no thread holds it)."""
    free = []

    def probe() -> None:  # from a new thread: the lock is re-entrant for its holder
        free.append(_POLICY.acquire(blocking=False))
        if free[0]:
            _POLICY.release()

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return free[0]


@contextmanager
def fit_policy(
    model: TabularNetwork, batch_size: int, device: torch.device
) -> Iterator[CpuMatmuls]:
    """The settings one fit runs under (see the module's docstring) -> its ``CpuMatmuls``."""
    with ExitStack() as stack:
        stack.enter_context(cpu_policy())
        stack.enter_context(denormals_flushed(device))
        stack.enter_context(cpu_threads_for(model, batch_size, device))
        yield stack.enter_context(cpu_matmuls_for(model, batch_size, device))


# CPU policy, measured with benchmarks/throughput.py and benchmarks/w1_tutorial.py on a
# 2-core AMD EPYC with torch 2.13's CPU wheel.
#
# Below this many floating-point operations per step, CPU threads cost more in
# synchronisation than they save, and on a busy machine they can stall a step for
# milliseconds while a thread waits for a core. (Two threads measured against one, second
# core free: 6 MFLOP steps +15 %, 16 MFLOP +35 %, 32 MFLOP +25 %; W1's 3 MFLOP steps of
# 10 rows lose. The margin above the break-even is for when the second core is busy.)
SMALL_STEP_FLOPS = 2e7
# From this many floating-point operations per matrix product on average (per thread),
# oneDNN's matmul beats the MKL sgemm that torch uses for float32 by default (up to twice
# as fast on AMD CPUs, where MKL does not use the full AVX-512 width); below it, oneDNN's
# fixed cost per call (about 15 microseconds) loses.
ONEDNN_MATMUL_FLOPS = 2.5e6


def step_flops(model: TabularNetwork, batch_size: int) -> float:
    """Forward and backward floating-point operations of one step of the whole stack's
    matrix products (an ensemble's shared layers count once per ensemble member)."""
    return 6.0 * sum(k * rows * n_in * n_out for k, rows, n_in, n_out in _shapes(model, batch_size))


def _shapes(model: TabularNetwork, batch_size: int) -> list[tuple[int, int, int, int]]:
    """(members, rows, in, out) of each matrix product of a step."""
    return model.matmul_shapes(batch_size)


@contextmanager
def cpu_threads_for(model: TabularNetwork, batch_size: int, device: torch.device):
    """Run small CPU steps on one thread (inside ``cpu_policy``, which restores it)."""
    small = step_flops(model, batch_size) < SMALL_STEP_FLOPS
    with cpu_policy(1 if device.type == "cpu" and small else None):
        yield


@contextmanager
def denormals_flushed(device: torch.device):
    """Treat subnormal floats as zero on the CPU for the length of a fit, then turn that
    off again (torch's default; torch has no getter for the setting).

    A member whose loss saturates (a separable fold, a trial without label smoothing)
    drives its gradients below 1e-38, where x86 arithmetic on subnormals is microcoded:
    every product that touches them got about 20 times slower, and in a stack that
    member slows all the others (a batch of 4 tuning trials took 62 s instead of 4.5 s on
    credit_a). Values that small change no weight at float32 precision."""
    if device.type != "cpu" or not torch.set_flush_denormal(True):
        yield
        return
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def onednn_is_exact(shapes: Sequence[tuple[int, int, int, int]]) -> bool:
    """Whether oneDNN's matmul, allowed to use bfloat16 internally, still computes
    products of these (members, rows, in, out) shapes in float32 here: CPUs without AMX
    run them with float32 kernels (errors ~1e-7 of the result, as MKL's); with AMX they
    would be bfloat16 (~1e-3), which tabnn does not do behind the user's back. Checked on
    one member at the real shapes (oneDNN picks kernels by size), once per process."""
    return all(_onednn_exact(rows, n_in, n_out) for _, rows, n_in, n_out in shapes)


@functools.lru_cache(maxsize=256)
def _onednn_exact(rows: int, n_in: int, n_out: int) -> bool:
    matmul = torch.backends.mkldnn.matmul
    before = matmul.fp32_precision
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, rows, n_in, generator=generator)
    w = torch.randn(1, n_in, n_out, generator=generator)
    exact = torch.bmm(x.double(), w.double())
    try:
        matmul.fp32_precision = "bf16"
        error = (torch.bmm(x, w).double() - exact).abs().max()
    finally:
        matmul.fp32_precision = before
    return bool(error <= 1e-5 * exact.abs().max())


class CpuMatmuls:
    """Which library computes each layer's float32 matrix products during a fit: MKL
    (torch's default) or oneDNN (torch's mkldnn matmul, reached by allowing it bfloat16
    internally, which ``onednn_is_exact`` has checked it does not use here). A layer's
    forward, weight-gradient and input-gradient products all have the same size, so one
    choice per layer; ``select`` switches torch's setting, a fraction of a microsecond."""

    def __init__(self, layers: list[bool]) -> None:
        self.layers = layers
        self.matmul = torch.backends.mkldnn.matmul if any(layers) else None
        self.before = self.matmul.fp32_precision if self.matmul is not None else None
        self.current: bool | None = None

    def select(self, onednn: bool) -> None:
        if self.matmul is not None and onednn is not self.current:
            self.matmul.fp32_precision = "bf16" if onednn else self.before
            self.current = onednn

    def restore(self) -> None:
        if self.matmul is not None:
            self.matmul.fp32_precision = self.before


@contextmanager
def cpu_matmuls_for(model: TabularNetwork, batch_size: int, device: torch.device):
    """Choose MKL or oneDNN for each layer's products (``CpuMatmuls``): oneDNN for those of
    at least ``ONEDNN_MATMUL_FLOPS`` per thread, on a CPU where it computes them in
    float32; and set the choice for the whole network (by the average product) for code
    that does not switch layer by layer. Restores torch's setting afterwards."""
    shapes = _shapes(model, batch_size)
    enough = [
        2.0 * k * rows * n_in * n_out >= ONEDNN_MATMUL_FLOPS * torch.get_num_threads()
        for k, rows, n_in, n_out in shapes
    ]
    usable = (
        device.type == "cpu"
        and any(enough)
        and getattr(torch.backends.mkldnn, "matmul", None) is not None
        and torch.backends.mkldnn.is_available()
    )
    if usable:
        usable = onednn_is_exact(shapes)
    matmuls = CpuMatmuls(enough if usable else [False] * len(shapes))
    per_matmul = step_flops(model, batch_size) / (3 * len(shapes)) / torch.get_num_threads()
    matmuls.select(per_matmul >= ONEDNN_MATMUL_FLOPS)
    try:
        yield matmuls
    finally:
        matmuls.restore()
