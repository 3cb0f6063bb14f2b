"""What the commands print: the consoles, the score tables and the summaries (``show_*``).

stdout carries results (tables, JSON, predictions), stderr errors and progress. Every
function prints through the module's ``out_console``/``err_console``, looked up when it runs,
so a test can swap a console for one that acts as a terminal. Loading this module loads no
torch, pandas or scikit-learn.
"""

from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..nn.designs import bag_folds
from ..tasks import BASELINES
from .describe import temperature_text, threshold_text, twins_line

# soft_wrap: sentences are never broken at 80 columns when the output goes to a pipe
out_console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

# metrics shown in the table, by task (all of them are in --json and tabnn.json)
SHOWN = {
    "binary": [
        "accuracy",
        "balanced_accuracy",
        "precision",
        "recall",
        "f1",
        "mcc",
        "roc_auc",
        "pr_auc",
        "log_loss",
        "brier",
    ],
    "multiclass": [
        "accuracy",
        "balanced_accuracy",
        "f1_macro",
        "f1_weighted",
        "mcc",
        "roc_auc_ovr_macro",
        "log_loss",
    ],
    "multilabel": ["hamming_loss", "subset_accuracy", "f1_micro", "f1_macro", "roc_auc_macro"],
}
# the model first, then the baselines from the simplest up (tabnn.json stores them sorted)
COLUMN_ORDER = ("model", *BASELINES)


def show_error(message: str) -> None:
    """``error: MESSAGE`` on stderr (the message printed as it is, never as markup)."""
    # escaped: messages quote user values and extras such as tabnn[mlflow] verbatim
    err_console.print(f"[bold red]error:[/] {escape(message)}", markup=True)


def show_note(message: str) -> None:
    """``note: MESSAGE`` on stderr, for what the user should know but stops nothing."""
    err_console.print(f"[yellow]note:[/] {escape(message)}", markup=True)


def print_json(payload) -> None:
    """Plain JSON on stdout (no colour, no wrapping), for scripts."""
    from ..io import to_jsonable

    sys.stdout.write(json.dumps(to_jsonable(payload), indent=2) + "\n")


def show_version(version: str) -> None:
    out_console.print(f"tabnn {version}")


def show_written(count: int, out) -> None:
    """How many predictions went to which file (on stderr: stdout may be the data)."""
    err_console.print(f"wrote {count} predictions to [green]{_t(out)}[/]")


def show_report(path) -> None:
    out_console.print(f"report: [green]{_t(path)}[/]")


# --------------------------------------------------------------------------- training


def show_training(result, *, metrics: list[str] | None = None) -> None:
    """Readable summary of a training workflow (``metrics`` narrows the score table)."""
    show_source(result.source)
    rows, bags = result.rows, result.bagging
    validation = (
        f"bagged over {bags} folds (each member stops on its own)"
        if bags
        else f"{rows['validation']} validation"
    )
    out_console.print(
        f"[bold]{result.task}[/] task, classes {_t(', '.join(map(str, result.classes)))}; rows: "
        f"{rows['train']} train, {validation}, {rows['test']} test"
    )
    if result.dropped_targets:
        out_console.print(f"dropped {result.dropped_targets} rows with a missing target")
    for column, reason in result.dropped_columns.items():
        out_console.print(f"dropped column [cyan]{_t(column)}[/]: {_t(reason)}")
    out_console.print(
        f"trained in {result.seconds:.1f} s, best epoch {', '.join(map(str, result.best_epochs))}"
    )
    show_threshold(result.threshold)
    if result.temperature:
        out_console.print(f"calibrated: {_t(temperature_text(result.temperature, result.classes))}")
    if twins := twins_line(result.twins, result.params):
        out_console.print(_t(twins))
    show_scores(result.evaluation, title="Test rows (never used for any choice)", metrics=metrics)
    show_outputs(result)


def show_outputs(result) -> None:
    """Where the model, its report and the tracked run went (every workflow's result
    declares these fields: workflows.save_and_track fills them)."""
    if result.model_dir is not None:
        out_console.print(f"model saved to [green]{_t(result.model_dir)}[/]")
    if result.report is not None:
        show_report(result.report)
    for destination in result.tracking:
        out_console.print(f"logged to {_t(destination)}")


def show_source(source: dict) -> None:
    """The file read, its size and whether its first line was taken as column names."""
    if not source:
        return
    line = f"read {_t(source['file'])}: {source['rows']} rows, {source['columns']} columns"
    if source["text"]:
        named = "first line holds column names" if source["header"] else "no header row"
        how = "detected; --header/--no-header to override" if source["header_detected"] else ""
        line += f"; {named}" + (f" ({how})" if how else "")
        if not source["header"]:
            line += f", columns named 0..{source['columns'] - 1}"
    out_console.print(line)


