"""The commands as typed functions with typed results, and where their runs are tracked.

- ``runs``: train, evaluate, compare and tune, and their one tail (save, report, tracking)
- ``stream``: train on a table larger than memory (``--stream``), through the same tail
- ``tracking``: TensorBoard and MLflow
"""
