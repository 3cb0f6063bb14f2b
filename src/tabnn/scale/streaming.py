"""Training on a table larger than memory (``tabnn train --stream``).

A first pass over the table (a file, or a directory of Parquet or CSV files) decides the
schema from every row (``table_profile``), counts every row and label, and gathers the
preprocessing statistics (``sketches``; in a second pass when the first chunk suggested
other features than the whole table has), with bounded uniform samples of the training,
validation and test rows. The split is a hash of each row's number (``data.stream``), so
every pass sees the same rows in the same split. Each epoch then streams the training rows
again: chunks are encoded as they are read, gathered into blocks of ``buffer_rows`` rows,
and the engine trains on each block with its rows shuffled (``engine.config.StreamData``).
Early stopping watches the validation sample; the model is evaluated, beside the baselines
(fitted on the training sample), once on the test sample. Peak memory is bounded by the
block size and the samples, not by the table.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..artifact.directory import Fingerprint
from ..data import PARQUET_SUFFIXES, detect_header, split_target
from ..data.read import naming
from ..data.stream import (
    CHUNK_ROWS,
    TEST,
    TRAIN,
    VALIDATION,
    Sample,
    iter_chunks,
    split_of,
    table_files,
)
from ..data.target import explode_labels, label_set_column
from ..errors import DataError, UsageError
from ..estimator import params
from ..features.sketches import StreamStatistics
from ..features.table_profile import COLUMN_OPTIONS, TableProfile

SAMPLE_CAPS = {TRAIN: 20_000, VALIDATION: 50_000, TEST: 100_000}
BASE_BYTES = 600 << 20  # the interpreter with torch, pandas and pyarrow, and the samples
RESERVE_BYTES = 250 << 20  # evaluating the test sample and writing the report
MIN_BUFFER_ROWS = 4_096


def memory_bytes(text: str) -> int:
    """``1.5G``, ``800M``, ``2GiB`` or a number of bytes -> bytes."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)(i?[bB])?\s*", str(text))
    if not match:
        raise UsageError(f"--memory must be a size such as 1.5G or 800M; got {text!r}.")
    power = " KMGT".index(match.group(2).upper() or " ")
    size = int(float(match.group(1)) * 1024**power)
    if size < BASE_BYTES + (64 << 20):
        raise UsageError(
            f"--memory {text} is too small: training needs about {BASE_BYTES >> 20} MiB for "
            f"Python, PyTorch and pandas, plus room for its blocks; give at least 700M."
        )
    return size


def should_stream(path, memory: int | None) -> bool:
    """Stream a directory, and a file that, as pandas would hold it, would not fit in half
    the memory budget (or, without one, half the memory available now). Parquet's own count of its
    uncompressed bytes stands for its size in memory; text takes about twice its size."""
    if Path(path).is_dir():
        return True  # the in-memory reader takes one file
    if not Path(path).is_file():
        return False  # reading it will say what is wrong
    budget = memory or available_memory()
    size = 0
    for file in table_files(path):
        if file.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            try:
                meta = pq.ParquetFile(file).metadata
            except (OSError, ValueError):  # not Parquet after all: reading it will say so
                return False
            size += sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        else:
            size += 2 * file.stat().st_size
    return size > budget / 2


def available_memory() -> int:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):  # not on Linux: assume a modest machine
        return 4 << 30


@dataclass
class Survey:
    """What the first pass learned: the schema, the statistics, the rows of each split
    and samples of them (features and targets as read)."""

    schema: object
    statistics: StreamStatistics
    counts: dict[int, int]
    samples: dict[int, Sample]
    header: bool
    columns: list[str]
    dropped_targets: int
    target_columns: list  # y's columns as the samples hold them
    label_sep: str | None = None  # the samples' targets are label sets, split on this
    labels: list | None = None  # ... into these labels, the whole table's
    header_detected: bool = False  # the header was detected, not as the user said
    text: bool = True  # the (first) file is delimited text
    # artifact.data_fingerprint of the rows as read, chunk by chunk (see Fingerprint):
    # that of the table in memory when each chunk types its columns as the whole does
    fingerprint: dict = field(default_factory=dict)

    def source(self, path) -> dict:
        """What was read, as ``TrainingTable.source`` says it of a table in memory."""
        return {
            "file": Path(path).name,
            "rows": self.fingerprint["rows"],
            "columns": len(self.fingerprint["columns"]),
            "text": self.text,
            "header": self.header,
            "header_detected": self.header_detected,
        }


class StreamChunk(NamedTuple):
    """A chunk's features and targets (indexed by their rows' numbers in their file, which
    messages name), its rows' numbers in the table, and its file (None for a table of one
    file, whose name the user gave)."""

    X: pd.DataFrame
    y: pd.Series | pd.DataFrame
    rows: np.ndarray
    file: Path | None