def show_threshold(threshold: dict) -> None:
    """Where a tuned decision threshold came from; nothing for a fixed one."""
    tuning = (threshold or {}).get("tuning")
    if tuning:
        out_console.print(f"threshold {threshold_text(threshold)}")


# --------------------------------------------------------------------------- scores


def show_scores(evaluation: dict, *, title: str, metrics: list[str] | None = None) -> None:
    """A metric x model table with the baselines beside the model, and the confusion matrix
    (left out when ``metrics`` narrows the table)."""
    for part in score_parts(evaluation, title=title, metrics=metrics):
        out_console.print(part)


def score_parts(evaluation: dict, *, title: str, metrics: list[str] | None = None) -> list:
    """What :func:`show_scores` prints, as lines and tables, nothing printed yet."""
    scores = evaluation.get("scores", {})
    if not scores:
        return ["no test rows: nothing evaluated"]
    task = _task_of(scores["model"])
    names = sorted(scores, key=lambda n: (COLUMN_ORDER + (n,)).index(n))
    parts: list = [f"[bold]{_t(title)}[/]: {_t(evaluation['rows'])} rows"]
    table = Table()
    table.add_column("metric")
    for name in names:
        table.add_column(_t(name.replace("_", " ")), justify="right")
    for metric in metrics or SHOWN[task]:
        table.add_row(metric, *[_t(_fmt(scores[name].get(metric))) for name in names])
    parts.append(table)
    matrix = scores["model"].get("confusion_matrix")
    if matrix is not None and metrics is None:
        parts.append("confusion matrix (rows: true class, columns: predicted):")
        parts += ["  " + " ".join(f"{_t(v):>6}" for v in line) for line in matrix]
    return parts


def _task_of(scores: dict) -> str:
    if "hamming_loss" in scores:
        return "multilabel"
    return "binary" if "pr_auc" in scores else "multiclass"


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def _t(value) -> str:
    """A value printed as text, never read as rich markup: column names, labels and paths
    come from the user and may hold brackets ("[/x]" would stop the command)."""
    return escape(str(value))


def show_evaluation(result: dict, name: str) -> None:
    """What ``tabnn evaluate`` found on the file ``name``."""
    if result["dropped_targets"]:
        out_console.print(f"dropped {result['dropped_targets']} rows with a missing target")
    show_scores(result, title=f"Evaluation on {name}")
    if "report" in result:
        show_report(result["report"])


# --------------------------------------------------------------------------- compare


def show_comparison(result, threshold: dict) -> None:
    """Per-fold scores, mean +- std and rank per design, the paired test, the winner (with
    its decision ``threshold``) and its single test evaluation."""
    show_source(getattr(result, "source", {}))
    comparison = result.comparison
    names = list(comparison.scores)
    out_console.print(
        f"[bold]{comparison.task}[/] task; {comparison.folds}-fold CV x {comparison.repeats} on "
        f"{result.rows['train']} training rows ({result.rows['test']} test rows held out); "
        f"metric {comparison.metric}"
    )
    folds = Table(title="Per fold (same folds for every column)", title_justify="left")
    folds.add_column("fold")
    for name in names:
        folds.add_column(name.replace("_", " "), justify="right")
    for j in range(len(comparison.fold_rows)):
        folds.add_row(str(j + 1), *[_fmt(comparison.values(name)[j]) for name in names])
    out_console.print(folds)
    summary = Table(title="Mean +- std over folds", title_justify="left")
    for column in ("rank", "design", comparison.metric, "seconds"):
        summary.add_column(column, justify="right" if column != "design" else "left")
    ordered = comparison.ranking + [n for n in names if n not in comparison.ranking]
    for name in ordered:
        stats = comparison.summary[name]
        rank = str(comparison.ranking.index(name) + 1) if name in comparison.ranking else "-"
        seconds = comparison.seconds.get(name)
        summary.add_row(
            rank,
            name if rank != "-" else f"{name} (baseline)",
            f"{stats['mean']:.4f} +- {stats['std']:.4f}",
            "-" if seconds is None else f"{seconds:.1f}",
        )
    out_console.print(summary)
    paired = comparison.paired
    out_console.print(
        f"{paired['a']} vs {paired['b']}: difference {paired['difference']:+.4f} "
        f"+- {paired['difference_std']:.4f} over the same {paired['folds']} folds; corrected "
        f"resampled t = {paired['t']:.2f}, p = {paired['p_value']:.3f}"
    )
    if "lightgbm" not in comparison.scores:
        why = (
            "binary and multi-class only"
            if comparison.task == "multilabel"
            else "not installed; pip install 'tabnn[lightgbm]'"
        )
        out_console.print(f"LightGBM baseline skipped: {why}")
    if result.nested is not None:
        show_nested(result.nested)
    how = (
        "refit on all training rows"
        if result.refit == "full"
        else "fold models kept as an ensemble"
    )
    out_console.print(f"winner: [bold]{_t(comparison.winner)}[/] ({how})")
    show_threshold(threshold)
    show_scores(result.test, title="Test rows (never used for any choice)")
    show_outputs(result)


