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

from ..estimator.params import bagging_of
from ..estimator.threshold import describe_threshold
from ..estimator.twin_choice import twins_info
from ..evaluation.holdout import positive_proba
from ..features.frames import aligned
from ..nn.config import encoded_width
from ..nn.size import multiply_adds_per_row
from .contributions import input_contributions
from .data import ReportData
from .summaries import (
    PREDICTED_CELLS,
    counts_per_class,
    dataset_summary,
    permutation_importance,
)

# permutation importance: 3 shuffles per column, on at most 2,000 validation rows. Every
# shuffled copy is a whole table, so the work is rows x columns x shuffles predictions, each
# costing about the network's parameters in multiply-adds: quadratic in the columns. Past
# IMPORTANCE_WORK multiply-adds (about a second on a laptop) the rows go down to
# IMPORTANCE_MIN_ROWS, then only the columns that move the first layer most are measured
# (at least IMPORTANCE_MIN_COLUMNS, the plot's top 20, with fewer rows when need be).
IMPORTANCE_ROWS = 2000
IMPORTANCE_MIN_ROWS = 200
IMPORTANCE_MIN_COLUMNS = 20
IMPORTANCE_REPEATS = 3
IMPORTANCE_WORK = 10_000_000_000


def train_report(
    estimator,
    X: pd.DataFrame,
    y,
    splits: dict[str, np.ndarray],
    evaluation: dict,
    source: str,
    *,
    with_importance: bool = True,
) -> ReportData:
    """The report of ``tabnn train``: data, training curves, validation and test rows
    (scores beside the baselines), class balance and permutation importance on the
    validation rows (left out when ``with_importance`` is False: no page will show it,
    e.g. ``--no-report``; the report data then says so) and, for a calibrated model,
    temperature scaling's effect on the test rows (:func:`calibration_summary`)."""
    held_out = {s: splits[s] for s in ("validation", "test") if len(splits.get(s, []))}
    validation = splits.get("validation", [])
    if not with_importance:
        skipped = "not computed: no report page was drawn when the model was saved (--no-report)"
        scores, scope = {}, {"skipped": skipped}
    elif len(validation):
        scores, scope = importance(estimator, X.iloc[validation], y.iloc[validation])
    else:
        scores, scope = {}, {"skipped": "no validation rows"}
    test = splits.get("test", []) if getattr(estimator, "temperature_", None) is not None else []
    return ReportData(
        **_common(estimator, "train", f"{source} \u2192 {_target_name(estimator)}"),
        dataset=dataset_summary(estimator.schema_, X, split_rows(estimator, splits), source=source),
        metrics=evaluation.get("scores", {}),
        predictions={s: _predictions(estimator, X.iloc[r], y.iloc[r]) for s, r in held_out.items()},
        class_counts={s: _counts(estimator, y.iloc[r]) for s, r in splits.items() if len(r)},
        importance=scores,
        importance_scope=scope,
        calibration=calibration_summary(estimator, X.iloc[test], y.iloc[test]) if len(test) else {},
    )


def split_rows(estimator, splits: dict[str, np.ndarray]) -> dict[str, int]:
    """Rows per split, in order; a bag (``bagging``) has no validation split: its training
    rows are named as bagged instead."""
    bags = bagging_of(estimator)
    if not bags or len(splits.get("validation", [])):
        return {name: len(rows) for name, rows in splits.items()}
    named = {"train": f"train (bagged over {bags} folds)"}
    return {named.get(n, n): len(r) for n, r in splits.items() if n != "validation"}


def calibration_summary(estimator, X: pd.DataFrame, y) -> dict:
    """What temperature scaling did on these rows (the test rows of ``train``): the
    temperatures, and the log loss, expected calibration error and reliability diagram's
    points of the probabilities before (T = 1) and after it (``predict_proba``'s), in the
    shape of ``ReportData.calibration``."""
    from ..estimator.calibration import (
        BINS,
        expected_calibration_error,
        reliability,
        uncalibrated_proba,
    )
    from ..evaluation.metrics import log_loss

    task = estimator.task_
    y_true = estimator.schema_.encode_target(y)
    inputs = estimator.encode(aligned(estimator, X))
    sides = {
        "before": uncalibrated_proba(estimator, inputs),
        "after": estimator.predict_proba(inputs),
    }
    summary = {
        "temperature": [float(t) for t in estimator.temperature_],
        "split": "test",
        "rows": len(y_true),
        "bins": BINS,
    }
    for side, proba in sides.items():
        p = proba[:, 1] if task == "binary" else proba
        summary[side] = {
            "log_loss": log_loss(y_true, p, task),
            "ece": expected_calibration_error(y_true, p, task),
            "reliability": reliability(y_true, p, task),
        }
    return summary


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


