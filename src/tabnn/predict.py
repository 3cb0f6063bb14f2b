"""Predicting a file with a saved model: the prediction frame (row, label(s), one
probability per class), read and written in chunks so memory stays bounded, written
atomically. Shared by ``tabnn predict``, the demo and the coming server.

Rows are named by their 0-based position among the data rows of the file (the header line
not counted), the numbering of the ``row`` column of every prediction output.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pandas as pd

from . import artifact
from .data.read import ReadOptions, iter_table_chunks, read_table
from .drift import describe, outside_training
from .errors import DataError, UsageError
from .fast_encode import checked_frame
from .frames import aligned
from .io import atomic_output

PREDICTION_SUFFIXES = (".csv", ".parquet", ".pq")


def read_header(header: bool | None, saved: dict) -> bool | str:
    """The header setting to read new rows with: the user's, else the one the model's
    training file was read with (resolved when it was detected), else detect it."""
    if header is not None:
        return header
    return bool(saved["header"]) if "header" in saved else "auto"


def training_info(estimator) -> dict:
    """How the model's training file was read and split (empty for a model that was
    not trained from a file)."""
    return getattr(estimator, "metadata_", {}).get("training", {})


def prediction_frame(estimator, X: pd.DataFrame, first_row: int, threshold: float) -> pd.DataFrame:
    """Row index, predicted label(s) in their original values, one probability per class."""
    proba = estimator.predict_proba(aligned(estimator, X))
    out = pd.DataFrame({"row": np.arange(first_row, first_row + len(X))})
    names = [str(c) for c in estimator.schema_.classes]
    if estimator.task_ == "multilabel":
        chosen = proba >= threshold
        out["labels"] = ["|".join(n for n, keep in zip(names, row) if keep) for row in chosen]
    elif estimator.task_ == "binary":
        out["prediction"] = estimator.classes_[(proba[:, 1] >= threshold).astype(int)]
    else:
        out["prediction"] = estimator.classes_[proba.argmax(1)]
    for j, name in enumerate(names):
        out[f"proba_{name}"] = proba[:, j]
    return out


def predict_file(
    model_dir,
    path,
    options: ReadOptions,
    *,
    out: str | os.PathLike | None,
    threshold: float | None = None,
    chunksize: int = 50_000,
    on_chunk=None,
    outside: bool = False,
):
    """Predict a file chunk by chunk (bounded memory). With ``out``, write CSV or Parquet
    atomically (a temporary file renamed into place) and return the row count; without,
    return the predictions as one frame. ``outside``: add the ``outside_training`` column
    (per row, the inputs unlike training's; see ``drift``)."""
    if out is not None:
        _check_prediction_out(Path(out))
    estimator = artifact.load(model_dir)
    threshold = _threshold(estimator, threshold)
    saved = training_info(estimator).get("read_options", {})
    header = read_header(options.header, saved)
    chunks = iter_table_chunks(path, sep=options.sep, header=header, chunksize=chunksize)
    predict_chunk = functools.partial(
        _predict_chunk, estimator, threshold=threshold, outside=outside
    )
    if out is None:
        frames, first = [], 0
        for chunk in chunks:
            frames.append(predict_chunk(chunk, first))
            first += len(chunk)
        if not frames:
            raise DataError(f"'{path}' has no rows to predict.")
        return pd.concat(frames, ignore_index=True)
    return _write_predictions(chunks, Path(out), predict_chunk, on_chunk)


def predict_rows(model_dir, path, options: ReadOptions, rows) -> pd.DataFrame:
    """Predict some data rows of a file, with their true label beside the prediction when
    the file holds the model's (single) target column."""
    estimator = artifact.load(model_dir)
    saved = training_info(estimator).get("read_options", {})
    frame = read_table(path, sep=options.sep, header=read_header(options.header, saved))
    chosen = frame.iloc[list(rows)]
    predictions = prediction_frame(estimator, chosen, 0, estimator.threshold_)
    predictions["row"] = chosen.index.to_numpy()
    target = estimator.schema_.target
    if estimator.task_ != "multilabel" and len(target) == 1 and target[0] in chosen.columns:
        predictions.insert(1, "true", chosen[target[0]].to_numpy())
    return predictions


def _threshold(estimator, threshold: float | None) -> float:
    """The user's threshold, else the model's own (fixed or tuned at training)."""
    if threshold is None:
        return estimator.threshold_
    if estimator.task_ == "multiclass":
        raise UsageError(
            "--threshold applies to binary and multi-label models; this model is multiclass "
            "(it predicts the most probable class). Leave --threshold out."
        )
    return threshold


def _predict_chunk(estimator, chunk: pd.DataFrame, first_row: int, *, threshold, outside):
    chunk = chunk.set_axis(range(first_row, first_row + len(chunk)), axis=0)
    frame = prediction_frame(estimator, chunk, first_row, threshold)
    if outside:
        flags = outside_training(estimator.preprocessor_, *checked_frame(estimator, chunk))
        frame["outside_training"] = [describe(pairs) for pairs in flags]
    return frame


def _check_prediction_out(out: Path) -> None:
    """Refuse an output the predictions cannot go to, before any work."""
    if out.is_dir():
        raise UsageError(f"--out '{out}' is a directory; give a file name such as preds.csv.")
    if out.suffix.lower() not in PREDICTION_SUFFIXES:
        raise UsageError(f"--out must end in .csv or .parquet; got '{out.name}'.")


def _write_predictions(chunks, out: Path, predict_chunk, on_chunk) -> int:
    made = [p for p in [out.parent, *out.parent.parents] if not p.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_output(out) as temp:
            return _write_chunks(chunks, temp, out.suffix.lower(), predict_chunk, on_chunk)
    except BaseException:
        for directory in made:  # leave no directory behind that this command made
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()
        raise


def _write_chunks(chunks, temp: Path, suffix: str, predict_chunk, on_chunk) -> int:
    """Predict chunk after chunk into the temporary file; -> the number of rows."""
    writer, rows = None, 0
    try:
        for chunk in chunks:
            frame = predict_chunk(chunk, rows)
            writer = _append(frame, temp, suffix, writer)
            rows += len(chunk)
            if on_chunk is not None:
                on_chunk(rows)
    finally:
        if writer is not None and suffix != ".csv":
            writer.close()
    if rows == 0:
        raise DataError("The input has no rows to predict.")
    return rows


def _append(frame: pd.DataFrame, temp: Path, suffix: str, writer):
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
