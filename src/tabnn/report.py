"""The HTML report: the data it is drawn from, how that data is stored, and the page itself.

:class:`ReportData` is plain data (lists, dicts, numbers and a few numpy arrays) that the
commands fill in; every part is optional and the page shows what it is given. It is stored
beside a model as ``report.json`` plus ``report_arrays.safetensors`` (targets and
probabilities, which can be large), so ``tabnn report MODEL_DIR`` can draw the page again
later. :func:`render_html` turns it into one self-contained page (plots inlined as PNG, no
scripts, no network) and :func:`write_report` writes that page atomically.

matplotlib is imported (by :mod:`tabnn.plots`) only inside the functions that draw, so
importing this module, to store or load report data, stays cheap.
"""

from __future__ import annotations

import html
import json
import math
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors import SafetensorError
from safetensors.numpy import load_file, save

from . import __version__
from .errors import ModelError, UsageError
from .evaluate import HIGHER_IS_BETTER, TASKS, class_counts, compute_metrics

__all__ = [
    "REPORT_ARRAYS",
    "REPORT_HTML",
    "REPORT_JSON",
    "ReportData",
    "counts_per_class",
    "dataset_summary",
    "permutation_importance",
    "render_html",
    "write_report",
]

REPORT_JSON = "report.json"
REPORT_ARRAYS = "report_arrays.safetensors"
REPORT_HTML = "report.html"
FORMAT_VERSION = 1
PERMUTED_ROWS = 200_000  # rows of shuffled copies predicted at once
WIDE_INCHES = 7.5  # a figure wider than this spans both columns of the page's grid
BASELINE_TITLES = {
    "most_frequent": "most frequent class (baseline)",
    "logistic_regression": "logistic regression (baseline)",
    "lightgbm": "LightGBM (baseline)",
}


# --- the data ----------------------------------------------------------------------------


