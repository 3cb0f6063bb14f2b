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

import numpy as np
import pandas as pd

from ..errors import UsageError
from .read import iter_table_chunks, table_files

TRAIN, VALIDATION, TEST = 0, 1, 2
CHUNK_ROWS = 65_536


@dataclass
class Chunk:
    """Consecutive rows of the table and the number of the first one (0-based)."""

    frame: pd.DataFrame
    first_row: int

    @property
    def rows(self) -> np.ndarray:
        return np.arange(self.first_row, self.first_row + len(self.frame), dtype=np.int64)


def iter_chunks(
    path: str | os.PathLike, *, sep=None, header=True, chunksize: int = CHUNK_ROWS
) -> Iterator[Chunk]:
    """The table's rows in order, ``chunksize`` at a time, numbered across its files. The
    files of a directory must have the same columns."""
    first, columns = 0, None
    for file in table_files(path):
        for frame in iter_table_chunks(file, sep=sep, header=header, chunksize=chunksize):
            if columns is None:
                columns = list(frame.columns)
            elif list(frame.columns) != columns:
                raise UsageError(
                    f"'{file.name}' has columns {list(frame.columns)[:8]}, but the table's "
                    f"first file has {columns[:8]}: every file must have the same columns."
                )
            yield Chunk(frame, first)
            first += len(frame)


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
