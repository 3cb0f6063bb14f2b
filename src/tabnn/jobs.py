"""The end-to-end jobs behind the command line: train-evaluate-save, evaluate a saved
model on new rows, predict a file. They return plain data; the CLI prints it."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import artifact, evaluate
from .data import iter_table_chunks, read_table, split_target
from .errors import DataError, UsageError
from .estimator import TabNNClassifier
from .schema import drop_missing_targets


@dataclass
class ReadOptions:
    """How to read a table and find its target."""

    sep: str | None = None
    header: bool = True
    target: str | None = None
    label_sep: str | None = None


@dataclass
class TrainResult:
    """What a training job did, as plain data (JSON-able through artifact.to_jsonable)."""

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


def encoded_for_split(y: pd.Series | pd.DataFrame) -> tuple[np.ndarray, str]:
    """A target encoded just enough to stratify on, and its task: labels are factorised,
    several 0/1 columns stay a matrix."""
    if isinstance(y, pd.DataFrame):
        return y.to_numpy(dtype=np.float32), "multilabel"
    codes, uniques = pd.factorize(y, sort=True)
    return codes, "binary" if len(uniques) == 2 else "multiclass"


def load_training_table(path, options: ReadOptions):
    """Read a table, split off its target and drop rows whose target is missing."""
    frame = read_table(path, sep=options.sep, header=options.header)
    if options.target is None:
        raise UsageError("--target is required: name the column(s) to predict.")
    X, y = split_target(frame, options.target, label_sep=options.label_sep)
    X, y, n_dropped = drop_missing_targets(X, y)
    return frame, X, y, n_dropped


def train_job(
    path,
    options: ReadOptions,
    estimator: TabNNClassifier,
    *,
    out: str | os.PathLike | None,
    val_size: float = 0.15,
    test_size: float = 0.15,
    on_epoch=None,
) -> TrainResult:
    """Split train/validation/test (stratified), fit on train with early stopping on
    validation, evaluate once on test beside the baselines, save the model directory."""
    frame, X, y, n_dropped = load_training_table(path, options)
    y_split, task = encoded_for_split(y)
    seed = int(estimator.random_state or 0)
    train, val, test = evaluate.split_indices(
        y_split, task, val_size=val_size, test_size=test_size, seed=seed
    )
    started = time.perf_counter()
    estimator.fit(
        X.iloc[train],
        _rows(y, train),
        eval_set=(X.iloc[val], _rows(y, val)) if len(val) else None,
        on_epoch=on_epoch,
    )
    seconds = time.perf_counter() - started
    evaluation = holdout_evaluation(estimator, X.iloc[train], _rows(y, train), X, y, test)
    result = TrainResult(
        model_dir=None,
        task=estimator.task_,
        classes=list(estimator.schema_.classes),
        rows={"train": len(train), "validation": len(val), "test": len(test)},
        dropped_columns=dict(estimator.schema_.dropped),
        dropped_targets=n_dropped,
        best_epochs=list(estimator.history_.best_epoch),
        seconds=seconds,
        evaluation=evaluation,
    )
    if out is not None:
        extra = {
            "evaluation": evaluation,
            "training": {
                "source": Path(path).name,
                "read_options": vars(options),
                "rows": result.rows,
                "dropped_targets": n_dropped,
                "seconds": seconds,
                "split_seed": seed,
            },
            "data_fingerprint": artifact.data_fingerprint(frame),
        }
        result.model_dir = artifact.save(estimator, out, extra_meta=extra)
    return result


def _rows(y: pd.Series | pd.DataFrame, rows: np.ndarray):
    return y.iloc[rows]


def holdout_evaluation(estimator, X_train, y_train, X, y, rows) -> dict:
    """Metrics of the model and both baselines on the same held-out rows."""
    if len(rows) == 0:
        return {"rows": 0, "scores": {}}
    X_eval, y_eval = X.iloc[rows], _rows(y, rows)
    schema = estimator.schema_
    y_true = schema.encode_target(y_eval)
    model_scores = evaluate.compute_metrics(
        estimator.task_, y_true, positive_proba(estimator, X_eval), threshold=estimator.threshold
    )
    baselines = evaluate.baseline_scores(
        estimator.task_,
        estimator.design_matrix(X_train),
        schema.encode_target(y_train),
        estimator.design_matrix(X_eval),
        y_true,
        seed=int(estimator.random_state or 0),
        threshold=estimator.threshold,
    )
    return {"rows": len(rows), "scores": {"model": model_scores, **baselines}}


def aligned(estimator, X: pd.DataFrame) -> pd.DataFrame:
    """The columns the estimator was fitted on, in fit order: missing feature columns are
    named in an error, extra columns are ignored, and columns the schema dropped may be
    absent (they are filled with missing values, never read)."""
    estimator.schema_.check(X)  # names any missing feature column
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        return X
    return X.reindex(columns=list(names))


def positive_proba(estimator, X) -> np.ndarray:
    """Probabilities in evaluate's convention: P(positive) for binary tasks."""
    proba = estimator.predict_proba(aligned(estimator, X))
    return proba[:, 1] if estimator.task_ == "binary" else proba


