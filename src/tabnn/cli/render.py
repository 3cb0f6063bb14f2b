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

from ..tasks import BASELINES

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


def print_json(payload) -> None:
    """Plain JSON on stdout (no colour, no wrapping), for scripts."""
    from ..io import to_jsonable

    sys.stdout.write(json.dumps(to_jsonable(payload), indent=2) + "\n")


def show_version(version: str) -> None:
    out_console.print(f"tabnn {version}")


def show_written(count: int, out) -> None:
    """How many predictions went to which file (on stderr: stdout may be the data)."""
    err_console.print(f"wrote {count} predictions to [green]{out}[/]")


def show_report(path) -> None:
    out_console.print(f"report: [green]{path}[/]")


# --------------------------------------------------------------------------- training


def show_training(result, *, metrics: list[str] | None = None) -> None:
    """Readable summary of a training workflow (``metrics`` narrows the score table)."""
    show_source(result.source)
    rows = result.rows
    out_console.print(
        f"[bold]{result.task}[/] task, classes {', '.join(map(str, result.classes))}; rows: "
        f"{rows['train']} train, {rows['validation']} validation, {rows['test']} test"
    )
    if result.dropped_targets:
        out_console.print(f"dropped {result.dropped_targets} rows with a missing target")
    for column, reason in result.dropped_columns.items():
        out_console.print(f"dropped column [cyan]{column}[/]: {reason}")
    out_console.print(
        f"trained in {result.seconds:.1f} s, best epoch {', '.join(map(str, result.best_epochs))}"
    )
    show_threshold(result.threshold)
    show_scores(result.evaluation, title="Test rows (never used for any choice)", metrics=metrics)
    show_outputs(result)


def show_outputs(result) -> None:
    """Where the model, its report and the tracked run went."""
    if result.model_dir is not None:
        out_console.print(f"model saved to [green]{result.model_dir}[/]")
    if getattr(result, "report", None) is not None:
        show_report(result.report)
    for destination in getattr(result, "tracking", []):
        out_console.print(f"logged to {destination}")


def show_source(source: dict) -> None:
    """The file read, its size and whether its first line was taken as column names."""
    if not source:
        return
    line = f"read {source['file']}: {source['rows']} rows, {source['columns']} columns"
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


def threshold_text(threshold: dict) -> str:
    """'0.37 chosen on 32 validation rows, maximising F1 (0.860)', or just '0.5'."""
    text = f"{threshold['value']:.4g}"
    tuning = threshold.get("tuning")
    if not tuning:
        return text
    from ..evaluation.threshold import describe_threshold

    text += f" chosen on {tuning['rows']} validation rows"
    if tuning["members"] > 1 and tuning["members_per_row"] == tuning["members"]:
        text += f" (the {tuning['members']} members' mean probability)"
    elif tuning["members"] > 1:
        text += " (each scored by the members that held it out for validation)"
    return f"{text}, {describe_threshold(tuning)}"


# --------------------------------------------------------------------------- scores


def show_scores(evaluation: dict, *, title: str, metrics: list[str] | None = None) -> None:
    """A metric x model table with the baselines beside the model, and the confusion matrix
    (left out when ``metrics`` narrows the table)."""
    scores = evaluation.get("scores", {})
    if not scores:
        out_console.print("no test rows: nothing evaluated")
        return
    task = _task_of(scores["model"])
    names = sorted(scores, key=lambda n: (COLUMN_ORDER + (n,)).index(n))
    out_console.print(f"[bold]{title}[/]: {evaluation['rows']} rows")
    table = Table()
    table.add_column("metric")
    for name in names:
        table.add_column(name.replace("_", " "), justify="right")
    for metric in metrics or SHOWN[task]:
        table.add_row(metric, *[_fmt(scores[name].get(metric)) for name in names])
    out_console.print(table)
    matrix = scores["model"].get("confusion_matrix")
    if matrix is not None and metrics is None:
        out_console.print("confusion matrix (rows: true class, columns: predicted):")
        for line in matrix:
            out_console.print("  " + " ".join(f"{v:>6}" for v in line))


def _task_of(scores: dict) -> str:
    if "hamming_loss" in scores:
        return "multilabel"
    return "binary" if "pr_auc" in scores else "multiclass"


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


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
    out_console.print(f"winner: [bold]{comparison.winner}[/] ({how})")
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
    """A saved model's schema, classes, network, threshold, training and test scores."""
    schema = meta["schema"]
    out_console.print(
        f"[bold]{model_dir}[/]: {schema['task']} classifier, tabnn {meta['tabnn_version']}, "
        f"saved {meta.get('created', '?')}"
    )
    out_console.print(
        f"target: {', '.join(schema['target'])}; classes: {', '.join(map(str, schema['classes']))}"
    )
    out_console.print(f"numeric ({len(schema['numeric'])}): {', '.join(schema['numeric'])}")
    out_console.print(
        f"categorical ({len(schema['categorical'])}): {', '.join(schema['categorical'])}"
    )
    for column, reason in schema["dropped"].items():
        out_console.print(f"dropped {column}: {reason}")
    config = meta["model_config"]
    out_console.print(
        f"network: hidden {config['hidden']}, {config['activation']}, dropout {config['dropout']}, "
        f"{config['n_members']} member(s)"
    )
    if schema["task"] != "multiclass" and meta.get("threshold"):
        out_console.print(f"decision threshold {threshold_text(meta['threshold'])}")
    training = meta.get("training")
    if training:
        rows = training.get("rows", {})
        counts = [f"{rows[s]} {s}" for s in ("train", "validation", "test") if s in rows]
        out_console.print(f"trained on {training.get('source')}: {', '.join(counts)} rows")
    if "evaluation" in meta:
        show_scores(meta["evaluation"], title="Test rows at training time")


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