@dataclass
class ReportData:
    """Everything a report can show; only ``title``, ``command``, ``task`` and
    ``class_names`` are required.

    Attributes
    ----------
    title : str
        The page heading, e.g. ``"sonar.csv -> Class"``.
    command : {"train", "evaluate", "compare"}
        The command that produced the results.
    task : {"binary", "multiclass", "multilabel"}
    class_names : list of str
        Original class labels (binary: negative then positive) or multilabel label names.
    dataset : dict
        Summary of the table, as :func:`dataset_summary` builds it: ``rows`` (split -> rows),
        ``numeric``, ``categorical``, ``dropped`` (column -> reason), ``missing``
        (column -> missing values), ``table_rows``, ``target``, ``source``; all optional.
    history : list of dict
        ``History.epochs``: per-epoch records with a value (or None) per member.
    best_epoch : list of int
        ``History.best_epoch``: the epoch each member's kept weights come from.
    metrics : dict
        ``{"model": {metric: value}, "most_frequent": {...}, ...}``; scalars are tabulated.
    metrics_split : str
        The rows ``metrics`` were computed on ("test", "validation", "cross-validation").
    predictions : dict
        Split name -> ``(y_true, proba)`` as numpy arrays, in the conventions of
        :func:`tabnn.evaluate.compute_metrics`. Stored in the safetensors file, not the JSON.
    threshold : float or None
        Binary and multilabel decision threshold.
    threshold_method : str
        How the threshold was chosen, in words ("default", "best F1 on validation rows").
    class_counts : dict
        Split name -> rows per class (positives per label); splits with predictions and
        no entry here are counted from their ``y_true``.
    fold_scores : dict
        Design or baseline name -> its score on each fold (``Comparison.values``).
    fold_metric : str
        The metric in ``fold_scores``.
    importance : dict
        Original column name -> ``(mean, std)`` permutation importance.
    importance_metric : str
        The score :func:`permutation_importance` measured.
    created : str
        When the results were produced (ISO 8601), shown under the title.

    Examples
    --------
    >>> data = ReportData("demo", "evaluate", "binary", ["no", "yes"])
    >>> ReportData.from_dict(data.to_dict()) == data
    True
    """

    title: str
    command: str
    task: str
    class_names: list[str]
    dataset: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    best_epoch: list[int] = field(default_factory=list)
    metrics: dict[str, dict] = field(default_factory=dict)
    metrics_split: str = "test"
    predictions: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    threshold: float | None = None
    threshold_method: str = ""
    class_counts: dict[str, list[int]] = field(default_factory=dict)
    fold_scores: dict[str, list[float]] = field(default_factory=dict)
    fold_metric: str = ""
    importance: dict[str, tuple[float, float]] = field(default_factory=dict)
    importance_metric: str = "log_loss"
    created: str = ""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise UsageError(f"task must be one of {', '.join(TASKS)}; got {self.task!r}")
        self.class_names = [str(name) for name in self.class_names]
        self.predictions = {
            str(split): (_as_targets(y), _as_proba(p)) for split, (y, p) in self.predictions.items()
        }
        self.importance = {str(c): (float(m), float(s)) for c, (m, s) in self.importance.items()}

    def __eq__(self, other: object) -> bool:
        # arrays compare element-wise, so the dataclass default would raise
        if not isinstance(other, ReportData):
            return NotImplemented
        pairs = zip(self.predictions.values(), other.predictions.values())
        return self.to_dict(arrays=False) == other.to_dict(arrays=False) and all(
            np.array_equal(mine, theirs) for pair in pairs for mine, theirs in zip(*pair)
        )

    def to_dict(self, *, arrays: bool = True) -> dict:
        """JSON-able data; with ``arrays=False`` the predictions are left out (only their
        split names are listed, under ``"prediction_splits"``)."""
        d = {
            f.name: _jsonable(getattr(self, f.name))
            for f in fields(self)
            if f.name != "predictions"
        }
        d["format_version"] = FORMAT_VERSION
        if arrays:
            d["predictions"] = {
                s: [y.tolist(), p.tolist()] for s, (y, p) in self.predictions.items()
            }
        else:
            d["prediction_splits"] = list(self.predictions)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> ReportData:
        """Rebuild from :meth:`to_dict` output (ModelError when malformed)."""
        missing = [k for k in ("title", "command", "task", "class_names") if k not in d]
        if missing:
            raise ModelError(f"The stored report data lacks {', '.join(missing)}.")
        if d.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
            raise ModelError("The stored report data is from a newer tabnn; upgrade tabnn.")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        values["predictions"] = {
            split: (np.asarray(y), np.asarray(p))
            for split, (y, p) in d.get("predictions", {}).items()
        }
        return cls(**values)

    def files(self) -> dict[str, bytes]:
        """The stored form, file name -> bytes: ``report.json`` and, when there are
        predictions, ``report_arrays.safetensors`` (a model directory stores these beside
        the weights)."""
        files = {}
        if self.predictions:
            tensors = {}
            for split, (y, p) in self.predictions.items():
                tensors[f"{split}.y_true"], tensors[f"{split}.proba"] = y, p
            files[REPORT_ARRAYS] = save(tensors)
        text = json.dumps(self.to_dict(arrays=False), indent=1, ensure_ascii=False)
        files[REPORT_JSON] = text.encode("utf-8")
        return files

    def save(self, directory: str | os.PathLike) -> Path:
        """Write :meth:`files` into ``directory`` (each atomically); return the JSON path."""
        directory = Path(directory)
        for name, content in self.files().items():
            _atomic_write(directory / name, content)
        return directory / REPORT_JSON

    @classmethod
    def load(cls, directory: str | os.PathLike) -> ReportData:
        """Read what :meth:`save` wrote (ModelError when it is missing or malformed)."""
        directory = Path(directory)
        try:
            d = json.loads((directory / REPORT_JSON).read_text(encoding="utf-8"))
            splits = d.pop("prediction_splits", [])
            tensors = load_file(directory / REPORT_ARRAYS) if splits else {}
            d["predictions"] = {s: (tensors[f"{s}.y_true"], tensors[f"{s}.proba"]) for s in splits}
        except (OSError, ValueError, KeyError, SafetensorError) as exc:
            raise ModelError(f"Cannot read the report data in {directory}: {exc}") from exc
        return cls.from_dict(d)


