"""What the model knows of its columns: the frozen schema and what it reads, the fitted
statistics, and the encoders that turn rows into the network's inputs.

- ``frames``: X and y as the estimator reads them (any 2-D input a named DataFrame)
- ``schema``: feature kinds, dropped columns, task, classes; ``check`` at predict time
- ``column_kinds``: the rules that make a column numeric, categorical, a date or dropped
- ``table_profile``: per-column facts gathered chunk by chunk (``--stream`` decides from all)
- ``labels``: a target's classes and task, canonical label keys, numeric cells
- ``dates``: ISO 8601 date columns and their numeric parts
- ``preprocess``: fitted statistics and vocabularies as plain data; the pandas encoder
- ``encoding``: one description of the encoding (columns, codes, bounds, indicators,
  statistics) that every encoder reads, pandas, Arrow, request rows and ONNX; ``EncodedInputs``
- ``sketches``: streamed statistics (quantiles, vocabularies) for ``--stream``
- ``drift``: which inputs of a row lie outside what training saw
- ``fast_encode``: a few rows (a served request) checked and encoded without pandas
- ``arrow_encode``: Parquet record batches encoded without pandas
"""