class TableStream:
    """The table's chunks with their targets split off, rows without a target dropped.
    With ``--label-sep`` the target stays its column of label sets until the first pass
    has found the table's labels (``labels``); then it becomes their 0/1 columns."""

    def __init__(self, path, options, header: bool) -> None:
        self.path, self.options, self.header = path, options, header
        self.labels: list[str] | None = None
        self.several = len(table_files(path)) > 1

    def __iter__(self) -> Iterator[StreamChunk]:
        return self.read()

    def read(self, fingerprint: Fingerprint | None = None) -> Iterator[StreamChunk]:
        """-> each chunk (``dropped`` counts the rows without a target so far); the rows
        as read, those without a target too, go to ``fingerprint`` (the first pass's)."""
        self.dropped = 0
        for chunk in iter_chunks(self.path, sep=self.options.sep, header=self.header):
            if fingerprint is not None:
                fingerprint.add(chunk.frame)
            file = chunk.file if self.several else None
            with naming(file):
                X, y = self._split(chunk.frame)
            keep = self._labelled(y)
            self.dropped += int((~keep).sum())
            if not keep.all():
                X, y = X[keep], y[keep]
            X.index = y.index = chunk.file_rows[keep]  # a bad value's message names its row
            yield StreamChunk(X, y, chunk.rows[keep], file)

    def _split(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series | pd.DataFrame]:
        X, y = split_target(frame, self.options.target)
        sep = self.options.label_sep
        if sep is None:
            return X, y
        names = [str(c) for c in y.columns] if y.ndim == 2 else [str(y.name)]
        sets = y if y.ndim == 1 else y[label_set_column(names)]
        return X, sets if self.labels is None else explode_labels(sets, sep, self.labels)

    def _labelled(self, y) -> np.ndarray:
        """Whether each row has a target (an empty label set is one: no labels)."""
        if self.options.label_sep is not None:
            return np.ones(len(y), dtype=bool)
        missing = y.isna()
        missing = missing.any(axis=1) if isinstance(missing, pd.DataFrame) else missing
        return ~missing.to_numpy()


def survey(stream: TableStream, estimator, seed: int, val_size: float, test_size: float):
    """The first pass (see the module's docstring) -> ``Survey``. The schema is decided from
    every row (``table_profile``), never from the first chunk alone."""
    split = lambda rows: split_of(rows, seed, val_size, test_size)  # noqa: E731
    params.validate_params(estimator)
    options = {key: getattr(estimator, key) for key in COLUMN_OPTIONS}
    profile = TableProfile(options, estimator.task, stream.options.label_sep)
    counts = dict.fromkeys((TRAIN, VALIDATION, TEST), 0)
    samples = {part: Sample(cap, seed + part) for part, cap in SAMPLE_CAPS.items()}
    guess, columns, targets = None, [], []
    fingerprint = Fingerprint()
    for X, y, rows, file in stream.read(fingerprint):
        if len(X) == 0:
            continue
        with naming(file):
            profile.add(X, y)
            if guess is None:
                guess = Guess(profile.feature_schema())
                columns, targets = list(X.columns), profile.target_names
            part = split(rows)
            for p in counts:
                chosen = part == p
                counts[p] += int(chosen.sum())
                both = pd.concat([X[chosen], y[chosen]], axis=1, ignore_index=False)
                samples[p].add(both.reset_index(drop=True), rows[chosen])
            guess.add(X[part == TRAIN], rows[part == TRAIN])
    if guess is None or counts[TRAIN] == 0:
        raise DataError(f"'{stream.path}' has no training rows with a target.")
    schema = profile.schema()
    if stream.options.label_sep is not None:
        stream.labels = list(schema.classes)  # every later pass: 0/1 columns of these
    if guess.holds_for(schema):
        statistics = guess.statistics
    else:
        statistics = gather_statistics(stream, schema, split)
    first = table_files(stream.path)[0]
    return Survey(
        schema, statistics, counts, samples, stream.header, columns, stream.dropped, targets,
        stream.options.label_sep, stream.labels, header_detected=stream.options.header is None,
        text=first.suffix.lower() not in (*PARQUET_SUFFIXES, ".arff"),
        fingerprint=fingerprint.result(),
    )  # fmt: skip


