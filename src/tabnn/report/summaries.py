"""What the report says about its inputs: the dataset summary, rows per class, and the
permutation importance of each original column.

These helpers compute numbers for :class:`~tabnn.report.data.ReportData` (the builders in
:mod:`tabnn.report.builders` call them); they draw nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..data.splits import class_counts
from ..errors import UsageError
from ..evaluation.metrics import compute_metrics, log_loss
from ..tasks import HIGHER_IS_BETTER, TASKS

__all__ = ["counts_per_class", "dataset_summary", "permutation_importance"]

PERMUTED_ROWS = 200_000  # rows of shuffled copies predicted at once, at most ...
PREDICTED_CELLS = 4_000_000  # ... and cells (rows x columns)


def dataset_summary(schema, X: pd.DataFrame, rows: Mapping[str, int], *, source: str = "") -> dict:
    """The ``dataset`` part of :class:`~tabnn.report.data.ReportData`.

    Parameters
    ----------
    schema : Schema
        The fitted schema: columns kept by kind, columns dropped with their reasons, target.
    X : DataFrame
        The feature table as read (all splits), for its missing values.
    rows : mapping of str to int
        Rows per split, e.g. ``{"train": 140, "validation": 20, "test": 48}``.
    source : str, optional
        Where the table came from (a file name).

    Examples
    --------
    >>> from tabnn.features.schema import Schema
    >>> schema = Schema(["Age"], [], {"Name": "unique per row (ID-like)"}, "binary", ["y"], [0, 1])
    >>> X = pd.DataFrame({"Age": [1.0, None], "Name": ["a", "b"]})
    >>> dataset_summary(schema, X, {"train": 2})["missing"]
    {'Age': 1}
    """
    missing = X.isna().sum()
    return {
        "source": source,
        "rows": {str(k): int(v) for k, v in rows.items()},
        "table_rows": len(X),
        "numeric": list(schema.numeric),
        "categorical": list(schema.categorical),
        "dropped": dict(schema.dropped),
        "target": list(schema.target),
        "missing": {str(c): int(n) for c, n in missing.items() if n},
    }


def counts_per_class(y, task: str, n_classes: int) -> list[int]:
    """Rows of each class (positives of each label) as a list, absent classes counted 0.

    >>> counts_per_class([0, 2, 2], "multiclass", 3)
    [1, 0, 2]
    """
    counts = class_counts(y, task, n_classes=n_classes if task == "multiclass" else None)
    return [counts.get(k, 0) for k in range(n_classes)]


def _as_evaluated(p, task: str) -> np.ndarray:
    """Probabilities in compute_metrics' convention: P(class 1) for a binary task."""
    p = np.asarray(p, dtype=float)
    return p[:, -1] if task == "binary" and p.ndim == 2 else p  # scikit-learn's (n, 2)


def _scorer(task: str, metric: str) -> Callable:
    """(y, probabilities) -> a score where higher is better."""

    def score(y, p) -> float:
        if metric == "log_loss":
            return -log_loss(y, p, task)
        value = compute_metrics(task, y, p)[metric]
        return value if HIGHER_IS_BETTER[metric] else -value

    return score


