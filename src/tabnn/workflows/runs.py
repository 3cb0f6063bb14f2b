"""The end-to-end workflows behind the command line, as typed functions with typed
results: train-evaluate-save, evaluate a saved model on labelled rows, compare designs.
They return plain data; the command line prints it; tune's search is in
:mod:`tabnn.tuning`. Predicting a file is in
:mod:`tabnn.inference.predict`.

Rows are named everywhere by their 0-based position among the data rows of the file (the
header line not counted), the numbering of the ``row`` column of every prediction output.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..artifact import directory as artifact
from ..data import (
    PARQUET_SUFFIXES,
    ReadOptions,
    detect_header,
    read_table,
    resolve_columns,
    split_target,
)
from ..data.splits import encoded_for_split, split_indices
from ..data.target import spec_notes
from ..engine.distributed import World
from ..errors import TabnnWarning, UsageError
from ..estimator.classifier import TabNNClassifier
from ..estimator.params import bagging_of
from ..estimator.twin_choice import twins_info
from ..evaluation.holdout import holdout_evaluation, positive_proba
from ..evaluation.metrics import compute_metrics
from ..features.schema import drop_missing_targets, infer_schema
from ..inference.predict import read_header, training_info
from ..report import builders
from ..report.data import ReportData
from ..report.html import write_report
from .tracking import Tracker, open_tracker

__all__ = [
    "Outputs",
    "ReadOptions",
    "TrainResult",
    "TrainingTable",
    "check_model_out",
    "compare_workflow",
    "each_callback",
    "evaluate_workflow",
    "load_training_table",
    "provenance",
    "save_and_track",
    "train_workflow",
    "tune_workflow",
]


@dataclass
class Outputs:
    """What a workflow writes besides the model: the HTML report (its data is always stored in
    the model directory) and the runs logged to TensorBoard and MLflow."""

    report: bool = True
    tensorboard: str | None = None
    mlflow: str | None = None

    def tracker(self, run_name: str) -> Tracker:
        """The trackers asked for (a no-op when none): opened after the data is read and
        checked, before any training, so a bad table leaves no run behind."""
        return open_tracker(self.tensorboard, self.mlflow, run_name=run_name)


def save_with_report(estimator, out, extra_meta: dict, data: ReportData, outputs: Outputs):
    """Save the model directory with the report's data inside it, then render the page
    into it (a rendering only: ``tabnn report`` draws it again). -> (model dir, page)."""
    model_dir = artifact.save(estimator, out, extra_meta=extra_meta, extra_files=data.files())
    return model_dir, write_report(data, model_dir) if outputs.report else None


def save_and_track(result, out, outputs: Outputs, tracker: Tracker, contents) -> None:
    """The tail every training workflow shares (train, compare, tune, train --stream): save
    the model directory with its report when there is an ``out``, log it as the run's
    artifact, and note in ``result`` where the model, the page and the run went.
    ``contents()`` -> (estimator, extra meta, report data): called only when saving, as
    the report's data costs predictions over the rows."""
    if out is not None:
        estimator, extra, data = contents()
        result.model_dir, result.report = save_with_report(estimator, out, extra, data, outputs)
        tracker.log_artifacts(result.model_dir)
    result.tracking = list(tracker.destinations)


@dataclass
class TrainResult:
    """What a training workflow did, as plain data (JSON-able through tabnn.io.to_jsonable)."""

    model_dir: Path | None
    task: str
    classes: list
    rows: dict
    dropped_columns: dict
    dropped_targets: int
    best_epochs: list
    seconds: float
    evaluation: dict
    params: dict = field(default_factory=dict)
    test_rows: list[int] = field(default_factory=list)  # file data rows held out for test
    source: dict = field(default_factory=dict)  # how the file was read (see TrainingTable)
    threshold: dict = field(default_factory=dict)  # as artifact.threshold_info
    temperature: list[float] | None = None  # as artifact.temperature_info (calibrate=True)
    report: Path | None = None  # the HTML report, when one was written
    tracking: list[str] = field(default_factory=list)  # where the run was logged
    bagging: int | None = None  # the folds the model was bagged over (params may say "auto")
    twins: dict | None = None  # as twin_choice.twins_info: its weight and choice