class Guess:
    """Statistics gathered in the first pass for the features its first chunk suggests.
    They stand when every row decides the same features (the common case: one pass);
    otherwise a second pass gathers the statistics of the features decided."""

    def __init__(self, schema) -> None:
        self.schema = schema
        self.statistics = (
            None if schema is None else StreamStatistics(schema.numeric, schema.categorical)
        )

    def add(self, X: pd.DataFrame, rows: np.ndarray) -> None:
        if self.statistics is None:
            return
        try:
            self.statistics.add(self.schema.check(X), rows)
        except DataError:  # a value these features cannot hold: not the table's features
            self.statistics = None

    def holds_for(self, schema) -> bool:
        return self.statistics is not None and _features(self.schema) == _features(schema)


def _features(schema) -> tuple:
    return schema.numeric, schema.categorical, schema.dates


def gather_statistics(stream: TableStream, schema, split) -> StreamStatistics:
    """A pass over the training rows for the statistics of the schema's features."""
    statistics = StreamStatistics(schema.numeric, schema.categorical)
    for X, _, rows, file in stream:
        train = split(rows) == TRAIN
        with naming(file):
            statistics.add(schema.check(X[train]), rows[train])
    return statistics


def split_sample(survey: Survey, part: int) -> tuple[pd.DataFrame, pd.Series | pd.DataFrame]:
    """A split's sample as features and targets."""
    frame = survey.samples[part].frame
    targets = survey.target_columns
    if frame is None:
        frame = pd.DataFrame(columns=survey.columns + targets)
    if survey.labels is not None:
        return frame[survey.columns], explode_labels(
            frame[targets[0]], survey.label_sep, survey.labels
        )
    y = frame[targets] if survey.schema.task == "multilabel" else frame[targets[0]]
    return frame[survey.columns], y


