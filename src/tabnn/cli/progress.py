"""Progress bars on stderr: over epochs, over compared designs, over predicted rows.

Only a person at a terminal sees them: never with --quiet, when stderr is piped, or in CI.
Each context manager yields the callbacks the library takes (``on_epoch``, ``on_design``,
``on_chunk``), or None where no bar is shown. The bars draw on ``render.err_console`` as it
is when they start.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager

from . import render


def show_progress(quiet: bool) -> bool:
    """Progress bars only for a person at a terminal: not with --quiet, not when stderr is
    piped, not in CI (the CI variable that CI services set)."""
    return not quiet and render.err_console.is_terminal and not os.environ.get("CI")


@contextmanager
def epoch_progress(total: int | None, quiet: bool):
    """A progress bar over epochs on a terminal; nothing when quiet, piped or in CI."""
    if not show_progress(quiet):
        yield None
        return
    with _epoch_bar(total) as (progress, bar):
        yield _epoch_updater(progress, bar)


@contextmanager
def design_progress(designs: list[str], epochs: int | None, quiet: bool):
    """A bar over each design's epochs (its folds train together) and the refit, naming
    the stage; nothing when quiet, piped or in CI. Yields (on_design, on_epoch)."""
    if not show_progress(quiet):
        yield None, None
        return
    with _epoch_bar(epochs) as (progress, bar):

        def on_design(name: str) -> None:
            stage = (
                "refit" if name == "refit" else f"{name} ({designs.index(name) + 1}/{len(designs)})"
            )
            progress.reset(bar, total=epochs, stage=stage, losses="")

        yield on_design, _epoch_updater(progress, bar)


@contextmanager
def chunk_progress(quiet: bool, count=None):
    """A bar over the rows predicted so far, with their rate, when ``count()`` gives the
    number of rows to expect (Parquet files say it in their footers); a running count of
    rows otherwise; nothing when quiet, piped or in CI."""
    if not show_progress(quiet):
        yield None
        return
    total = count() if count is not None else None
    if total is None:
        with render.err_console.status("predicting") as status:

            def on_chunk(rows: int) -> None:
                status.update(f"predicted {rows:,} rows")

            yield on_chunk
        return
    with _rows_bar(total) as on_chunk:
        yield on_chunk


@contextmanager
def _rows_bar(total: int):
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    columns = [
        TextColumn("predicting"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} rows"),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=render.err_console, transient=True) as progress:
        bar = progress.add_task("predict", total=total, rate="")
        start = time.monotonic()

        def on_chunk(rows: int) -> None:
            elapsed = time.monotonic() - start
            rate = f"{rows / elapsed:,.0f} rows/s" if elapsed > 0 else ""
            progress.update(bar, completed=rows, rate=rate)

        yield on_chunk


@contextmanager
def _epoch_bar(total: int | None):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [
        TextColumn("{task.fields[stage]}"),
        # no total when the epochs are chosen from the rows (the bar then pulses)
        TextColumn("epoch {task.completed}" + ("" if total is None else "/{task.total}")),
        BarColumn(),
        TextColumn("{task.fields[losses]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=render.err_console, transient=True) as progress:
        yield progress, progress.add_task("train", total=total, stage="", losses="")


def _epoch_updater(progress, bar):
    """on_epoch for a bar: mean losses over the members still training, and how many are."""

    def on_epoch(record: dict) -> None:
        live = [v for v in record["train_loss"] if v is not None]
        losses = f"train {_mean(live):.4f}"
        if any(v is not None for v in record["val_loss"]):
            losses += f"  val {_mean(record['val_loss']):.4f}"
            losses += f"  val acc {_mean(record['val_accuracy']):.3f}"
        if len(record["train_loss"]) > 1:
            losses += f"  {len(live)}/{len(record['train_loss'])} training"
        progress.update(bar, completed=record["epoch"], losses=losses)

    return on_epoch


def _mean(values) -> float:
    values = [v for v in values if v is not None]
    return sum(values) / max(1, len(values))
