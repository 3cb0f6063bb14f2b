"""Everything after ``load``: probabilities, bulk and chunked prediction, Parquet parts.

- ``probabilities``: the float64 copy predictions run on, per-member probabilities
- ``predict``: prediction frames and chunked, atomic writers
- ``bulk``: probabilities of many rows on every core
- ``parts``: a directory of Parquet parts, put in place whole
"""
