"""Where predictions run: a pool of threads, never the event loop; a bounded number of
requests admitted at once (the rest get 503 at once, not a growing queue); a time limit (504);
and optional micro-batches that merge small concurrent requests into one forward pass.

A request's slot is freed when the work done for it ends, not when its client stops
waiting: work that timed out still holds a thread, and admitting more in its place would
let the backlog grow without bound.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from ..errors import TabnnError
from .models import Prediction, RequestError, ServedModel, Table, concat_rows, table_rows


class Runner:
    """Runs jobs on ``threads`` threads with at most ``threads + queue`` requests admitted,
    each answered within ``timeout`` seconds."""

    def __init__(self, threads: int, queue: int, timeout: float) -> None:
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="tabnn-predict")
        self.capacity, self.timeout = threads + queue, timeout
        self.admitted = 0
        self.lock = threading.Lock()

    def admit(self, requests: int = 1) -> None:
        """Take slots for requests, or refuse them with 503 when the queue is full."""
        with self.lock:
            if self.admitted + requests > self.capacity:
                raise RequestError(
                    503,
                    f"The server is busy: {self.admitted} requests are queued or running, "
                    f"its limit is {self.capacity}. Retry shortly.",
                )
            self.admitted += requests

    def release(self, requests: int = 1) -> None:
        with self.lock:
            self.admitted -= requests

    def submit(self, job: Callable, *args, holds: int = 0) -> Future:
        """Start a job on the pool; it frees ``holds`` admitted slots when it ends."""
        future = self.executor.submit(job, *args)
        if holds:
            future.add_done_callback(lambda _: self.release(holds))
        return future

    async def run(self, job: Callable, *args, inline: bool = False):
        """Admit one request, run its job on the pool, wait for it within the time limit.
        ``inline``: a job of well under a millisecond (a small request) runs on the event
        loop itself, where handing it to a thread and back would cost more than the job."""
        self.admit()
        if not inline:
            return await self.wait(self.submit(job, *args, holds=1))
        try:
            return job(*args)
        finally:
            self.release()

    async def wait(self, future: Future | asyncio.Future):
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)
        except TimeoutError:
            raise RequestError(
                504,
                f"The prediction took longer than the server's time limit ({self.timeout:g} s);"
                f" send fewer rows a request.",
            ) from None

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=False)


class Batcher:
    """Merges one model's small concurrent requests: a request waits at most ``wait``
    seconds for others, and a batch closes as soon as it holds ``max_rows`` rows. The batch
    is checked request by request and predicted as one forward pass: one client's error
    never becomes another's, and no request borrows another's columns."""

    def __init__(self, model: ServedModel, runner: Runner, max_rows: int, wait: float) -> None:
        self.model, self.runner, self.max_rows, self.wait = model, runner, max_rows, wait
        self.waiting: list[tuple[Table, asyncio.Future]] = []
        self.rows = 0
        self.timer: asyncio.TimerHandle | None = None
        self.on_batch: Callable[[int], None] | None = None  # told each batch's row count

    async def predict(self, table: Table) -> Prediction:
        """Admit the request, add it to the open batch, wait for its prediction."""
        self.runner.admit()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.waiting.append((table, future))
        self.rows += table_rows(table)
        if self.rows >= self.max_rows:
            self.flush()
        elif self.timer is None:
            self.timer = loop.call_later(self.wait, self.flush)
        return await self.runner.wait(future)

    def flush(self) -> None:
        """Close the open batch and start predicting it."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        batch, self.waiting, self.rows = self.waiting, [], 0
        if not batch:
            return
        job = self.runner.submit(self.predict_batch, [f for f, _ in batch], holds=len(batch))
        futures = [f for _, f in batch]
        loop = asyncio.get_running_loop()
        job.add_done_callback(lambda done: loop.call_soon_threadsafe(deliver, done, futures))

    def predict_batch(self, tables: list[Table]) -> list:
        """Each request's prediction, or the error that request alone gets: every request
        is checked on its own, and only the rows of those that pass share a forward pass,
        so a request's answer never depends on the others in its batch."""
        results = [check_or_error(self.model, table) for table in tables]
        passed = [i for i, result in enumerate(results) if not isinstance(result, Exception)]
        if not passed:
            return results
        parts = [results[i] for i in passed]
        sizes = [len(part.numeric) for part in parts]
        if self.on_batch is not None:
            self.on_batch(sum(sizes))
        try:
            predictions = split(self.model.predict_checked(concat_rows(parts)), sizes)
        except RequestError as error:  # the model's failure: every request in it gets it
            predictions = [error] * len(parts)
        for i, prediction in zip(passed, predictions):
            results[i] = prediction
        return results


def check_or_error(model: ServedModel, table: Table):
    try:
        return model.check(table)
    except TabnnError as error:
        return RequestError(400, str(error))


def split(prediction: Prediction, sizes: list[int]) -> list[Prediction]:
    """One batch's prediction -> each request's share, in order."""
    parts, start = [], 0
    for size in sizes:
        end = start + size
        parts.append(
            Prediction(
                prediction.labels[start:end],
                prediction.probabilities[start:end],
                prediction.outside[start:end],
            )
        )
        start = end
    return parts


def deliver(job: Future, futures: list[asyncio.Future]) -> None:
    """Hand each waiting request its result (or error) from a finished batch job."""
    error = job.exception()
    results = [error] * len(futures) if error is not None else job.result()
    for future, result in zip(futures, results):
        if future.done():  # its client timed out already
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