@dataclass
class TrainingTable:
    """A training file read and split into features and target."""

    frame: pd.DataFrame  # the whole file
    X: pd.DataFrame  # rows with a target, re-indexed 0..n-1
    y: pd.Series | pd.DataFrame
    file_rows: np.ndarray  # X's row i is data row file_rows[i] of the file
    target_columns: list[str]  # the target column(s) of the file, as resolved
    header: bool  # the first line held column names
    header_detected: bool  # ... as detected, not as the user said

    @property
    def dropped_targets(self) -> int:
        return len(self.frame) - len(self.X)

    @property
    def fingerprint(self) -> dict:
        return artifact.data_fingerprint(self.frame)

    def source(self, path) -> dict:
        """What was read, for the command line to report and the artifact to record."""
        return {
            "file": Path(path).name,
            "rows": len(self.frame),
            "columns": self.frame.shape[1],
            "text": Path(path).suffix.lower() not in (*PARQUET_SUFFIXES, ".arff"),
            "header": self.header,
            "header_detected": self.header_detected,
        }


def load_training_table(path, options: ReadOptions) -> TrainingTable:
    """Read a table, split off its target and drop rows whose target is missing."""
    if options.target is None:
        raise UsageError("--target is required: name the column(s) to predict.")
    header = options.header
    if header is None:
        header = detect_header(path, sep=options.sep)
    frame = read_table(path, sep=options.sep, header=header)
    for note in spec_notes(frame, options.target):
        warnings.warn(f"--target: {note}", TabnnWarning, stacklevel=2)
    X, y = split_target(frame, options.target, label_sep=options.label_sep)
    missing = y.isna()
    missing = missing.any(axis=1) if isinstance(missing, pd.DataFrame) else missing
    X, y, _ = drop_missing_targets(X, y)
    targets = resolve_columns(frame, options.target)
    rows = np.flatnonzero(~missing.to_numpy())
    return TrainingTable(frame, X, y, rows, targets, header, options.header is None)


def check_model_out(out: str | os.PathLike) -> None:
    """Refuse an output path that cannot take a model directory, before any training: a
    file, a link, a directory that is not a tabnn model's, or a model directory holding
    files tabnn did not write (listed). Saving checks again (``artifact.replace_refusal``)."""
    refusal = artifact.replace_refusal(out)
    if refusal:
        raise UsageError(f"Cannot save the model to '{out}': {refusal}")


def train_workflow(
    path,
    options: ReadOptions,
    estimator: TabNNClassifier,
    *,
    out: str | os.PathLike | None,
    val_size: float = 0.15,
    test_size: float = 0.15,
    on_epoch=None,
    outputs: Outputs | None = None,
) -> TrainResult | None:
    """Split train/validation/test (stratified), fit on train with early stopping on
    validation, evaluate once on test beside the baselines, save the model directory
    with its report.

    Under torchrun every rank reads the table and draws the same split, and trains its
    share of the rows; rank 0 alone evaluates, saves and tracks; the others return None."""
    main = World.current().is_main
    outputs = (outputs or Outputs()) if main else Outputs(report=False)
    if out is not None:
        check_model_out(out)
    table = load_training_table(path, options)
    X, y = table.X, table.y
    _check_whole_table(estimator, table)
    y_split, task = encoded_for_split(y)
    seed = int(estimator.random_state or 0)
    train, val, test = split_indices(
        y_split, task, val_size=val_size, test_size=test_size, seed=seed
    )
    if bagging_of(estimator):  # each fold member stops on its own fold: no validation split
        train, val = np.union1d(train, val), val[:0]
    elif val_size == 0:  # no validation rows asked for: the fit must not hold out its own
        estimator.set_params(validation_fraction=0.0)
    with outputs.tracker(f"train-{Path(path).stem}") as tracker:
        tracker.log_params({"data": Path(path).name, **estimator.get_params()})
        started = time.perf_counter()
        estimator.fit(
            X.iloc[train],
            y.iloc[train],
            eval_set=(X.iloc[val], y.iloc[val]) if len(val) else None,
            on_epoch=each_callback(on_epoch, tracker.on_epoch),
        )
        seconds = time.perf_counter() - started
        if not main:
            return None
        evaluation = holdout_evaluation(estimator, X.iloc[train], y.iloc[train], X, y, test)
        tracker.log_metrics({"test": evaluation["scores"].get("model", {})})
        if estimator.twins_ is not None:  # the twin member earned a weight (tabnn.nn.twins)
            choice = estimator.twin_choice_
            tracker.log_metrics({"twins": {"weight": choice["weight"],
                                           "held_out_with_twin": choice["with_twin"]}})  # fmt: skip
        result = _train_result(estimator, table, path, (train, val, test), seconds, evaluation)

        def contents():
            training = {"seconds": seconds, "val_size": val_size, "test_size": test_size}
            extra = {
                "evaluation": evaluation,
                **provenance(path, options, table, result.rows, seed, training),
            }
            splits = {"train": train, "validation": val, "test": test}
            data = builders.train_report(
                estimator, X, y, splits, evaluation, Path(path).name, with_importance=outputs.report
            )
            return estimator, extra, data

        save_and_track(result, out, outputs, tracker, contents)
    return result


