"""Probabilities for many rows at once, on every CPU core: what ``tabnn predict`` and
``tabnn.scale.spark`` run on each chunk of encoded rows.

A chunk's rows are cut into one contiguous slice per worker thread, and each worker runs
the network on its slice with torch on one thread (PyTorch releases the GIL inside its
operations). One torch thread per worker, rather than torch's own threads over one
slice, because the forward pass of 1,024 rows is a dozen small operations: torch's
threads meet at a barrier after each, and a barrier waits for a busy core, so on a machine
where anything else runs (a second job, Spark's other tasks) the spin-waits cost up to 20x.
Separate slices never wait for each other.

``precision="float64"`` computes as ``predict_proba`` does, with its float64 copy of the
network (in blocks of 1,024 rows, where ``predict_proba`` takes 8,192: the matrix
products round a few rows differently, in the last bit, about 1e-17). ``"float32"`` runs
the trained float32 weights, about twice as fast on a CPU; its probabilities differ from
float64 by rounding (2e-7 on the benchmark's model), and the first rows predicted are
checked: if any of their probabilities differs by more than ``FLOAT32_TOLERANCE`` it
warns and goes on in float64.
"""

from __future__ import annotations

import copy
import os
import queue
import threading
import warnings
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

from ..engine.cpu import cpu_policy
from ..errors import TabnnWarning, UsageError
from ..features.preprocess import EncodedInputs
from ..nn.forward import BLOCK_ROWS, check_finite, mean_probabilities, member_probabilities

PRECISIONS = ("float64", "float32")
FLOAT32_TOLERANCE = 1e-6
CHECKED_ROWS = 4096  # rows of the first chunk predicted both ways for the float32 check


def available_cpus() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class BulkPredictor:
    """Probabilities of encoded chunks for one fitted model; a context manager that owns
    the worker threads. Each chunk is predicted under ``engine.cpu.cpu_policy`` with torch
    on one thread (the workers start inside it and keep that), and the policy is let go
    between chunks, so a predictor that is never closed (a Spark worker's, kept for the
    life of its process) cannot keep a fit in another thread waiting.

    Parameters
    ----------
    estimator : TabNNClassifier
        A fitted (or loaded) model.
    precision : {"float64", "float32"}
        See the module's description.
    workers : int, optional
        Worker threads; the CPU cores available when omitted.
    """

    def __init__(self, estimator, *, precision: str = "float64", workers: int | None = None):
        if precision not in PRECISIONS:
            raise UsageError(f"precision must be float64 or float32; got {precision!r}.")
        self.estimator = estimator
        self.precision = precision
        self.workers = max(1, workers or available_cpus())
        self.network = estimator.inference_model_
        self.temperature = getattr(estimator, "temperature_", None)  # calibrate=True's
        if precision == "float32":  # the float64 copy holds the float32 weights exactly
            self.network = copy.deepcopy(estimator.inference_model_).float()
        self._checked = precision == "float64"
        self._pool = None

    def __enter__(self) -> BulkPredictor:
        if self.workers > 1:  # its threads start at the first chunk, inside the policy
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="tabnn-predict")
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def proba(self, inputs: EncodedInputs) -> np.ndarray:
        """``predict_proba`` of encoded rows: (n, 2) for binary, (n, classes) or
        (n, labels), float64; a DataError names rows without finite probabilities."""
        with cpu_policy(threads=1):  # one torch thread per worker
            return self._proba(inputs)

    def _proba(self, inputs: EncodedInputs) -> np.ndarray:
        if not self._checked:
            self._check_float32(inputs)
        n = len(inputs.numeric)
        if n == 0:  # the network needs a row
            return np.empty((0, len(self.estimator.schema_.classes)))
        slices = min(self.workers, -(-n // BLOCK_ROWS))
        step = -(-n // slices)
        parts = [
            (inputs.numeric[start : start + step], inputs.categorical[start : start + step])
            for start in range(0, n, step)
        ]
        if self._pool is None or len(parts) == 1:
            members = [self._members(*part) for part in parts]
        else:
            members = list(self._pool.map(lambda part: self._members(*part), parts))
        proba = _mean_proba(np.concatenate(members, axis=1), self.estimator.task_)
        twins = getattr(self.estimator, "twins_", None)
        return proba if twins is None else twins.blend(proba, *inputs)

    def _members(self, x_num, x_cat) -> np.ndarray:
        return member_probabilities(
            self.network,
            self.estimator.task_,
            x_num,
            x_cat,
            block_rows=BLOCK_ROWS,
            temperature=self.temperature,
        )

    def _check_float32(self, inputs: EncodedInputs) -> None:
        """Compare float32 with float64 on the first rows; fall back to float64 (with a
        warning) when they differ by more than FLOAT32_TOLERANCE."""
        self._checked = True
        rows = EncodedInputs(inputs.numeric[:CHECKED_ROWS], inputs.categorical[:CHECKED_ROWS])
        exact = self.estimator.inference_model_
        task = self.estimator.task_
        with np.errstate(invalid="ignore"):
            difference = np.abs(
                _mean_proba(
                    member_probabilities(
                        exact, task, *rows, block_rows=BLOCK_ROWS, temperature=self.temperature
                    ),
                    task,
                    check=False,
                )
                - _mean_proba(self._members(*rows), task, check=False)
            )
        largest = float(np.nanmax(difference)) if difference.size else 0.0
        if largest > FLOAT32_TOLERANCE:
            self.network = exact
            warnings.warn(
                f"float32 probabilities differ from float64 by up to {largest:.1e} on the "
                f"first {len(rows.numeric)} rows (more than {FLOAT32_TOLERANCE:g}); "
                f"predicting in float64.",
                TabnnWarning,
                stacklevel=3,
            )


_DONE = object()


@contextmanager
def prefetched(items: Iterable, depth: int = 1) -> Iterator[Iterator]:
    """Yield an iterator over ``items``, which a background thread draws up to ``depth``
    ahead: reading and encoding the next chunk (pyarrow and Arrow's computations release
    the GIL) overlaps predicting this one, for about 10 % more rows a second. An error in
    the thread is raised in the consumer, in order; leaving the block (an error, Ctrl-C)
    stops the thread and closes ``items``."""
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                handoff.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        source = iter(items)
        try:
            for item in source:
                if not put((item, None)):
                    return
            put((_DONE, None))
        except BaseException as error:  # handed to the consumer, raised there
            put((None, error))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    def drain() -> Iterator:
        while True:
            item, error = handoff.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item

    thread = threading.Thread(target=work, name="tabnn-read", daemon=True)
    thread.start()
    try:
        yield drain()
    finally:
        stop.set()
        thread.join()


def _mean_proba(members: np.ndarray, task: str, *, check: bool = True) -> np.ndarray:
    """Members' probabilities (members, rows, outputs) -> ``predict_proba``'s array, as
    ``TabNNClassifier.predict_proba`` computes it."""
    if check:
        check_finite(members, " within the chunk")
    return mean_probabilities(members, task)