def show_nested(nested: dict) -> None:
    """The outer folds of nested CV: the design each inner comparison chose, its
    (optimistic) inner CV score and its honest outer score."""
    table = Table(
        title=f"Nested CV: {nested['metric']} {nested['mean']:.4f} +- {nested['std']:.4f} "
        "for choose-then-refit",
        title_justify="left",
    )
    for column in ("outer fold", "chosen", "inner CV", "outer score"):
        table.add_column(column, justify="left" if column == "chosen" else "right")
    for record in nested["outer_folds"]:
        table.add_row(
            str(record["fold"]), record["chosen"], _fmt(record["inner_cv"]), _fmt(record["score"])
        )
    out_console.print(table)


# --------------------------------------------------------------------------- info, demo


def show_info(model_dir, meta: dict) -> None:
    """A saved model's schema, classes, network, threshold, training and test scores.

    Everything is checked and laid out before anything is printed: a ``tabnn.json`` that
    lacks a key this needs, or holds one of another type (a model written by another
    tabnn), is a ModelError naming the key, what was expected and what is there.
    """
    for part in info_parts(model_dir, meta):
        out_console.print(part)


# what show_info reads from tabnn.json: key path -> (check, what it should be)
_TEXT_LIST = (
    lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "a list of names",
)
_INFO_FIELDS = {
    "tabnn_version": (lambda v: isinstance(v, str | int | float), "a version"),
    "schema": (lambda v: isinstance(v, dict), "an object"),
    "schema.task": (lambda v: isinstance(v, str) and v in SHOWN, f"one of {', '.join(SHOWN)}"),
    "schema.target": _TEXT_LIST,
    "schema.classes": (lambda v: isinstance(v, list), "a list of classes"),
    "schema.numeric": _TEXT_LIST,
    "schema.categorical": _TEXT_LIST,
    "schema.dropped": (lambda v: isinstance(v, dict), "an object of column: reason"),
    "model_config": (lambda v: isinstance(v, dict), "an object"),
    "model_config.hidden": (lambda v: isinstance(v, list), "a list of layer sizes"),
    "model_config.activation": (lambda v: isinstance(v, str), "a name"),
    "model_config.dropout": (lambda v: _is_number(v), "a number"),
    "model_config.n_members": (lambda v: isinstance(v, int) and not isinstance(v, bool), "a count"),
}
_OPTIONAL_FIELDS = {
    "threshold": (lambda v: v is None or isinstance(v, dict), "an object"),
    "temperature": (
        lambda v: v is None or (isinstance(v, list) and all(map(_is_number, v))),
        "a list of numbers",
    ),
    "training": (lambda v: v is None or isinstance(v, dict), "an object"),
    "training.rows": (lambda v: isinstance(v, dict), "an object of split: rows"),
    "evaluation": (lambda v: isinstance(v, dict), "an object"),
    "evaluation.scores": (
        lambda v: (
            isinstance(v, dict)
            and all(isinstance(s, dict) for s in v.values())
            and (not v or "model" in v)
        ),
        "an object of name: scores, with the model's",
    ),
    "evaluation.scores.model.confusion_matrix": (
        lambda v: isinstance(v, list) and all(isinstance(row, list) for row in v),
        "a list of rows",
    ),
}
_ABSENT = object()


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _at(meta, path: str):
    """The value at a dotted key path of ``meta``, or _ABSENT."""
    value = meta
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return _ABSENT
        value = value[key]
    return value


def _describe(value) -> str:
    """A JSON value in a few words, for an error message."""
    kinds = {bool: "true/false", int: "a number", float: "a number", str: "text"}
    kind = "null" if value is None else kinds.get(type(value))
    kind = kind or ("a list" if isinstance(value, list) else "an object")
    text = json.dumps(value, default=str)
    return f"{kind} ({text[:40] + '...' if len(text) > 43 else text})"


def check_info(model_dir, meta) -> None:
    """Refuse (ModelError) a ``tabnn.json`` whose keys that ``tabnn info`` shows are
    missing or of another type."""
    from ..errors import ModelError

    where = f"Cannot describe '{model_dir}': its tabnn.json"
    fix = "It may have been written by another tabnn; tabnn info --json shows it as it is."
    for path, (ok, expected) in {**_INFO_FIELDS, **_OPTIONAL_FIELDS}.items():
        value = _at(meta, path)
        if value is _ABSENT:
            if path in _INFO_FIELDS:
                raise ModelError(f"{where} has no {path} (expected {expected}). {fix}")
            continue
        if not ok(value):
            raise ModelError(f"{where} has {path} = {_describe(value)}; expected {expected}. {fix}")