class TrainingBlocks:
    """Each epoch's pass over the training rows: encoded chunk by chunk, in blocks of
    ``rows`` (a multiple of the batch) as tensors on ``device``.

    Across processes (``world``) each rank keeps its own rows (row number mod ranks) and
    every rank cuts its blocks at the same chunks, so that all take a block's steps
    together, whatever their share of it."""

    def __init__(self, stream, schema, prep, split, rows: int, device, world) -> None:
        self.stream, self.schema, self.prep, self.split = stream, schema, prep, split
        self.rows, self.device, self.world = rows, device, world

    def __call__(self, epoch: int) -> Iterator:
        from ..engine.config import TensorData

        parts, held, chunks = [], 0, 0
        per_block = max(1, self.rows // CHUNK_ROWS)  # across processes: chunks per block
        across = self.world.size > 1
        for X, y, rows, file in self.stream:
            chunks += 1
            train = (self.split(rows) == TRAIN) & self.world.owns(rows)
            X, y = X[train], y[train]
            with naming(file):
                x_num, x_cat = self.prep.transform(self.schema.check(X))  # no rows: shapes
                parts.append((x_num, x_cat, self.schema.encode_target(y)))
            held += len(x_num)
            if across and chunks % per_block == 0:
                block, parts, held = _take(parts, held)
                yield TensorData.from_arrays(*block, self.device)
            while not across and held >= self.rows:
                block, parts, held = _take(parts, self.rows)
                yield TensorData.from_arrays(*block, self.device)
        if held or (across and chunks % per_block and parts):
            block, _, _ = _take(parts, held)
            yield TensorData.from_arrays(*block, self.device)


def _take(parts: list, rows: int):
    """The first ``rows`` rows of a list of (x_num, x_cat, y) parts -> them, the rest."""
    joined = [np.concatenate(arrays) for arrays in zip(*parts)]
    block = [a[:rows] for a in joined]
    rest = [a[rows:] for a in joined]
    return block, ([tuple(rest)] if len(rest[0]) else []), len(rest[0])


def buffer_rows(memory: int, prep, batch: int) -> int:
    """Rows per block for a memory budget: three quarters of what the budget leaves beside
    this process's memory now (the interpreter, the samples) and a reserve for evaluating,
    over a row's bytes in every copy a block has at once (the encoded chunks, the block's
    tensors, its encoded inputs and the epoch's batches)."""
    row = 4 * len(prep.numeric) + 8 * len(prep.categorical) + 8
    encoded = 4 * (len(prep.numeric) + sum(prep.indicators) + 16 * len(prep.categorical))
    per_row = 3 * row + encoded + 32
    rows = (memory - resident_bytes() - RESERVE_BYTES) // per_row // 4 * 3  # a margin
    return max(MIN_BUFFER_ROWS, rows // batch * batch)


def resident_bytes() -> int:
    """This process's resident memory now (Linux; elsewhere its peak so far)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def fit_streaming(estimator, stream: TableStream, found: Survey, seed, sizes, memory, on_epoch):
    """Train the estimator on the stream through the estimator's one recipe
    (``fit_prepared``) -> the fitted estimator and the rows per block."""
    training, rows = streamed_training(estimator, stream, found, (seed, *sizes), memory)
    return estimator.fit_prepared(training, on_epoch), rows


def streamed_training(estimator, stream: TableStream, found: Survey, split_by, memory: int):
    """The recipe's source for a stream (``estimator.recipe.TrainingData``): the training
    rows as blocks of the table read again each epoch, the validation sample in memory
    (early stopping, the temperature, the threshold) -> it and the rows per block."""
    import torch

    from ..engine.config import Member, StreamData, TensorData, device_of
    from ..engine.distributed import World
    from ..estimator.recipe import HeldOut, TrainingData

    schema, n = found.schema, estimator.n_members
    prep = found.statistics.preprocessor(
        params.recipe(estimator).scaling, estimator.missing_indicator
    )
    device = device_of(estimator.device)
    world = World.current()  # under torchrun: every rank surveyed alike, each trains its rows
    X_val, y_val = split_sample(found, VALIDATION)
    every = (np.arange(0), np.arange(len(y_val)))  # each member's (train, val) rows
    x_num, x_cat = prep.transform(schema.check(X_val))
    held_out = HeldOut(x_num, x_cat, schema.encode_target(y_val), [every] * n)
    own = world.own_rows(len(y_val))
    validation = TensorData.from_arrays(x_num[own], x_cat[own], held_out.y[own], device)
    batch = params.train_config(estimator, found.counts[TRAIN]).batch_size
    rows = buffer_rows(memory, prep, batch)
    rows = int(world.broadcast_(torch.tensor([rows], device=device)).item())  # rank 0's
    split = lambda numbers: split_of(numbers, *split_by)  # noqa: E731
    blocks = TrainingBlocks(stream, schema, prep, split, rows, device, world)
    seed = params.seed_of(estimator)
    _, y_train = split_sample(found, TRAIN)
    return TrainingData(
        schema, prep, [prep] * n,
        data=StreamData(validation, found.counts[TRAIN], blocks),
        members=[Member(*every, seed + k) for k in range(n)],
        n_train=found.counts[TRAIN], resident_rows=0,
        weight_labels=schema.encode_target(y_train), held_out=held_out, world=world,
        feature_names=list(found.columns),
    ), rows  # fmt: skip


def check_stream_options(options, estimator) -> None:
    """Refuse what training on a stream cannot do, before anything is read."""
    if options.target is None:
        raise UsageError("--target is required: name the column(s) to predict.")
    preset = f" (--preset {estimator.preset})" if estimator.preset != "fast" else ""
    if params.recipe(estimator).numeric_embedding == "ple":
        raise UsageError(
            f"numeric_embedding='ple'{preset} cuts each numeric column at the quantiles of the "
            "training rows in memory; --stream does not hold them. "
            + (
                "Use --preset fast (the default) with --stream."
                if preset
                else "Use 'periodic' or 'none'."
            )
        )
    if bagging := params.bagging_of(estimator):
        raise UsageError(
            f"--bagging {bagging}{preset} trains each member on its own folds of a table in "
            "memory; --stream trains on one pass of blocks. Leave out one of them."
        )


def has_header(path, options) -> bool:
    """Whether the first line holds column names: as the user said, else as detected in
    the table's first file."""
    if options.header is not None:
        return options.header
    return detect_header(table_files(path)[0], sep=options.sep)


class SampledRows:
    """The samples of the training, validation and test rows as one table (``X``, ``y``),
    with each split's positions in it (``splits``): what the model is evaluated on, beside
    baselines fitted on the training sample, and what its report draws."""

    def __init__(self, found: Survey) -> None:
        samples = [split_sample(found, part) for part in (TRAIN, VALIDATION, TEST)]
        self.X = pd.concat([X for X, _ in samples], ignore_index=True)
        self.y = pd.concat([y for _, y in samples], ignore_index=True)
        ends = np.cumsum([0] + [len(X) for X, _ in samples])
        names = ("train", "validation", "test")
        self.splits = {name: np.arange(ends[i], ends[i + 1]) for i, name in enumerate(names)}

    def evaluation(self, estimator, sampled_from: int) -> dict:
        from ..evaluation.holdout import holdout_evaluation

        X, y, train = self.X, self.y, self.splits["train"]
        evaluation = holdout_evaluation(
            estimator, X.iloc[train], y.iloc[train], X, y, self.splits["test"]
        )
        evaluation["sampled_from"] = sampled_from  # test rows in the table
        return evaluation

    def report(self, estimator, evaluation: dict, path, outputs):
        from ..report import builders

        return builders.train_report(
            estimator, self.X, self.y, self.splits, evaluation, Path(path).name,
            with_importance=outputs.report,
        )  # fmt: skip