def evaluate_job(model_dir, path, options: ReadOptions) -> dict:
    """Score a saved model on a labelled table (every row is an evaluation row)."""
    estimator = artifact.load(model_dir)
    saved = estimator.metadata_.get("training", {}).get("read_options", {})
    options.target = options.target or ",".join(estimator.schema_.target)
    options.label_sep = options.label_sep or saved.get("label_sep")
    frame = read_table(path, sep=options.sep, header=options.header)
    X, y = split_target(frame, options.target, label_sep=options.label_sep)
    X, y, n_dropped = drop_missing_targets(X, y)
    y_true = estimator.schema_.encode_target(y)
    scores = evaluate.compute_metrics(
        estimator.task_, y_true, positive_proba(estimator, X), threshold=estimator.threshold
    )
    return {"rows": len(X), "dropped_targets": n_dropped, "scores": {"model": scores}}


def prediction_frame(estimator, X: pd.DataFrame, first_row: int, threshold: float) -> pd.DataFrame:
    """Row index, predicted label(s) in their original values, one probability per class."""
    proba = estimator.predict_proba(aligned(estimator, X))
    out = pd.DataFrame({"row": np.arange(first_row, first_row + len(X))})
    names = [str(c) for c in estimator.schema_.classes]
    if estimator.task_ == "multilabel":
        chosen = proba >= threshold
        out["labels"] = ["|".join(n for n, keep in zip(names, row) if keep) for row in chosen]
        columns = names
    elif estimator.task_ == "binary":
        out["prediction"] = estimator.classes_[(proba[:, 1] >= threshold).astype(int)]
        columns = names
    else:
        out["prediction"] = estimator.classes_[proba.argmax(1)]
        columns = names
    for j, name in enumerate(columns):
        out[f"proba_{name}"] = proba[:, j]
    return out


def predict_job(
    model_dir,
    path,
    options: ReadOptions,
    *,
    out: str | os.PathLike | None,
    threshold: float | None = None,
    chunksize: int = 50_000,
    on_chunk=None,
):
    """Predict a file chunk by chunk (bounded memory). With ``out``, write CSV or Parquet
    atomically (a temporary file renamed into place) and return the row count; without,
    return the predictions as one frame."""
    estimator = artifact.load(model_dir)
    threshold = estimator.threshold if threshold is None else threshold
    chunks = iter_table_chunks(path, sep=options.sep, header=options.header, chunksize=chunksize)
    if out is None:
        frames, first = [], 0
        for chunk in chunks:
            frames.append(_predict_chunk(estimator, chunk, first, threshold))
            first += len(chunk)
        if not frames:
            raise DataError(f"'{path}' has no rows to predict.")
        return pd.concat(frames, ignore_index=True)
    return _write_predictions(estimator, chunks, Path(out), threshold, on_chunk)


def _predict_chunk(estimator, chunk: pd.DataFrame, first_row: int, threshold: float):
    chunk = chunk.set_axis(range(first_row, first_row + len(chunk)), axis=0)
    return prediction_frame(estimator, chunk, first_row, threshold)


def _write_predictions(estimator, chunks, out: Path, threshold: float, on_chunk) -> int:
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise UsageError(f"Output must end in .csv or .parquet; got '{out.name}'.")
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(handle)
    writer, rows = None, 0
    try:
        for chunk in chunks:
            frame = _predict_chunk(estimator, chunk, rows, threshold)
            writer = _append(frame, temp, suffix, writer)
            rows += len(chunk)
            if on_chunk is not None:
                on_chunk(rows)
        if writer is not None and suffix != ".csv":
            writer.close()
        if rows == 0:
            raise DataError("The input has no rows to predict.")
        os.replace(temp, out)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    return rows


def _append(frame: pd.DataFrame, temp: str, suffix: str, writer):
    """Append one chunk to the temporary output; returns the open Parquet writer."""
    if suffix == ".csv":
        frame.to_csv(temp, mode="a" if writer else "w", header=not writer, index=False)
        return True
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if writer is None:
        writer = pq.ParquetWriter(temp, table.schema)
    writer.write_table(table.cast(writer.schema))
    return writer