def _as_targets(y) -> np.ndarray:
    """Encoded targets as contiguous int64 (safetensors stores plain numeric arrays)."""
    return np.ascontiguousarray(np.asarray(y), dtype=np.int64)


def _as_proba(p) -> np.ndarray:
    """Probabilities as a contiguous float array, keeping float32 when that is what came."""
    arr = np.asarray(p)
    return np.ascontiguousarray(arr, dtype=arr.dtype if arr.dtype.kind == "f" else np.float64)


def _jsonable(value):
    """Plain JSON types: numpy scalars become numbers, arrays and tuples lists and
    non-finite floats None (JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _atomic_write(path: Path, content: bytes) -> None:
    """Write through a temporary file in the same directory, then rename it into place, so
    a crash never leaves a half-written file under the final name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # a fresh name rather than mkstemp, whose 0600 mode would make the report private
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_bytes(content)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --- helpers that fill the data ------------------------------------------------------------


def dataset_summary(schema, X: pd.DataFrame, rows: Mapping[str, int], *, source: str = "") -> dict:
    """The ``dataset`` part of :class:`ReportData`.

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
    >>> from tabnn.schema import Schema
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


def _log_loss(y: np.ndarray, p: np.ndarray, task: str) -> float:
    """Mean log loss; multilabel averages each label's binary log loss."""
    from sklearn.metrics import log_loss

    if task == "binary":
        return float(log_loss(y, p, labels=[0, 1]))
    if task == "multiclass":
        p = np.clip(p, 1e-15, 1)
        return float(log_loss(y, p / p.sum(axis=1, keepdims=True), labels=range(p.shape[1])))
    return float(np.mean([log_loss(y[:, k], p[:, k], labels=[0, 1]) for k in range(y.shape[1])]))


def _as_evaluated(p, task: str) -> np.ndarray:
    """Probabilities in compute_metrics' convention: P(class 1) for a binary task."""
    p = np.asarray(p, dtype=float)
    return p[:, -1] if task == "binary" and p.ndim == 2 else p  # scikit-learn's (n, 2)


def _scorer(task: str, metric: str) -> Callable:
    """(y, probabilities) -> a score where higher is better."""

    def score(y, p) -> float:
        if metric == "log_loss":
            return -_log_loss(y, p, task)
        value = compute_metrics(task, y, p)[metric]
        return value if HIGHER_IS_BETTER[metric] else -value

    return score


