"""The commands as typed functions with typed results, and where their runs are tracked.

- ``runs``: train, evaluate, compare, tune and stream, and their one tail (save, report,
  tracking)
- ``tracking``: TensorBoard and MLflow
"""
