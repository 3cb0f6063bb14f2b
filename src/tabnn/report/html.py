"""The HTML page of a report: :func:`render_html` turns a
:class:`~tabnn.report.data.ReportData` into one self-contained page (inline CSS, plots
inlined as PNG, no scripts, no network) and :func:`write_report` writes that page atomically.

The plots come from :mod:`tabnn.report.plots` and :mod:`tabnn.report.curves`, imported
only inside the functions that draw, so importing this module does not load matplotlib.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .. import __version__
from ..io import write_file_atomic
from ..tasks import BASELINE_TITLES, HIGHER_IS_BETTER
from .data import REPORT_HTML, ReportData
from .summaries import counts_per_class
from .tuning import tuning_section

__all__ = ["render_html", "write_report"]

WIDE_INCHES = 7.5  # a figure wider than this spans both columns of the page's grid


def write_report(data: ReportData, directory: str | os.PathLike) -> Path:
    """Render ``data`` and write ``report.html`` into ``directory`` atomically.

    Returns
    -------
    Path
        The written file.
    """
    page = render_html(data)
    path = Path(directory) / REPORT_HTML
    write_file_atomic(path, page.encode("utf-8"))
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
        _calibration_section(data),
        _twins_section(data),
        _comparison_section(data),
        tuning_section(data, _figure, _table),
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
    from . import curves

    task, names = data.task, data.class_names
    confusion = "confusion-multilabel" if task == "multilabel" else "confusion"
    drawn = [
        (confusion, curves.plot_confusion(y, proba, task, names, threshold=threshold)),
        ("roc", curves.plot_roc(y, proba, task, names)),
        ("pr", curves.plot_precision_recall(y, proba, task, names)),
        ("calibration", curves.plot_calibration(y, proba, task, names)),
    ]
    if task == "binary":
        method = data.threshold_method
        drawn.append(
            ("threshold", curves.plot_threshold(y, proba, threshold=threshold, method=method))
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


def _twins_section(data: ReportData):
    """The model's members: the network and the twin member, with the twins' weight and
    what each scored on the held-out rows that have a twin."""
    choice = data.twins.get("choice") or {}
    if not choice:
        return None
    weight = float(data.twins.get("weight") or 0)
    seen = (
        f"{_e(choice.get('with_twin', 0))} of the {_e(choice.get('held_out_rows', 0))} held-out "
        "rows (the validation rows, or a bag's out-of-fold rows) have an exact twin among "
        "the rows trained on."
    )
    if not weight:
        text = f"<p>{seen} The twins' labels earned no weight, so the model stores no rows.</p>"
        return "members", "Members", text
    text = (
        f"<p>{seen} On a row with a twin the model answers {1 - weight:.2f} x the network "
        f"+ {weight:.2f} x its twins' labels (smoothed towards the class shares), the weight "
        "chosen by greedy ensemble selection on those held-out rows; other rows get the "
        f"network's answer. The model stores {_e(choice.get('stored_rows', 0))} distinct "
        "training rows, encoded (train with --no-twins to leave them out).</p>"
    )
    rows = [
        [_e("the network alone"), _number(choice.get("network_log_loss"))],
        [_e(f"the model (twins at weight {weight:.2g})"), _number(choice.get("blend_log_loss"))],
    ]
    header = ["held-out rows with a twin", "log loss \u2193"]
    return "members", "Members", text + _table(header, rows, "numbers")


def _calibration_section(data: ReportData):
    """Temperature scaling (``calibrate=True``): its temperatures, the log loss and expected
    calibration error before and after it, and the reliability diagram of both."""
    from . import curves

    calibration = data.calibration
    if not calibration:
        return None
    temperature = [float(t) for t in calibration.get("temperature", [])]
    if data.task == "multilabel" and len(temperature) == len(data.class_names):
        values = ", ".join(f"{_e(n)} {t:.3g}" for n, t in zip(data.class_names, temperature))
        said = f"by each label's temperature ({values})"
    else:
        said = f"by the temperature T = {', '.join(f'{t:.3g}' for t in temperature)}"
    text = (
        f"<p>The network's logits are divided {said}, fitted after training on the "
        "validation rows by minimising their log loss (T above 1 softens over-confident "
        "probabilities, below 1 sharpens them; the likeliest class never changes). On the "
        f"{_e(calibration.get('rows', '?'))} {_e(calibration.get('split', 'test'))} rows:</p>"
    )
    before, after = calibration.get("before", {}), calibration.get("after", {})
    rows = [
        [_e(name + " \u2193"), _number(before.get(key)), _number(after.get(key))]
        for key, name in (("log_loss", "log loss"), ("ece", "expected calibration error"))
    ]
    table = _table(["metric", "before (T = 1)", "after"], rows, "numbers")
    caption = (
        f"Rows binned by confidence ({_e(calibration.get('bins', 15))} equal-width bins, "
        "the expected calibration error's): points on the diagonal mean the confidence can "
        "be read as a frequency; the ECE is the rows' mean distance from it. Bottom: rows per bin."
    )
    if data.task == "multilabel":
        caption += " The points pool every label; the ECE is the mean of each label's."
    fig = curves.plot_temperature_scaling(calibration, data.task)
    content = text + _grid(f"<div>{table}</div>", _figure(fig, "temperature-scaling", caption))
    return "calibration", "Calibration", content


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

    scope = data.importance_scope
    if not data.importance:
        skipped = scope.get("skipped")
        if not skipped:
            return None
        text = f"<p>Permutation importance was {_e(skipped)}.</p>"
        return "importance", "Feature importance", text
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
    note = importance_scope_text(scope)
    note = f"<p>{_e(note)}</p>" if note else ""
    return "importance", "Feature importance", _figure(fig, "importance", caption) + note + details


def importance_scope_text(scope: Mapping) -> str:
    """What permutation importance covered, in words ('' when nothing is recorded).

    >>> scope = {"rows": 9, "rows_available": 9, "columns": 638, "columns_available": 2000,
    ...     "repeats": 3, "chosen_by": "largest first-layer contribution", "budget": "B"}
    >>> print(importance_scope_text(scope))  # doctest: +NORMALIZE_WHITESPACE
    Measured on 9 of 9 held-out rows, 3 shuffles per column. Limited to a budget of B: only
    the 638 of 2,000 columns with the largest first-layer contribution were measured; the
    others are not shown.
    """
    if scope.get("skipped"):
        return f"Permutation importance was {scope['skipped']}."
    if "rows" not in scope:
        return ""
    text = (
        f"Measured on {scope['rows']:,} of {scope.get('rows_available', scope['rows']):,} "
        f"held-out rows, {scope.get('repeats', '?')} shuffles per column."
    )
    if scope.get("budget"):
        text += f" Limited to a budget of {scope['budget']}"
        columns, available = scope.get("columns"), scope.get("columns_available")
        if scope.get("chosen_by") and columns != available:
            text += (
                f": only the {columns:,} of {available:,} columns with the "
                f"{scope['chosen_by']} were measured; the others are not shown."
            )
        else:
            text += "."
    return text


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
