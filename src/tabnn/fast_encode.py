"""A few rows handed over as Python lists (a served request's columns) encoded without
pandas: the arrays that ``Schema.check`` then ``Preprocessor.transform`` give for the same
rows, at a fraction of the cost. A pandas operation has a fixed cost of tens of
microseconds, and a one-row request pays it a few dozen times; here a row costs a few dict
lookups.

Only values whose reading is unambiguous take this path: numbers (or null) in numeric
columns, anything in categorical ones (read by ``label_key``, as ``Schema.check`` reads
them). Text in a numeric column, an infinity, a date column, a missing column or many rows
make it decline (None), and the caller takes the pandas path, which also words the errors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from .labels import label_key
from .preprocess import EncodedInputs

FAST_ROWS = 256  # above this, pandas' vectorised path is the faster one


def encode_columns(estimator, columns: Mapping[str, Sequence]) -> EncodedInputs | None:
    """Columns (name -> values, one per row) -> the network's inputs, or None to decline."""
    schema, prep = estimator.schema_, estimator.preprocessor_
    if schema.dates or not all(name in columns for name in schema.features):
        return None
    rows = {len(columns[name]) for name in schema.features}
    if len(rows) != 1 or not 0 < (n := rows.pop()) <= FAST_ROWS:
        return None
    numeric = np.empty((n, len(prep.numeric)))
    for j, name in enumerate(prep.numeric):
        values = columns[name]
        if not all(v is None or isinstance(v, int | float) for v in values):
            return None  # text: pandas' rules read it and word its errors
        numeric[:, j] = [math.nan if v is None else v for v in values]
    if np.isinf(numeric).any():
        return None  # refused by Schema.check, with the rows named
    texts = [[label_key(v) for v in columns[name]] for name in prep.categorical]
    return prep.encode_checked(numeric, texts)
