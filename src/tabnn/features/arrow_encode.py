"""Parquet record batches -> the network's inputs without pandas, for bulk prediction.

Turning a Parquet chunk into a pandas frame, then ``Schema.check`` and
``Preprocessor.transform``, costs more than the network: every text cell becomes a Python
object, twice. Here a pyarrow ``RecordBatch`` goes straight to the arrays ``transform``
gives. Numeric columns are cast to float64 in Arrow (null -> NaN), and each categorical
column is dictionary-encoded, so that ``label_key`` (the canonical text) and the vocabulary
lookup run once per distinct value rather than once per row. The columns, codes and bound
on numbers are the model's ``Encoding`` (``features.encoding``), as for every encoder.

Only what reads the same both ways takes this path: numeric columns of integer, floating or
null type, categorical columns of string, integer, floating,
boolean or null type (or dictionaries of them). Anything else declines (None): a model with
date columns, a missing column, text in a numeric column, an infinity, nested or temporal
values. The caller then takes the pandas path, which also words the errors, so both paths
give the same inputs and the same messages (``tests/test_arrow_encode.py`` checks the
arrays are identical).
"""

from __future__ import annotations

import numpy as np

from .encoding import EncodedInputs, Encoding
from .labels import label_key


class ArrowEncoder:
    """The encoding of one fitted model (``encoding_of(estimator)``), applied to every
    batch."""

    def __init__(self, encoding: Encoding) -> None:
        self.encoding = encoding

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns a batch must hold (the reader reads only those)."""
        return self.encoding.columns

    def encode(self, batch) -> EncodedInputs | None:
        """A ``pyarrow.RecordBatch`` (stripped column names, as ``iter_table_chunks(...,
        arrow=True)`` yields) -> the network's inputs, or None to decline."""
        encoding = self.encoding
        if not encoding.readable_without_pandas(batch.schema.names):
            return None
        numeric = np.empty((batch.num_rows, len(encoding.numeric)), dtype=np.float64)
        for j, name in enumerate(encoding.numeric):
            values = numeric_values(batch.column(name))
            if values is None:
                return None
            numeric[:, j] = values
        if np.isinf(numeric).any():
            return None  # refused by Schema.check, which names the column and rows
        codes = []
        for j, name in enumerate(encoding.categorical):
            column = category_codes(batch.column(name), encoding, j)
            if column is None:
                return None
            codes.append(column)
        return encoding.inputs(numeric, codes)


def numeric_values(column) -> np.ndarray | None:
    """A numeric feature as float64 with NaN for nulls, as ``Schema.check`` reads the
    pandas column it becomes; None for a type that needs pandas' rules (text, dates)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    # booleans are refused in a numeric column: pandas' path words that
    number = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind)
    if not number:
        return None
    # unsafe: int64 -> float64 rounds beyond 2**53, as pandas' astype does
    return pc.cast(column, pa.float64(), safe=False).to_numpy(zero_copy_only=False)


def category_codes(column, encoding: Encoding, j: int) -> np.ndarray | None:
    """Categorical feature j's codes (unseen or missing: the unknown code), computing each
    distinct value's canonical text once; None for a type pandas may read differently."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(column.type):
        encoded = column
    elif _plain_category(column.type):
        encoded = pc.dictionary_encode(column)
    else:
        return None
    dictionary = encoded.dictionary
    if not _plain_category(dictionary.type):
        return None
    if pa.types.is_integer(dictionary.type) and column.null_count:
        # pandas holds integers with missing values as float64: 2**53 + 1 reads 2**53
        dictionary = pc.cast(dictionary, pa.float64(), safe=False)
    keys = [label_key(value) for value in dictionary.to_pylist()]
    table = np.array([*encoding.lookup(j, keys), encoding.UNKNOWN], dtype=np.int64)
    indices = encoded.indices.fill_null(len(keys)).to_numpy(zero_copy_only=False)
    return table[indices]


def _plain_category(kind) -> bool:
    import pyarrow as pa

    return (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_null(kind)
    )