def each_callback(*callbacks):
    """One callback calling each given one (None ones skipped)."""
    chosen = [c for c in callbacks if c is not None]

    def each(*args) -> None:
        for callback in chosen:
            callback(*args)

    return each


def _train_result(estimator, table, path, splits, seconds: float, evaluation) -> TrainResult:
    train, val, test = splits
    return TrainResult(
        model_dir=None,
        task=estimator.task_,
        classes=list(estimator.schema_.classes),
        rows={"train": len(train), "validation": len(val), "test": len(test)},
        dropped_columns=dict(estimator.schema_.dropped),
        dropped_targets=table.dropped_targets,
        best_epochs=list(estimator.history_.best_epoch),
        seconds=seconds,
        evaluation=evaluation,
        params=estimator.get_params(),
        test_rows=[int(r) for r in table.file_rows[test]],
        source=table.source(path),
        threshold=artifact.threshold_info(estimator),
        temperature=artifact.temperature_info(estimator),
        bagging=bagging_of(estimator),
        twins=twins_info(estimator),
    )


def provenance(path, options: ReadOptions, table, rows: dict, seed: int, more: dict) -> dict:
    """Where a saved model came from: its file, how it was read, its rows and split seed,
    and a fingerprint of the data. ``table`` is a ``TrainingTable`` or what a stream's
    first pass found (``streaming.Survey``): both have these attributes."""
    training = {
        "source": Path(path).name,
        "read_options": {**vars(options), "header": table.header},
        "header_detected": table.header_detected,
        "target_columns": table.target_columns,
        "rows": rows,
        "dropped_targets": table.dropped_targets,
        "split_seed": seed,
        **more,
    }
    return {"training": training, "data_fingerprint": table.fingerprint}


def _check_whole_table(estimator: TabNNClassifier, table: TrainingTable) -> None:
    """Run the schema's checks (target classes, usable features, column overrides, cells
    that are no finite number) on the whole table, so a hopeless table fails before any
    split or training, with the file's own row numbers and counts in the message. The
    fitted schema still comes from training rows only."""
    X, y = table.X, table.y
    schema = infer_schema(
        X,
        y,
        drop=estimator.drop or (),
        categorical=estimator.categorical or (),
        numeric=estimator.numeric or (),
        task=estimator.task,
    )
    schema.check(X.set_axis(table.file_rows))


def evaluate_workflow(
    model_dir, path, options: ReadOptions, outputs: Outputs | None = None
) -> dict:
    """Score a saved model on a labelled table (every row is an evaluation row); its
    report goes to ``MODEL_DIR/evaluations/<file name>/``."""
    outputs = outputs or Outputs()
    estimator = artifact.load(model_dir)
    training = training_info(estimator)
    saved = training.get("read_options", {})
    label_sep = options.label_sep or saved.get("label_sep")
    frame = read_table(path, sep=options.sep, header=read_header(options.header, saved))
    target = options.target or _model_target(estimator, training, label_sep, frame, path)
    X, y = split_target(frame, target, label_sep=label_sep)
    X, y, n_dropped = drop_missing_targets(X, y)
    y_true = estimator.schema_.encode_target(y)
    proba = positive_proba(estimator, X)
    scores = compute_metrics(estimator.task_, y_true, proba, threshold=estimator.threshold_)
    result = {"rows": len(X), "dropped_targets": n_dropped, "scores": {"model": scores}}
    if outputs.report:
        name = Path(path).name
        data = builders.evaluate_report(
            estimator, y_true, proba, scores, name, Path(model_dir).name
        )
        report_dir = Path(model_dir) / artifact.EVALUATIONS / name
        data.save(report_dir)
        result["report"] = write_report(data, report_dir)
    return result


