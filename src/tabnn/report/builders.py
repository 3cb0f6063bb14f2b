"""What each command's report shows: a :class:`~tabnn.report.data.ReportData` built from
the results of ``train``, ``evaluate`` and ``compare``, and the permutation importance a
fitted estimator's report carries.

The report's data (``report.json`` and the predictions in ``report_arrays.safetensors``)
is stored in the model directory beside the weights; ``report.html`` is only a rendering
of it, written afterwards, so ``tabnn report MODEL_DIR`` can draw it again at any time.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd

from ..evaluation.holdout import positive_proba
from ..evaluation.threshold import describe_threshold
from .data import ReportData
from .summaries import counts_per_class, dataset_summary, permutation_importance

# permutation importance: 3 shuffles per column, on at most 2,000 validation rows, fewer
# on wide tables (every shuffled copy is a whole table: rows x columns^2 x repeats cells)
IMPORTANCE_ROWS = 2000
IMPORTANCE_REPEATS = 3
IMPORTANCE_CELLS = 200_000_000


def train_report(
    estimator, X: pd.DataFrame, y, splits: dict[str, np.ndarray], evaluation: dict, source: str
) -> ReportData:
    """The report of ``tabnn train``: data, training curves, validation and test rows
    (scores beside the baselines), class balance and permutation importance on the
    validation rows."""
    held_out = {s: splits[s] for s in ("validation", "test") if len(splits.get(s, []))}
    validation = splits.get("validation", [])
    return ReportData(
        **_common(estimator, "train", f"{source} \u2192 {_target_name(estimator)}"),
        dataset=dataset_summary(
            estimator.schema_, X, {k: len(v) for k, v in splits.items()}, source=source
        ),
        metrics=evaluation.get("scores", {}),
        predictions={s: _predictions(estimator, X.iloc[r], y.iloc[r]) for s, r in held_out.items()},
        class_counts={s: _counts(estimator, y.iloc[r]) for s, r in splits.items() if len(r)},
        importance=importance(estimator, X.iloc[validation], y.iloc[validation])
        if len(validation)
        else {},
    )


def evaluate_report(
    estimator, y_true: np.ndarray, proba: np.ndarray, scores: dict, source: str, model: str
) -> ReportData:
    """The report of ``tabnn evaluate``: the model's scores and plots on a labelled file
    (its encoded targets and the probabilities the scores came from), beside its training
    curves."""
    rows = len(y_true)
    return ReportData(
        **_common(estimator, "evaluate", f"{model} on {source}"),
        dataset={"source": source, "rows": {source: rows}, "table_rows": rows},
        metrics={"model": scores},
        metrics_split=source,
        predictions={source: (y_true, proba)},
    )


def compare_report(result, X: pd.DataFrame, y, source: str) -> ReportData:
    """The report of ``tabnn compare``: every fold's score of every design and baseline,
    and the winner's curves and single test evaluation."""
    estimator, comparison = result.estimator, result.comparison
    test = np.asarray(result.test_rows, dtype=int)
    train = np.setdiff1d(np.arange(len(X)), test)
    title = f"{source} \u2192 {_target_name(estimator)}: {' > '.join(comparison.ranking)}"
    return ReportData(
        **_common(estimator, "compare", title),
        dataset=dataset_summary(
            estimator.schema_, X, {"train": len(train), "test": len(test)}, source=source
        ),
        metrics=result.test.get("scores", {}),
        predictions={"test": _predictions(estimator, X.iloc[test], y.iloc[test])}
        if len(test)
        else {},
        class_counts={"train": _counts(estimator, y.iloc[train])},
        fold_scores={name: comparison.values(name) for name in comparison.scores},
        fold_metric=comparison.metric,
    )


def importance(estimator, X: pd.DataFrame, y) -> dict[str, tuple[float, float]]:
    """Permutation importance of the columns the model uses, on held-out rows."""
    features = list(estimator.schema_.features)
    if not features or len(X) == 0:
        return {}
    per_row = len(features) ** 2 * IMPORTANCE_REPEATS
    rows = max(100, min(IMPORTANCE_ROWS, IMPORTANCE_CELLS // per_row))
    return permutation_importance(
        lambda frame: positive_proba(estimator, frame),
        X[features],
        estimator.schema_.encode_target(y),
        estimator.task_,
        n_repeats=IMPORTANCE_REPEATS,
        seed=int(estimator.random_state or 0),
        max_rows=rows,
    )


def _common(estimator, command: str, title: str) -> dict:
    """What every report has: title, task, class names, the training curves and the
    decision threshold (binary and multi-label)."""
    history = getattr(estimator, "history_", None)
    fields = {
        "title": title,
        "command": command,
        "task": estimator.task_,
        "class_names": [str(c) for c in estimator.schema_.classes],
        "history": list(history.epochs) if history is not None else [],
        "best_epoch": list(history.best_epoch) if history is not None else [],
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if estimator.task_ != "multiclass":
        fields["threshold"] = estimator.threshold_
        fields["threshold_method"] = _threshold_method(estimator)
    return fields


def _threshold_method(estimator) -> str:
    tuning = getattr(estimator, "threshold_tuning_", None)
    if tuning:
        return f"chosen on {tuning['rows']} validation rows, {describe_threshold(tuning)}"
    return "default" if estimator.threshold_ == 0.5 else "set by the user"


def _target_name(estimator) -> str:
    return ", ".join(str(t) for t in estimator.schema_.target)


def _predictions(estimator, X: pd.DataFrame, y) -> tuple[np.ndarray, np.ndarray]:
    return estimator.schema_.encode_target(y), positive_proba(estimator, X)


def _counts(estimator, y) -> list[int]:
    classes = len(estimator.schema_.classes)
    return counts_per_class(estimator.schema_.encode_target(y), estimator.task_, classes)
