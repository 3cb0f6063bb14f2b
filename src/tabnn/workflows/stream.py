"""``tabnn train --stream``: ``train_workflow`` for a table larger than memory. The passes
over the table are :mod:`tabnn.scale.streaming`'s; the fit is the estimator's one recipe;
the result, the save, the report and the tracking are those of every run (``runs``)."""

from __future__ import annotations

import time
from pathlib import Path

from ..artifact.directory import temperature_info, threshold_info
from ..data.stream import TEST, TRAIN, VALIDATION
from ..engine.distributed import World
from ..scale.streaming import (
    SampledRows,
    Survey,
    TableStream,
    available_memory,
    check_stream_options,
    fit_streaming,
    has_header,
    survey,
)
from .runs import Outputs, TrainResult, check_model_out, each_callback, provenance, save_and_track


def stream_train_workflow(
    path, options, estimator, *, out, val_size=0.15, test_size=0.15, memory=None,
    on_epoch=None, outputs=None,
):  # fmt: skip
    """``train_workflow`` for a table larger than memory: it returns the same ``TrainResult``
    (its evaluation on the test sample), and saves, tracks and records provenance alike."""
    main = World.current().is_main
    check_stream_options(options, estimator)
    outputs = (outputs or Outputs()) if main else Outputs(report=False)
    if out is not None:
        check_model_out(out)
    memory = memory or available_memory()
    stream = TableStream(path, options, has_header(path, options))
    seed, sizes = int(estimator.random_state or 0), (val_size, test_size)
    started = time.perf_counter()
    found = survey(stream, estimator, seed, *sizes)
    surveyed = time.perf_counter() - started
    # opened once the first pass has checked the table, as train_workflow opens it once
    # the table is read: a bad table leaves no run behind
    with outputs.tracker(f"train-{Path(path).stem}") as tracker:
        tracker.log_params({"data": Path(path).name, **estimator.get_params()})
        epochs = each_callback(on_epoch, tracker.on_epoch)
        estimator, block_rows = fit_streaming(estimator, stream, found, seed, sizes, memory, epochs)
        seconds = time.perf_counter() - started
        if not main:  # torchrun's other ranks: rank 0 evaluates and writes
            return None
        held = SampledRows(found)
        evaluation = held.evaluation(estimator, found.counts[TEST])
        tracker.log_metrics({"test": evaluation["scores"].get("model", {})})
        result = streamed_result(estimator, found, path, seconds, evaluation)

        def contents():
            streamed = {
                "memory_budget": memory, "block_rows": block_rows, "survey_seconds": surveyed,
                "samples": {name: len(rows) for name, rows in held.splits.items()},
                "quantile_rank_error": found.statistics.rank_error,
            }  # fmt: skip
            more = {"split": "hash of the row number", "val_size": val_size,
                    "test_size": test_size, "seconds": seconds, "streamed": streamed}  # fmt: skip
            extra = {"evaluation": evaluation,
                     **provenance(path, options, found, result.rows, seed, more)}  # fmt: skip
            return estimator, extra, held.report(estimator, evaluation, path, outputs)

        save_and_track(result, out, outputs, tracker, contents)
    return result


def streamed_result(estimator, found: Survey, path, seconds: float, evaluation: dict):
    """The ``TrainResult`` of a streamed training (no test rows listed: they are sampled)."""
    return TrainResult(
        model_dir=None, task=estimator.task_, classes=list(estimator.schema_.classes),
        rows={"train": found.counts[TRAIN], "validation": found.counts[VALIDATION],
              "test": found.counts[TEST]},
        dropped_columns=dict(estimator.schema_.dropped), dropped_targets=found.dropped_targets,
        best_epochs=list(estimator.history_.best_epoch), seconds=seconds,
        evaluation=evaluation, params=estimator.get_params(), source=found.source(path),
        threshold=threshold_info(estimator), temperature=temperature_info(estimator),
    )  # fmt: skip