def tune_report(result, X: pd.DataFrame, y, source: str) -> ReportData:
    """The report of ``tabnn tune``: the refit best model's curves and single test
    evaluation beside the default's and the baselines, the best and the default
    configuration's scores on the same CV folds, and the study (``tuning``)."""
    estimator, summary = result.estimator, result.summary
    test = np.asarray(result.test_rows, dtype=int)
    train = np.setdiff1d(np.arange(len(X)), test)
    title = f"{source} \u2192 {_target_name(estimator)}: tuned ({summary['metric']})"
    folds = {"tuned": summary["best"]["fold_scores"]}
    if summary["default"] is not None:
        folds["default"] = summary["default"]["fold_scores"]
    return ReportData(
        **_common(estimator, "tune", title),
        dataset=dataset_summary(
            estimator.schema_, X, {"train": len(train), "test": len(test)}, source=source
        ),
        metrics=result.test_scores(),
        predictions={"test": _predictions(estimator, X.iloc[test], y.iloc[test])}
        if len(test)
        else {},
        class_counts={"train": _counts(estimator, y.iloc[train])},
        fold_scores=folds,
        fold_metric=summary["metric"],
        tuning={**summary, "all_trials": result.trials},
    )


def importance(estimator, X: pd.DataFrame, y) -> tuple[dict[str, tuple[float, float]], dict]:
    """Permutation importance of the columns the model uses, on held-out rows, within
    IMPORTANCE_WORK multiply-adds, and its scope: the rows and columns measured (out of
    how many), the shuffles, and how the columns were chosen when not all were."""
    schema = estimator.schema_
    features = list(schema.features)
    if not features or len(X) == 0:
        return {}, {}
    per_row = multiply_adds_per_row(estimator.model_config_)
    rows, measured = importance_plan(len(X), len(features), per_row)
    rng = np.random.default_rng(int(estimator.random_state or 0))
    keep = np.sort(rng.choice(len(X), rows, replace=False)) if rows < len(X) else np.arange(rows)
    inputs = estimator.encode(aligned(estimator, X.iloc[keep]))
    labels = _encoded_columns(schema)  # the original column of each network input column
    columns = features
    if measured < len(features):  # the columns whose term in the first layer varies most
        strength = input_contributions(estimator.inference_model_, *inputs)
        per_column = pd.Series(strength).groupby(labels, sort=False).sum()
        strongest = set(per_column.sort_values(ascending=False, kind="stable").index[:measured])
        columns = [c for c in features if c in strongest]
    config = estimator.model_config_
    inputs_width = encoded_width(
        config.n_numeric, len(config.indicator_columns), config.cardinalities
    )
    width = max(inputs_width, *config.hidden)  # the widest activations of a prediction
    scores = permutation_importance(
        estimator.predict_proba,  # on EncodedInputs: no checks or encoding per copy
        inputs,
        schema.encode_target(y.iloc[keep]),
        estimator.task_,
        n_repeats=IMPORTANCE_REPEATS,
        seed=int(estimator.random_state or 0),
        columns=columns,
        names=labels,
        max_cells=max(1, PREDICTED_CELLS * len(labels) // width),  # rows x widest layer
    )
    scope = {
        "rows": int(rows),
        "rows_available": len(X),
        "columns": len(columns),
        "columns_available": len(features),
        "repeats": IMPORTANCE_REPEATS,
    }
    if measured < len(features):
        scope["chosen_by"] = "largest first-layer contribution"
    if measured < len(features) or rows < min(len(X), IMPORTANCE_ROWS):
        scope["budget"] = f"{IMPORTANCE_WORK:,} multiply-adds"
    return {c: scores[c] for c in features if c in scores}, scope


def _encoded_columns(schema) -> list[str]:
    """The original column behind each column of the encoded inputs (numeric, then
    categorical): itself, or the date column whose numeric part it is."""
    owner = {}
    for column in getattr(schema, "dates", []):
        from ..features.dates import part_names

        owner.update({part: column for part in part_names(column)})
    return [owner.get(n, n) for n in schema.numeric] + list(schema.categorical)


def importance_plan(rows: int, columns: int, per_row: int) -> tuple[int, int]:
    """(rows, columns) permutation importance measures within IMPORTANCE_WORK multiply-adds,
    for ``rows`` held-out rows, ``columns`` columns and a network of ``per_row``
    multiply-adds per row (its parameters): every row, up to IMPORTANCE_ROWS, while that
    fits; then down to IMPORTANCE_MIN_ROWS rows; then fewer columns, but at least
    IMPORTANCE_MIN_COLUMNS (fewer rows instead), and always at least one row and column.

    >>> importance_plan(500, 14, 70_000)  # a narrow table: everything
    (500, 14)
    >>> importance_plan(9, 2000, 580_000)  # 2,000 columns: the strongest 638
    (9, 638)
    """
    repeats, budget = IMPORTANCE_REPEATS, IMPORTANCE_WORK
    rows = min(rows, IMPORTANCE_ROWS)
    per_column = repeats * max(1, per_row)  # work of one row of one measured column
    if rows * columns * per_column <= budget:
        return rows, columns
    rows = min(rows, max(IMPORTANCE_MIN_ROWS, budget // (columns * per_column)))
    floor = min(columns, IMPORTANCE_MIN_COLUMNS)
    if budget // (rows * per_column) < floor:
        rows = max(1, min(rows, budget // (floor * per_column)))
    return rows, max(1, min(columns, budget // (rows * per_column)))


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
        "twins": twins_info(estimator) or {},
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
