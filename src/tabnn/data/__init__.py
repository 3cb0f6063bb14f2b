"""Reading tables and choosing their target.

``read`` is the public entry (``read_table``, ``iter_table_chunks``, ``detect_header``), with
Parquet and ARFF; ``text`` parses delimited text; ``cells`` holds what every reader does to
cells; ``target`` resolves column specs and splits the target off; ``stream`` reads a table as chunks;
``splits`` decides which rows go where (stratified splits and folds); ``encoded`` checks
encoded targets and probabilities against their task. The names most code needs are
re-exported here.
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
