"""Reading tables and choosing their target.

- ``read``: the public entry (``read_table``, ``iter_table_chunks``, ``detect_header``),
  with Parquet and ARFF; ``text`` parses delimited text; ``cells`` is what every reader
  does to cells
- ``target``: column specs, splitting the target off; ``stream``: a table as chunks
- ``splits``: which rows go where (stratified splits and folds)
- ``encoded``: encoded targets and probabilities checked against their task

The names most code needs are re-exported here.
"""

from .cells import MISSING_VALUES
from .read import PARQUET_SUFFIXES, ReadOptions, detect_header, iter_table_chunks, read_table
from .target import did_you_mean, resolve_columns, split_target

__all__ = [
    "MISSING_VALUES",
    "PARQUET_SUFFIXES",
    "ReadOptions",
    "detect_header",
    "did_you_mean",
    "iter_table_chunks",
    "read_table",
    "resolve_columns",
    "split_target",
]
