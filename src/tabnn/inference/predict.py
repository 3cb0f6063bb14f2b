"""Predicting a file or a directory of files with a saved model: the prediction frame
(row, label(s), one probability per class), read and written in chunks so memory stays
bounded, written atomically: to one CSV or Parquet file, or to a directory of Parquet parts
(``parts``). Shared by ``tabnn predict``, the demo and ``tabnn.scale.spark``.

Rows are named by their 0-based position among the data rows of the file (the header line
not counted), or of a directory's files one after the other in name order: the numbering
of the ``row`` column of every prediction output. An error about a value names its file
among a directory's, and its row in that file. Parquet chunks are encoded from Arrow
without pandas (``arrow_encode``) when their columns allow it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..artifact import directory as artifact
from ..data.read import (
    ReadOptions,
    batch_frame,
    iter_table_chunks,
    naming,
    read_table,
    table_files,
)
from ..errors import DataError, UsageError
from ..features.arrow_encode import ArrowEncoder
from ..features.drift import describe, outside_training
from ..features.encoding import encoding_of
from ..features.fast_encode import checked_frame
from ..features.frames import aligned
from ..features.preprocess import EncodedInputs
from ..io import atomic_output
from .bulk import BulkPredictor, prefetched
from .parts import PartsWriter, check_parts_out, is_parts_output

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
    return proba_frame(estimator, proba, first_row, threshold)


def proba_frame(estimator, proba: np.ndarray, first_row: int, threshold: float) -> pd.DataFrame:
    """The prediction frame of probabilities from ``predict_proba`` (rows numbered from
    ``first_row``): the columns of every prediction output."""
    out = pd.DataFrame({"row": np.arange(first_row, first_row + len(proba))})
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
    precision: str = "float64",
):
    """Predict a file, or a directory of files, chunk by chunk (bounded memory).

    With ``out``, write atomically and return the row count: a ``.csv`` or ``.parquet``
    file (a temporary file renamed into place), or, when ``out`` is a directory or a name
    without a suffix, a directory of Parquet parts (see ``parts``; an existing ``out``
    must be empty or an earlier such output). Without ``out``, return the predictions as
    one frame. ``outside``: add the ``outside_training`` column (per row, the inputs
    unlike training's; see ``drift``). ``on_chunk(rows)`` is called with the running row
    count after each chunk. ``precision``: the network's arithmetic, ``"float64"`` (exactly
    ``predict_proba``) or ``"float32"`` (faster, checked; see ``bulk``)."""
    parts = out is not None and is_parts_output(Path(out))
    replace = False
    if parts:
        replace = check_parts_out(Path(out))
    elif out is not None:
        _check_prediction_out(Path(out))
    estimator = artifact.load(model_dir)
    threshold = resolve_threshold(estimator, threshold)
    saved = training_info(estimator).get("read_options", {})
    header = read_header(options.header, saved)
    encoder = ArrowEncoder(encoding_of(estimator))
    chunks = _file_chunks(
        path,
        sep=options.sep,
        header=header,
        chunksize=chunksize,
        columns=encoder.columns,
        arrow=True,
    )
    encoded = _encoded_chunks(estimator, encoder, chunks, path, outside=outside)
    with BulkPredictor(estimator, precision=precision) as bulk, prefetched(encoded) as ready:
        frames = (
            _prediction(estimator, bulk, chunk, threshold=threshold, outside=outside)
            for chunk in ready
        )
        if out is None:
            collected = list(frames)
            if not collected:
                raise DataError(f"'{path}' has no rows to predict.")
            return pd.concat(collected, ignore_index=True)
        if parts:
            about = {"model": os.path.abspath(model_dir), "data": os.path.abspath(path)}
            return _write_parts(frames, Path(out), on_chunk, replace, about)
        return _write_predictions(frames, Path(out), on_chunk)


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


def resolve_threshold(estimator, threshold: float | None) -> float:
    """The user's threshold, else the model's own (fixed or tuned at training)."""
    if threshold is None:
        return estimator.threshold_
    if estimator.task_ == "multiclass":
        raise UsageError(
            "--threshold applies to binary and multi-label models; this model is multiclass "
            "(it predicts the most probable class). Leave --threshold out."
        )
    return threshold


class _Encoded(NamedTuple):
    """A chunk ready for the network: its first row's number, its rows as a frame (None
    when the Arrow encoder read it), and the network's inputs."""

    first_row: int
    frame: pd.DataFrame | None
    inputs: EncodedInputs


