"""A request's rows -> their checked values and the network's inputs, as ``Schema.check``
then ``Preprocessor.transform`` make them, for a server that also wants the checked values
(``drift`` reads them).

A few rows handed over as Python lists (a served request's columns) skip pandas: a pandas
operation has a fixed cost of tens of microseconds, and a one-row request would pay it a few
dozen times; here a row costs a few dict lookups. Only values whose reading is unambiguous
take that path: numbers (or null; never booleans) in numeric columns, scalars in categorical
ones (read by ``label_key``, as ``Schema.check`` reads them). Text, a boolean or an infinity
in a numeric column, a list or object in any column, a date column, a missing column or
many rows make it decline (None), and the caller takes the pandas path (``checked_frame``),
which also words the errors. The columns, codes and bound on numbers are the model's
``Encoding`` (``features.encoding``), as for every encoder.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from .encoding import EncodedInputs, Encoding, encoding_of
from .frames import aligned, as_frame
from .labels import label_key
from .preprocess import encode_frame

FAST_ROWS = 256  # above this, pandas' vectorised path is the faster one


class CheckedRows(NamedTuple):
    """Rows as the model reads them: numeric float64 ``(rows, n_numeric)`` (NaN where
    missing), each categorical column's canonical texts (None where missing), and the
    network's inputs."""

    numeric: np.ndarray
    texts: list[list[str | None]]
    inputs: EncodedInputs


def checked_columns(estimator, columns: Mapping[str, Sequence]) -> CheckedRows | None:
    """Columns (name -> values, one per row) -> the checked rows, or None to decline."""
    return read_columns(encoding_of(estimator), columns)


def read_columns(encoding: Encoding, columns: Mapping[str, Sequence]) -> CheckedRows | None:
    """:func:`checked_columns` for the model ``encoding`` describes."""
    if not encoding.readable_without_pandas(columns):
        return None
    rows = {len(columns[name]) for name in encoding.columns}
    if len(rows) != 1 or not 0 < (n := rows.pop()) <= FAST_ROWS:
        return None
    numeric = np.empty((n, len(encoding.numeric)))
    for j, name in enumerate(encoding.numeric):
        values = columns[name]
        if not all(v is None or is_plain_number(v) for v in values):
            return None  # text, a boolean, a huge integer: pandas' rules read and word it
        numeric[:, j] = [math.nan if v is None else v for v in values]
    if np.isinf(numeric).any():
        return None  # refused by Schema.check, with the rows named
    if any(isinstance(v, list | dict) for name in encoding.categorical for v in columns[name]):
        return None  # a list or an object: the pandas path reads it as its JSON text
    texts = [[label_key(v) for v in columns[name]] for name in encoding.categorical]
    codes = [encoding.lookup(j, column) for j, column in enumerate(texts)]
    return CheckedRows(numeric, texts, encoding.inputs(numeric, codes))


def is_plain_number(value) -> bool:
    """A float, or an int float64 holds (a larger one would raise OverflowError); never a
    boolean, which a numeric column refuses (``labels.as_float``)."""
    if isinstance(value, float):
        return True
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) < FLOAT_LIMIT


FLOAT_LIMIT = 2**1023  # ints below it convert to float64 exactly enough and never overflow


def checked_frame(estimator, frame: pd.DataFrame) -> CheckedRows:
    """Any table -> its checked rows, through pandas (as ``TabNNClassifier.encode``: the
    same checks and errors, rows named by their position)."""
    frame = as_frame(estimator, aligned(estimator, frame, check=False), reset=False)
    checked = estimator.schema_.check(frame)
    encoding = encoding_of(estimator)
    numeric = np.array(checked[list(encoding.numeric)], dtype=np.float64).reshape(len(checked), -1)
    texts = [checked[name].tolist() for name in encoding.categorical]
    return CheckedRows(numeric, texts, encode_frame(encoding, checked))