def _model_target(estimator, training: dict, label_sep, frame: pd.DataFrame, path) -> str:
    """The target column(s) of the model's training file, which must be in ``frame``."""
    if label_sep is not None:  # one column of label sets, exploded into the schema's labels
        names = training.get("target_columns") or [training["read_options"]["target"]]
    else:
        names = list(estimator.schema_.target)
    absent = [name for name in names if name not in {str(c) for c in frame.columns}]
    if absent:
        raise UsageError(
            f"evaluate needs the true labels, but {Path(path).name} has no column "
            f"{', '.join(map(repr, absent))} (the model's target). Pass --target NAME if it is "
            f"named otherwise here; use tabnn predict for rows without labels."
        )
    return names[0] if len(names) == 1 else ",".join(names)


def compare_workflow(
    path,
    options: ReadOptions,
    designs: list[str],
    *,
    out: str | os.PathLike | None,
    params: dict,
    folds: int = 5,
    repeats: int = 1,
    metric: str | None = None,
    refit: str = "full",
    test_size: float = 0.15,
    nested: bool = False,
    on_design=None,
    on_epoch=None,
    outputs: Outputs | None = None,
):
    """Read a table, compare designs by k-fold CV on its training portion, refit the
    winner, evaluate it once on the test rows and save it with the CV results and its
    report. Tracked runs log each design's fold members under ``<design>/`` and the
    refit under ``refit/``."""
    from ..evaluation.compare import compare

    outputs = outputs or Outputs()
    if out is not None:
        check_model_out(out)
    table = load_training_table(path, options)
    seed = int(params.pop("random_state", 0) or 0)
    with outputs.tracker(f"compare-{Path(path).stem}") as tracker:
        tracker.log_params({"data": Path(path).name, "designs": ",".join(designs), **params})
        stage = {"prefix": ""}

        def design_started(name: str) -> None:
            stage["prefix"] = f"{name}/"
            if on_design is not None:
                on_design(name)

        result = compare(
            table.X, table.y, designs, folds=folds, repeats=repeats, metric=metric,
            refit=refit, test_size=test_size, seed=seed, nested=nested,
            on_design=design_started,
            on_epoch=each_callback(on_epoch, lambda r: tracker.on_epoch(r, prefix=stage["prefix"])),
            **params,
        )  # fmt: skip
        tracker.log_metrics(_comparison_metrics(result))
        result.source = table.source(path)

        def contents():
            more = {"test_size": test_size, "refit": refit}
            extra = {
                "evaluation": result.test,
                "comparison": result.comparison.to_dict(),
                "nested_cv": result.nested,
                **provenance(path, options, table, result.rows, seed, more),
            }
            data = builders.compare_report(result, table.X, table.y, Path(path).name)
            return result.estimator, extra, data

        save_and_track(result, out, outputs, tracker, contents)
    return result


def _comparison_metrics(result) -> dict:
    """Each name's mean CV score, and the winner's test scores, for the trackers."""
    comparison = result.comparison
    cv = {name: stats["mean"] for name, stats in comparison.summary.items()}
    return {f"cv_{comparison.metric}": cv, "test": result.test.get("scores", {}).get("model", {})}


def tune_workflow(
    path,
    options: ReadOptions,
    *,
    out: str | os.PathLike | None,
    params: dict,
    settings: dict,
    on_batch=None,
    outputs: Outputs | None = None,
):
    """Read a table, tune the default model's hyperparameters by k-fold CV on its training
    portion (:func:`tabnn.tuning.tune.tune`; ``settings`` are its keyword arguments),
    refit the best, test it once beside the default and the baselines, and save it with
    the study's summary and its report. Bad settings are refused before anything is read."""
    from ..tuning.search import import_optuna
    from ..tuning.tune import check_tune_settings, tune

    outputs = outputs or Outputs()
    seed = int(params.pop("random_state", 0) or 0)
    check_tune_settings(settings.get("trials"), settings.get("time_limit"),
                        settings.get("folds", 5), params)  # fmt: skip
    import_optuna()
    if out is not None:
        check_model_out(out)
    table = load_training_table(path, options)
    with outputs.tracker(f"tune-{Path(path).stem}") as tracker:
        tracker.log_params({"data": Path(path).name, **settings, **params})
        result = tune(table.X, table.y, seed=seed, on_batch=on_batch, **settings, **params)
        tracker.log_metrics({"test": result.test.get("scores", {}).get("model", {})})
        result.source = table.source(path)

        def contents():
            more = {"test_size": settings.get("test_size", 0.15)}
            extra = {
                "evaluation": result.test,
                "tuning": {**result.summary, "default_test": result.default_test},
                **provenance(path, options, table, result.rows, seed, more),
            }
            data = builders.tune_report(result, table.X, table.y, Path(path).name)
            return result.estimator, extra, data

        save_and_track(result, out, outputs, tracker, contents)
    return result