def permutation_importance(
    predict_proba: Callable[[pd.DataFrame], np.ndarray],
    X: pd.DataFrame,
    y_true,
    task: str,
    *,
    metric: str = "log_loss",
    n_repeats: int = 5,
    seed: int = 0,
    max_rows: int | None = None,
) -> dict[str, tuple[float, float]]:
    """How much the score suffers when one original column is shuffled, column by column.

    As :func:`sklearn.inspection.permutation_importance`, on the user's columns (so
    importances carry their names, whatever the encoding does inside the model), with
    every shuffled copy of a group of columns scored in one prediction.

    Parameters
    ----------
    predict_proba : callable
        Frame -> probabilities, e.g. ``TabNNClassifier.predict_proba`` (a binary ``(n, 2)``
        is accepted) or any function in :func:`tabnn.evaluate.compute_metrics`'s convention.
    X : DataFrame
        Held-out rows with the original columns.
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

    Returns
    -------
    dict of str to (float, float)
        Column -> (mean, std) of the importance, in the frame's column order.

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
    rng = np.random.default_rng(seed)
    y = np.asarray(y_true)
    if max_rows and len(X) > max_rows:
        keep = np.sort(rng.choice(len(X), max_rows, replace=False))
        X, y = X.iloc[keep], y[keep]
    X = X.reset_index(drop=True)
    scorer = _scorer(task, metric)
    unshuffled = _as_evaluated(predict_proba(X), task)
    if metric != "log_loss":
        scores = compute_metrics(task, y, unshuffled)
        valid = ["log_loss", *(m for m in scores if m in HIGHER_IS_BETTER)]
        if metric not in valid:
            raise UsageError(
                f"Unknown metric {metric!r} for a {task} task; valid: {', '.join(valid)}."
            )
    reference = scorer(y, unshuffled)
    # every shuffled copy of a group of columns goes through one prediction: per-call
    # overhead, not arithmetic, is what a column-by-column loop would pay
    n, per_group = len(X), max(1, PERMUTED_ROWS // max(1, len(X) * n_repeats))
    result = {}
    for start in range(0, X.shape[1], per_group):
        columns = list(X.columns[start : start + per_group])
        copies = []
        for column in columns:
            for _ in range(n_repeats):
                copy = X.copy()
                copy[column] = X[column].to_numpy()[rng.permutation(n)]
                copies.append(copy)
        proba = _as_evaluated(predict_proba(pd.concat(copies, ignore_index=True)), task)
        drops = [reference - scorer(y, proba[i * n : (i + 1) * n]) for i in range(len(copies))]
        for j, column in enumerate(columns):
            mine = np.array(drops[j * n_repeats : (j + 1) * n_repeats])
            result[str(column)] = (float(mine.mean()), float(mine.std()))
    return result


# --- the page ----------------------------------------------------------------------------


def write_report(data: ReportData, directory: str | os.PathLike) -> Path:
    """Render ``data`` and write ``report.html`` into ``directory`` atomically.

    Returns
    -------
    Path
        The written file.
    """
    page = render_html(data)
    path = Path(directory) / REPORT_HTML
    _atomic_write(path, page.encode("utf-8"))
    return path


def render_html(data: ReportData) -> str:
    """One self-contained HTML page (inline CSS and PNG images, no scripts, nothing fetched)
    with a section for each part of ``data`` that is filled in.

    Examples
    --------
    >>> page = render_html(ReportData("demo", "evaluate", "binary", ["no", "yes"]))
    >>> page.startswith("<!DOCTYPE html>")
    True
    """
    sections = [
        _scores_section(data),
        _data_section(data),
        _training_section(data),
        *(_split_section(data, split) for split in _split_order(data.predictions)),
        _comparison_section(data),
        _importance_section(data),
    ]
    sections = [s for s in sections if s is not None]
    nav = " ".join(f'<a href="#{sid}">{_e(heading)}</a>' for sid, heading, _ in sections)
    body = "\n".join(
        f'<section id="{sid}">\n<h2>{_e(heading)}</h2>\n{content}\n</section>'
        for sid, heading, content in sections
    )
    subtitle = " \u00b7 ".join(
        _e(part) for part in (f"tabnn {data.command}", f"{data.task} task", data.created) if part
    )
    return _PAGE.format(
        title=_e(data.title), subtitle=subtitle, nav=nav, body=body, version=_e(__version__)
    )


def _e(value: object) -> str:
    return html.escape(str(value))


def _number(value) -> str:
    """A table cell's text: 4 decimals for floats, a dash for a missing value."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "\u2013"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], css: str = "") -> str:
    """An HTML table from cells that are already escaped HTML."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _figure(fig, plot: str, caption: str) -> str:
    """A figure as an inline PNG with its caption; ``plot`` names it for tests and links.
    Figures wider than two panels' worth take a whole row of the grid."""
    from . import plots

    alt = fig.get_suptitle() or fig.axes[0].get_title()
    css = ' class="wide"' if fig.get_figwidth() > WIDE_INCHES else ""
    return (
        f'<figure{css}><img data-plot="{_e(plot)}" alt="{_e(alt)}" '
        f'src="data:image/png;base64,{plots.png_base64(fig)}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _grid(*figures: str) -> str:
    return '<div class="grid">' + "".join(figures) + "</div>"


# --- sections: each returns (id, heading, html) or None when it has nothing to show --------


def _is_scalar(value) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _best(metric: str, values: list) -> object:
    """The best of a row of a metric's values, None when there is nothing to compare."""
    present = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if metric not in HIGHER_IS_BETTER or len(present) < 2:
        return None
    return max(present) if HIGHER_IS_BETTER[metric] else min(present)


def _scores_section(data: ReportData):
    if not data.metrics:
        return None
    columns = list(data.metrics)
    names = [k for k, v in data.metrics[columns[0]].items() if _is_scalar(v) and k != "threshold"]
    rows = []
    for name in names:
        values = [data.metrics[c].get(name) for c in columns]
        best = _best(name, values)
        arrow = {True: " \u2191", False: " \u2193"}.get(HIGHER_IS_BETTER.get(name), "")
        cells = [
            f"<b>{_number(v)}</b>" if best is not None and v == best else _number(v) for v in values
        ]
        rows.append([_e(name + arrow), *cells])
    header = ["metric", *(_e(BASELINE_TITLES.get(c, c)) for c in columns)]
    note = f"On the {_e(data.metrics_split)} rows. \u2191 higher is better, \u2193 lower is better"
    if len(columns) > 1:
        note += (
            "; the best value of each row is in bold. A model that does not beat the "
            "baselines is not worth its cost"
        )
    note = f"<p>{note}.</p>"
    return "scores", "Scores", note + _table(header, rows, "numbers")


def _class_counts(data: ReportData) -> dict[str, list[int]]:
    """Counts given per split, plus those of splits that only came with predictions."""
    counts = dict(data.class_counts)
    for split, (y, _) in data.predictions.items():
        if split not in counts and len(y):
            counts[split] = counts_per_class(y, data.task, len(data.class_names))
    return counts


def _columns_html(dataset: dict) -> str:
    """Columns kept by kind and dropped with their reasons."""
    rows = [
        [_e(kind), str(len(dataset[kind])), _names_html(dataset[kind])]
        for kind in ("numeric", "categorical")
        if kind in dataset
    ]
    parts = [_table(["kind", "columns", "names"], rows, "wrap")] if rows else []
    if dataset.get("dropped"):
        dropped = [[_e(c), _e(reason)] for c, reason in dataset["dropped"].items()]
        parts.append("<h3>Columns not used</h3>" + _table(["column", "reason"], dropped))
    return "".join(parts)


def _names_html(names: Sequence[str], shown: int = 10) -> str:
    """Column names, the long tail folded away so a wide table stays one line per kind."""
    if len(names) <= shown:
        return _e(", ".join(names))
    head = _e(", ".join(names[:shown]))
    return f"<details><summary>{head}, …</summary>{_e(', '.join(names))}</details>"


def _missing_html(dataset: dict) -> str:
    missing = dataset.get("missing")
    if missing is None:
        return ""
    if not missing:
        return "<h3>Missing values</h3><p>None.</p>"
    total = dataset.get("table_rows")
    rows = [
        [_e(c), str(n), f"{n / total:.1%}" if total else "\u2013"]
        for c, n in sorted(missing.items(), key=lambda item: -item[1])
    ]
    return "<h3>Missing values</h3>" + _table(["column", "missing", "share"], rows, "numbers")


def _balance_html(data: ReportData, counts: dict) -> str:
    from . import plots

    fig = plots.plot_class_distribution(
        counts, data.class_names, data.task, rows=data.dataset.get("rows")
    )
    splits = plots.split_order(counts)
    rows = [
        [_e(name), *(str(counts[s][k]) for s in splits)] for k, name in enumerate(data.class_names)
    ]
    noun = "label" if data.task == "multilabel" else "class"
    table = _table([noun, *(_e(s) for s in splits)], rows, "numbers")
    caption = f"Each split's share of rows per {noun}; the numbers on the bars are row counts."
    heading = f"<h3>{noun.capitalize()} balance</h3>"
    return heading + _grid(_figure(fig, "class-balance", caption), table)


def _data_section(data: ReportData):
    dataset, counts = data.dataset, _class_counts(data)
    if not dataset and not counts:
        return None
    parts = []
    if dataset.get("source") or dataset.get("target"):
        target = ", ".join(dataset.get("target", []))
        parts.append(f"<p>{_e(dataset.get('source', ''))} \u2192 target {_e(target)}</p>")
    if dataset.get("rows"):
        rows = [[_e(s), str(n)] for s, n in dataset["rows"].items()]
        parts.append(_table(["split", "rows"], rows, "numbers"))
    parts += [_columns_html(dataset), _missing_html(dataset)]
    if counts:
        parts.append(_balance_html(data, counts))
    return "data", "Data", "".join(parts)


def _training_section(data: ReportData):
    from . import plots

    if not data.history:
        return None
    members = len(data.history[0]["train_loss"])
    last = data.history[-1]["epoch"]
    if members == 1:
        caption = "Loss and validation accuracy per epoch; the dashed line marks the kept epoch."
    else:
        caption = (
            f"{members} members trained together: lines are the mean over the members still "
            "training that epoch, bands their range; triangles mark each member's kept epoch."
        )
    best = ", ".join(str(b) for b in data.best_epoch) or "\u2013"
    text = f"<p>Trained for {last} epochs; weights kept from epoch(s) {_e(best)}.</p>"
    fig = plots.plot_history(data.history, data.best_epoch)
    return "training", "Training", text + _figure(fig, "history", caption)


def _split_order(predictions: Mapping) -> list[str]:
    """Test first (the honest numbers), then validation, then anything else."""
    rank = {"test": 0, "validation": 1}
    return sorted(predictions, key=lambda split: rank.get(split, 2))


def _per_class_html(data: ReportData, y, proba, threshold: float) -> str:
    """Precision, recall, F1 and support per class (label), then the averages."""
    from sklearn.metrics import classification_report

    p = np.asarray(proba, dtype=float)
    pred = p.argmax(axis=1) if data.task == "multiclass" else (p >= threshold).astype(int)
    report = classification_report(
        y,
        pred,
        labels=list(range(len(data.class_names))),
        target_names=data.class_names,
        output_dict=True,
        zero_division=0,
    )
    rows = [
        [
            _e(name),
            *(_number(float(s[k])) for k in ("precision", "recall", "f1-score")),
            str(int(s["support"])),
        ]
        for name, s in report.items()
        if isinstance(s, dict)
    ]
    header = ["class" if data.task != "multilabel" else "label", "precision", "recall", "F1"]
    return _table([*header, "support"], rows, "numbers")


_CAPTIONS = {
    "confusion": "Rows are the true classes, columns the predictions; the right panel divides "
    "each row by its total, so its diagonal is each class's recall.",
    "confusion-multilabel": "One matrix per label: rows are the truth, columns the "
    "prediction; each cell holds the count and its share of the row.",
    "roc": "Each curve trades false alarms against hits; the area under it (AUC) is the "
    "chance that a random positive scores above a random negative.",
    "pr": "Precision against recall over all thresholds, average precision (AP) in the "
    "legend. Dotted lines: the precision of guessing (each class's share of the rows).",
    "calibration": "Points on the diagonal mean the probabilities can be read as "
    "frequencies; points below it mean the predicted probabilities are too high. Bottom: "
    "how the predicted probabilities spread.",
    "threshold": "What each decision threshold would give on these rows; the dots mark the "
    "threshold in use.",
}


def _split_figures(data: ReportData, split: str, y, proba, threshold: float) -> list[str]:
    """The plots of one split's predictions, confusion matrix first."""
    from . import plots

    task, names = data.task, data.class_names
    confusion = "confusion-multilabel" if task == "multilabel" else "confusion"
    drawn = [
        (confusion, plots.plot_confusion(y, proba, task, names, threshold=threshold)),
        ("roc", plots.plot_roc(y, proba, task, names)),
        ("pr", plots.plot_precision_recall(y, proba, task, names)),
        ("calibration", plots.plot_calibration(y, proba, task, names)),
    ]
    if task == "binary":
        method = data.threshold_method
        drawn.append(
            ("threshold", plots.plot_threshold(y, proba, threshold=threshold, method=method))
        )
    return [_figure(fig, f"{kind.split('-')[0]}-{split}", _CAPTIONS[kind]) for kind, fig in drawn]


def _split_section(data: ReportData, split: str):
    y, proba = data.predictions[split]
    sid = "split-" + "-".join(split.split())
    heading = f"{split.capitalize()} rows"
    if len(y) == 0:
        return sid, heading, "<p>No rows.</p>"
    threshold = 0.5 if data.threshold is None else data.threshold
    rule = ""
    if data.task != "multiclass":
        how = f" ({_e(data.threshold_method)})" if data.threshold_method else ""
        rule = f" Decision threshold {threshold:.3g}{how}."
    noun = "label" if data.task == "multilabel" else "class"
    per_class = f"<div><h3>Per {noun}</h3>{_per_class_html(data, y, proba, threshold)}</div>"
    figures = _split_figures(data, split, y, proba, threshold)
    return sid, heading, f"<p>{len(y)} rows.{rule}</p>" + _grid(per_class, *figures)


def _comparison_section(data: ReportData):
    from . import plots

    if not data.fold_scores:
        return None
    metric = data.fold_metric or "score"
    fig = plots.plot_fold_scores(data.fold_scores, metric)
    rows = []
    for name, scores in data.fold_scores.items():
        v = np.asarray([s for s in scores if s is not None], dtype=float)
        stats = [float(f(v)) for f in (np.mean, np.std, np.min, np.max)] if len(v) else [None] * 4
        rows.append([_e(BASELINE_TITLES.get(name, name)), *map(_number, stats)])
    header = ["design", f"mean {_e(metric)}", "std", "min", "max"]
    caption = (
        "Every design and baseline scored on the same held-out folds: boxes span the middle "
        "half of the folds, points are single folds, grey ones baselines."
    )
    content = _grid(_figure(fig, "fold-scores", caption), _table(header, rows, "numbers"))
    return "comparison", "Comparison", content


def _importance_section(data: ReportData):
    from . import plots

    if not data.importance:
        return None
    fig = plots.plot_importance(data.importance, data.importance_metric)
    caption = (
        "Each column is shuffled in turn on held-out rows, breaking its link to the target; "
        "the more the score suffers, the more the model relies on it."
    )
    rows = [
        [_e(column), _number(mean), _number(std)]
        for column, (mean, std) in sorted(data.importance.items(), key=lambda kv: -kv[1][0])
    ]
    table = _table(["column", "mean", "std"], rows, "numbers")
    details = f"<details><summary>All {len(rows)} columns</summary>{table}</details>"
    return "importance", "Feature importance", _figure(fig, "importance", caption) + details


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{title}</title>
<style>
body {{ font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: #1f2328; margin: 0; background: #f6f8fa; }}
header, main {{ max-width: 1480px; margin: 0 auto; padding: 0 24px; }}
header {{ padding-top: 20px; }}
h1 {{ margin: 0 0 4px; font-size: 26px; }}
.subtitle {{ color: #57606a; margin: 0 0 12px; }}
nav {{ position: sticky; top: 0; background: #f6f8fa; border-bottom: 1px solid #d0d7de;
  z-index: 1; }}
nav div {{ max-width: 1480px; margin: 0 auto; padding: 8px 24px; }}
nav a {{ margin-right: 16px; color: #0969da; text-decoration: none; }}
section {{ background: #fff; border: 1px solid #d0d7de; border-radius: 6px;
  padding: 8px 20px 16px; margin: 16px 0; }}
h2 {{ font-size: 20px; margin: 8px 0; }}
h3 {{ font-size: 16px; margin: 16px 0 6px; }}
table {{ border-collapse: collapse; margin: 6px 0 12px; }}
th, td {{ border-bottom: 1px solid #d8dee4; padding: 4px 12px; text-align: left;
  vertical-align: top; }}
th {{ background: #f6f8fa; }}
table.numbers td + td {{ text-align: right; font-variant-numeric: tabular-nums; }}
table.wrap td:last-child {{ max-width: 900px; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr));
  gap: 16px; align-items: start; justify-items: start; }}
figure {{ margin: 0; }}
figure.wide {{ grid-column: 1 / -1; }}
figure img {{ display: block; max-width: 100%; height: auto; }}
figcaption {{ color: #57606a; font-size: 13px; margin-top: 4px; }}
footer {{ color: #57606a; font-size: 13px; padding: 8px 0 24px; }}
</style>
</head>
<body>
<header>
<h1>{title}</h1>
<p class="subtitle">{subtitle}</p>
</header>
<nav><div>{nav}</div></nav>
<main>
{body}
<footer>Made by tabnn {version}; self-contained: no scripts, nothing from the network.</footer>
</main>
</body>
</html>
"""