def _file_chunks(path, **read) -> Iterator[tuple[Path | None, int, object]]:
    """Each chunk of the table with its file (None for a table of one file) and the number
    of its first row in that file."""
    files = table_files(path)
    for file in files:
        within = 0
        for chunk in iter_table_chunks(file, **read):
            yield (file if len(files) > 1 else None), within, chunk
            within += len(chunk)


def _encoded_chunks(estimator, encoder, chunks, source, *, outside) -> Iterator[_Encoded]:
    """Each chunk (a frame, or a record batch of Parquet) encoded: through Arrow when the
    encoder takes it, else (and for every chunk with ``outside``) through pandas, whose
    checks name a bad value's row by its number in its file, and the file among a
    directory's files."""
    first = 0
    for file, within, chunk in chunks:
        frame, inputs = None, None
        with naming(file):
            if not (outside or isinstance(chunk, pd.DataFrame)):
                inputs = encoder.encode(chunk)
            if inputs is None:
                frame = chunk if isinstance(chunk, pd.DataFrame) else batch_frame(chunk, source)
                frame = frame.set_axis(range(within, within + len(frame)), axis=0)
                inputs = estimator.encode(aligned(estimator, frame))
        yield _Encoded(first, frame, inputs)
        first += len(inputs.numeric)


def _prediction(estimator, bulk, chunk: _Encoded, *, threshold, outside) -> pd.DataFrame:
    """The prediction frame of one encoded chunk."""
    frame = proba_frame(estimator, bulk.proba(chunk.inputs), chunk.first_row, threshold)
    if outside:
        checked = checked_frame(estimator, chunk.frame)
        frame["outside_training"] = [
            describe(pairs) for pairs in outside_training(estimator.preprocessor_, *checked)
        ]
    return frame


def _check_prediction_out(out: Path) -> None:
    """Refuse an output the predictions cannot go to, before any work."""
    if out.suffix.lower() not in PREDICTION_SUFFIXES:
        raise UsageError(
            f"--out must end in .csv or .parquet, or name a directory for Parquet parts (no "
            f"suffix); got '{out.name}'."
        )


def _write_predictions(frames, out: Path, on_chunk) -> int:
    with _made_dirs_removed_on_error(out), atomic_output(out) as temp:
        return _write_chunks(frames, temp, out.suffix.lower(), on_chunk)


def _write_parts(frames, out: Path, on_chunk, replace: bool, about) -> int:
    """Write prediction frames into a directory of Parquet parts; -> the row count."""
    with _made_dirs_removed_on_error(out), PartsWriter(out, replace=replace, about=about) as parts:
        for frame in frames:
            parts.write(_arrow_table(frame))
            if on_chunk is not None:
                on_chunk(parts.rows)
        if parts.rows == 0:
            raise DataError("The input has no rows to predict.")
    return parts.rows


@contextlib.contextmanager
def _made_dirs_removed_on_error(out: Path):
    """Make the parent directories of ``out``; on any error remove those it made."""
    made = [p for p in [out.parent, *out.parent.parents] if not p.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for directory in made:  # leave no directory behind that this command made
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()
        raise


def _write_chunks(frames, temp: Path, suffix: str, on_chunk) -> int:
    """Write prediction frames one after the other into the temporary file; -> the
    number of rows."""
    writer, rows = None, 0
    try:
        for frame in frames:
            writer = _append(frame, temp, suffix, writer)
            rows += len(frame)
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
    import pyarrow.parquet as pq

    table = _arrow_table(frame)
    if writer is None:
        writer = pq.ParquetWriter(temp, table.schema)
    writer.write_table(table.cast(writer.schema))
    return writer


def _arrow_table(frame: pd.DataFrame):
    import pyarrow as pa

    return pa.Table.from_pandas(frame, preserve_index=False)