def permutation_importance(
    predict_proba: Callable,
    X: pd.DataFrame | tuple[np.ndarray, ...],
    y_true,
    task: str,
    *,
    metric: str = "log_loss",
    n_repeats: int = 5,
    seed: int = 0,
    max_rows: int | None = None,
    columns: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
    max_cells: int = PREDICTED_CELLS,
) -> dict[str, tuple[float, float]]:
    """How much the score suffers when one original column is shuffled, column by column.

    As :func:`sklearn.inspection.permutation_importance`, on the user's columns (so
    importances carry their names, whatever the encoding does inside the model), with
    the shuffled copies of several columns scored in one prediction.

    Parameters
    ----------
    predict_proba : callable
        Table -> probabilities, e.g. ``TabNNClassifier.predict_proba`` (a binary ``(n, 2)``
        is accepted) or any function in :func:`~tabnn.evaluation.metrics.compute_metrics`'s
        convention. It is given tables of the kind ``X`` is.
    X : DataFrame or tuple of 2-D arrays
        Held-out rows with the original columns: a frame, or blocks of columns such as
        :class:`~tabnn.features.preprocess.EncodedInputs` (numeric, categorical), whose columns,
        block after block, are named by ``names``.
    y_true : array-like
        Encoded targets of those rows.
    task : {"binary", "multiclass", "multilabel"}
    metric : str, default="log_loss"
        ``"log_loss"`` (importance = increase in log loss; defined for every task and smooth,
        so small effects show) or a scalar metric of ``compute_metrics`` for the task
        (importance = its drop, or its increase for a lower-is-better metric).
    n_repeats : int, default=5
        Shuffles per column; the result holds their mean and standard deviation.
    seed : int, default=0
    max_rows : int, optional
        Score a random subset of this many rows (faster on large tables).
    columns : sequence of str, optional
        Shuffle only these columns (all by default); the others keep their values and are
        left out of the result. The cost is rows x columns of ``X`` x shuffles, so a wide
        table is best measured on a chosen few.
    names : sequence of str, optional
        The column of each array column, block after block (``"0"``, ``"1"``, ... by
        default; a frame's are its own). A name given to several array columns makes them
        one column, shuffled together (e.g. the numeric parts of one date column).
    max_cells : int, default=PREDICTED_CELLS
        Cells (rows x columns) of shuffled copies given to ``predict_proba`` at once.

    Returns
    -------
    dict of str to (float, float)
        Column -> (mean, std) of the importance, in the table's column order.

    Examples
    --------
    >>> X = pd.DataFrame({"signal": [0.1, 0.9, 0.2, 0.8], "noise": [1, 1, 2, 2]})
    >>> proba = lambda frame: frame["signal"].to_numpy()
    >>> result = permutation_importance(proba, X, [0, 1, 0, 1], "binary", n_repeats=3)
    >>> result["signal"][0] > 0, result["noise"]
    (True, (0.0, 0.0))
    """
    if task not in TASKS:
        raise UsageError(f"task must be one of {', '.join(TASKS)}; got {task!r}")
    table = _Table(X, names)
    rng = np.random.default_rng(seed)
    y = np.asarray(y_true)
    if max_rows and table.rows > max_rows:
        keep = np.sort(rng.choice(table.rows, max_rows, replace=False))
        table, y = table.subset(keep), y[keep]
    scorer = _scorer(task, metric)
    unshuffled = _as_evaluated(predict_proba(table.data), task)
    if metric != "log_loss":
        scores = compute_metrics(task, y, unshuffled)
        valid = ["log_loss", *(m for m in scores if m in HIGHER_IS_BETTER)]
        if metric not in valid:
            raise UsageError(
                f"Unknown metric {metric!r} for a {task} task; valid: {', '.join(valid)}."
            )
    reference = scorer(y, unshuffled)
    wanted = None if columns is None else {str(c) for c in columns}
    chosen = [c for c in table.names if wanted is None or c in wanted]
    # every shuffled copy of a group of columns goes through one prediction: per-call
    # overhead, not arithmetic, is what a column-by-column loop would pay
    n = table.rows
    copies_at_once = min(PERMUTED_ROWS, max(1, max_cells // max(1, table.width))) // max(1, n)
    per_group = max(1, copies_at_once // n_repeats)
    result = {}
    for start in range(0, len(chosen), per_group):
        group = chosen[start : start + per_group]
        shuffles = [(c, rng.permutation(n)) for c in group for _ in range(n_repeats)]
        proba = _as_evaluated(predict_proba(table.copies(shuffles)), task)
        drops = [reference - scorer(y, proba[i * n : (i + 1) * n]) for i in range(len(shuffles))]
        for k, column in enumerate(group):
            mine = np.array(drops[k * n_repeats : (k + 1) * n_repeats])
            result[column] = (float(mine.mean()), float(mine.std()))
    return result


class _Table:
    """A frame or blocks of 2-D arrays, as permutation importance shuffles them: its
    columns (``names``, a frame's own) and the positions each one spans (several when
    a name repeats: one original column encoded as several, shuffled together)."""

    def __init__(self, data, names: Sequence[str] | None = None) -> None:
        self.data = data
        if isinstance(data, pd.DataFrame):
            self.data = data.reset_index(drop=True)
            self.blocks, self.where = [], []
            labels = [str(c) for c in data.columns]
            self.rows, width = len(data), data.shape[1]
        else:
            self.blocks = [np.asarray(b).reshape(len(b), -1) for b in data]
            self.where = [
                (b, j) for b, block in enumerate(self.blocks) for j in range(block.shape[1])
            ]
            labels = [str(c) for c in names] if names is not None else []
            self.rows, width = (len(self.blocks[0]) if self.blocks else 0), len(self.where)
            labels = labels or [str(i) for i in range(width)]
        if len(labels) != width:
            raise UsageError(f"{len(labels)} names for {width} columns.")
        self.labels = labels
        self.spans: dict[str, list[int]] = {}
        for position, label in enumerate(labels):
            self.spans.setdefault(label, []).append(position)
        self.names = list(self.spans)

    @property
    def width(self) -> int:
        """Columns given to a prediction (positions, not names)."""
        return len(self.labels)

    def _same_kind(self, blocks: list[np.ndarray]):
        kind = type(self.data)
        return kind(*blocks) if hasattr(kind, "_fields") else kind(blocks)

    def subset(self, rows: np.ndarray) -> _Table:
        if isinstance(self.data, pd.DataFrame):
            return _Table(self.data.iloc[rows])
        return _Table(self._same_kind([b[rows] for b in self.blocks]), self.labels)

    def copies(self, shuffles: list[tuple[str, np.ndarray]]):
        """One copy per (column name, permutation), that column's rows permuted (every
        position it spans alike), stacked: one gather per column (dtypes kept) or one
        tile per block of arrays, never a copy at a time."""
        n, k = self.rows, len(shuffles)
        if not isinstance(self.data, pd.DataFrame):
            stacked = [np.tile(b, (k, 1)) for b in self.blocks]
            for i, (name, permutation) in enumerate(shuffles):
                for position in self.spans[name]:
                    b, j = self.where[position]
                    stacked[b][i * n : (i + 1) * n, j] = self.blocks[b][permutation, j]
            return self._same_kind(stacked)
        base = np.tile(np.arange(n), k)
        order: dict[int, np.ndarray] = {}
        for i, (name, permutation) in enumerate(shuffles):
            for position in self.spans[name]:
                order.setdefault(position, base.copy())[i * n : (i + 1) * n] = permutation
        data = {}
        for position in range(self.data.shape[1]):
            values, index = self.data.iloc[:, position], order.get(position, base)
            if isinstance(values.dtype, np.dtype):
                data[position] = values.to_numpy()[index]
            else:  # an extension dtype (categories, nullable numbers, pyarrow text)
                data[position] = values.array.take(index)
        frame = pd.DataFrame(data, copy=False)
        frame.columns = self.data.columns
        return frame