def info_parts(model_dir, meta: dict) -> list:
    """What :func:`show_info` prints, as lines and tables, checked first (ModelError)."""
    from ..errors import ModelError

    check_info(model_dir, meta)
    try:
        return _info_parts(model_dir, meta)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        raise ModelError(
            f"Cannot describe '{model_dir}': its tabnn.json has a part of an unexpected "
            f"shape ({type(error).__name__}: {error}). It may have been written by another "
            f"tabnn; tabnn info --json shows it as it is."
        ) from None


def _info_parts(model_dir, meta: dict) -> list:
    schema, config = meta["schema"], meta["model_config"]
    names = lambda values: _t(", ".join(map(str, values)))  # noqa: E731
    parts: list = [
        f"[bold]{_t(model_dir)}[/]: {schema['task']} classifier, tabnn "
        f"{_t(meta['tabnn_version'])}, saved {_t(meta.get('created', '?'))}",
        f"target: {names(schema['target'])}; classes: {names(schema['classes'])}",
        f"numeric ({len(schema['numeric'])}): {names(schema['numeric'])}",
        f"categorical ({len(schema['categorical'])}): {names(schema['categorical'])}",
    ]
    parts += [f"dropped {_t(c)}: {_t(reason)}" for c, reason in schema["dropped"].items()]
    ensemble = config.get("ensemble_size", 1)  # models saved before ensembles lack it
    inside = f", an efficient ensemble of {_t(ensemble)} inside each" if ensemble != 1 else ""
    embedding = config.get("numeric_embedding", "none")
    embedded = f", {_t(embedding)} numeric embeddings" if embedding != "none" else ""
    parts.append(
        f"network: hidden {_t(config['hidden'])}, {_t(config['activation'])}, dropout "
        f"{config['dropout']}{embedded}, {config['n_members']} member(s){inside}"
    )
    params = meta.get("params", {})
    # models saved before presets have neither; their bagging is None or a number
    if bags := bag_folds(params.get("bagging"), params.get("preset", "fast")):
        parts.append(f"bagged over {bags} folds (preset {_t(params.get('preset', 'fast'))})")
    threshold = meta.get("threshold")
    if schema["task"] != "multiclass" and threshold:
        parts.append(f"decision threshold {_t(threshold_text(threshold))}")
    if meta.get("temperature"):  # models saved before calibration have none
        parts.append(f"calibrated: {_t(temperature_text(meta['temperature'], schema['classes']))}")
    if twins := twins_line(meta.get("twins"), params):  # models saved before twins: none
        parts.append(_t(twins))
    training = meta.get("training")
    if training:
        rows = training.get("rows", {})
        counts = [f"{_t(rows[s])} {s}" for s in ("train", "validation", "test") if s in rows]
        if bags and counts and not rows.get("validation"):  # a bag holds each row out once
            counts = [c for c in counts if not c.endswith(" validation")]
            counts[0] += f" (each held out once by the bag of {bags})"
        parts.append(f"trained on {_t(training.get('source'))}: {', '.join(counts)} rows")
    if "evaluation" in meta:
        parts += score_parts(meta["evaluation"], title="Test rows at training time")
    return parts


def show_demo_intro() -> None:
    out_console.print(
        "[bold]tabnn demo[/]: sonar returns, 208 rows x 60 numbers, mine (M) or rock (R)?"
    )


def show_demo_predictions(predictions, n_test: int) -> None:
    """The held-out rows the saved model predicted, true label beside the prediction."""
    out_console.print(
        f"[bold]{len(predictions)} of the {n_test} test rows, predicted by the saved model[/]"
    )
    table = Table()
    probas = [c for c in predictions.columns if c.startswith("proba_")]
    for column in ["row", "true", "prediction", *probas]:
        table.add_column(column.replace("proba_", "P(") + (")" if column in probas else ""))
    table.add_column("")
    for _, row in predictions.iterrows():
        right = str(row["true"]) == str(row["prediction"])
        cells = [str(row["row"]), str(row["true"]), str(row["prediction"])]
        table.add_row(*cells, *[f"{row[c]:.3f}" for c in probas], "ok" if right else "wrong")
    out_console.print(table)


def show_demo_next(out) -> None:
    """The commands to try next on the demo's model."""
    out_console.print(f"next: tabnn info {out}")
    out_console.print(f"      tabnn predict {out} your.csv -o predictions.csv")
    out_console.print(f"      tabnn report {out} --open   (plots and tables in a browser)")
