"""Tables read as a stream, for data larger than memory: a file or a directory of files
in chunks with their row numbers, which split each row falls in by a hash of its number,
and bounded uniform samples of rows.

The split of a row depends only on its number and the seed, never on the other rows, so
every pass over the table (and every process of a distributed run) agrees on it without
holding the table or an index of it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError, UsageError
from .read import PARQUET_SUFFIXES, iter_table_chunks, parquet_kinds, table_files

TRAIN, VALIDATION, TEST = 0, 1, 2
CHUNK_ROWS = 65_536


@dataclass
class Chunk:
    """Consecutive rows of the table: the number of the first one (0-based, across the
    table's files), the file they come from and the first one's number in that file."""

    frame: pd.DataFrame
    first_row: int
    file: Path | None = None
    first_in_file: int = 0

    @property
    def rows(self) -> np.ndarray:
        return np.arange(self.first_row, self.first_row + len(self.frame), dtype=np.int64)

    @property
    def file_rows(self) -> np.ndarray:
        """The rows' numbers in their file: what a message about a row names."""
        return np.arange(self.first_in_file, self.first_in_file + len(self.frame))


def iter_chunks(
    path: str | os.PathLike, *, sep=None, header=True, chunksize: int = CHUNK_ROWS
) -> Iterator[Chunk]:
    """The table's rows in order, ``chunksize`` at a time, numbered across its files. The
    files of a directory must have the same columns, and Parquet files the same kind of
    values in each column (a file that differs is named)."""
    first, layout = 0, Layout()
    for file in table_files(path):
        if file.suffix.lower() in PARQUET_SUFFIXES:
            layout.check_kinds(file, parquet_kinds(file))
        within = 0
        for frame in iter_table_chunks(file, sep=sep, header=header, chunksize=chunksize):
            layout.check_columns(file, list(frame.columns))
            yield Chunk(frame, first, file, within)
            first += len(frame)
            within += len(frame)


class Layout:
    """The columns of a table's first file, and the kind of values each column holds in
    the files read so far, which every later file must match."""

    def __init__(self) -> None:
        self.first: Path | None = None
        self.columns: list[str] | None = None
        self.kinds: dict[str, tuple[str, Path]] = {}  # column -> kind, the file it came from

    def check_columns(self, file: Path, columns: list[str]) -> None:
        if self.columns is None:
            self.first, self.columns = file, columns
        if columns == self.columns:
            return
        lacks = [c for c in self.columns if c not in columns]
        extra = [c for c in columns if c not in self.columns]
        differs = [f"lacks {_listed(lacks)}"] if lacks else []
        differs += [f"has {_listed(extra)} too"] if extra else []
        raise UsageError(
            f"'{file.name}' {'; '.join(differs) or 'has the columns in another order'}, unlike "
            f"'{self.first.name}', the table's first file: every file must have the same "
            f"columns, in the same order."
        )

    def check_kinds(self, file: Path, kinds: dict[str, str | None]) -> None:
        for name, kind in kinds.items():
            if kind is None:  # nulls only: any kind of values fits
                continue
            seen, where = self.kinds.setdefault(name, (kind, file))
            if seen != kind:
                raise DataError(
                    f"'{file.name}': column {name!r} holds {kind}, but in "
                    f"'{where.name}' it holds {seen}: every file must give a column the "
                    f"same type. Convert the column in one of them."
                )


def _listed(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"column{'s' if len(names) > 1 else ''} {shown}{more}"


def row_hash(rows: np.ndarray, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per row number: splitmix64 of (row, seed), the same on
    every machine and in every pass."""
    with np.errstate(over="ignore"):
        z = rows.astype(np.uint64) + np.uint64((seed * 0x9E3779B97F4A7C15 + 1) % 2**64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)


def split_of(rows: np.ndarray, seed: int, val_size: float, test_size: float) -> np.ndarray:
    """TRAIN, VALIDATION or TEST per row number: test rows are those whose hash is below
    ``test_size``, validation the next ``val_size``. Not stratified: at streaming sizes
    each class's share of a split is within a fraction of a percent of the table's."""
    h = row_hash(rows, seed)
    return np.where(h < test_size, TEST, np.where(h < test_size + val_size, VALIDATION, TRAIN))


class Sample:
    """A uniform sample of at most ``size`` rows of a stream (bottom-k: the rows with the
    smallest hash under a second seed), in bounded memory and the same in every pass."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed = size, seed
        self.frame: pd.DataFrame | None = None
        self.keys = np.empty(0)
        self.seen = 0

    def add(self, frame: pd.DataFrame, rows: np.ndarray) -> None:
        """Offer rows (with their row numbers) to the sample."""
        self.seen += len(frame)
        keys = row_hash(rows, self.seed + 7_777)
        if self.frame is not None:
            frame = pd.concat([self.frame, frame], ignore_index=True)
            keys = np.concatenate([self.keys, keys])
        if len(keys) > self.size:
            keep = np.sort(np.argpartition(keys, self.size - 1)[: self.size])
            frame, keys = frame.iloc[keep].reset_index(drop=True), keys[keep]
        self.frame, self.keys = frame, keys
