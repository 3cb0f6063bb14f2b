"""Everything after ``load``: bulk and chunked prediction, Parquet parts. The forward passes
themselves are :mod:`tabnn.nn.forward`; nothing here imports the training engine.

- ``predict``: prediction frames and chunked, atomic writers
- ``bulk``: probabilities of many rows on every core
- ``parts``: a directory of Parquet parts, put in place whole
"""
