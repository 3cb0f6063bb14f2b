"""The ``tabnn`` command line: thin commands over the library.

This is the only module that prints progress and turns errors into exit codes: 0 success,
2 usage errors (bad option, file or column not found), 1 data or model errors. User
errors print one clear line, never a traceback.
"""

from __future__ import annotations

import json
import sys
import tempfile
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from . import __version__
from .artifact import read_meta, to_jsonable
from .errors import TabnnError, UsageError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Turn a labelled table into a trained, honestly evaluated, shippable classifier.",
)
out_console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

# shared options
Sep = Annotated[str | None, typer.Option("--sep", help="Field delimiter (detected if omitted).")]
NoHeader = Annotated[
    bool, typer.Option("--no-header", help="The file has no header row; columns are 0..n-1.")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


@contextmanager
def user_errors():
    """Turn tabnn's own errors into a one-line message and their exit code."""
    try:
        yield
    except TabnnError as error:
        err_console.print(f"[bold red]error:[/] {error}", markup=True, soft_wrap=True)
        raise typer.Exit(error.exit_code) from None


def _names(text: str | None) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()] if text else []


def _hidden(model: str):
    """``default``, ``wide``, ``deep`` or ``mlp:256-128``."""
    if model.startswith("mlp:"):
        try:
            return [int(size) for size in model[4:].split("-")]
        except ValueError:
            raise UsageError(f"--model mlp:SIZES needs sizes like mlp:256-128; got {model!r}.")
    return model


def _print_json(payload) -> None:
    out_console.print_json(json.dumps(to_jsonable(payload)))


@app.command()
def train(
    data: Annotated[Path, typer.Argument(help="CSV, TSV, Parquet or ARFF file.")],
    target: Annotated[
        str, typer.Option("--target", "-t", help="Target column(s): name, index, -1, a,b,c, -6:.")
    ],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Model directory.")] = None,
    sep: Sep = None,
    no_header: NoHeader = False,
    label_sep: Annotated[
        str | None, typer.Option(help="Delimiter inside one multi-label target column.")
    ] = None,
    drop: Annotated[str | None, typer.Option(help="Columns to ignore, comma-separated.")] = None,
    categorical: Annotated[str | None, typer.Option(help="Columns to treat as categories.")] = None,
    numeric: Annotated[str | None, typer.Option(help="Columns to treat as numbers.")] = None,
    task: Annotated[
        str | None, typer.Option(help="binary, multiclass or multilabel (inferred).")
    ] = None,
    model: Annotated[str, typer.Option(help="default, wide, deep or mlp:256-128.")] = "default",
    activation: Annotated[str, typer.Option(help="relu, gelu, silu, selu, tanh, ...")] = "relu",
    dropout: Annotated[float, typer.Option(help="Dropout after each hidden layer.")] = 0.1,
    norm: Annotated[str, typer.Option(help="none, batch or layer.")] = "none",
    epochs: Annotated[int, typer.Option(help="Most epochs; early stopping ends sooner.")] = 200,
    batch_size: Annotated[str, typer.Option(help="Rows per step, or auto.")] = "auto",
    lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = 1e-3,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay.")] = 1e-4,
    patience: Annotated[int, typer.Option(help="Early-stopping patience in epochs.")] = 20,
    val_size: Annotated[float, typer.Option(help="Validation share of all rows.")] = 0.15,
    test_size: Annotated[float, typer.Option(help="Test share of all rows.")] = 0.15,
    class_weight: Annotated[
        str | None, typer.Option(help="'balanced' to weight classes by rarity.")
    ] = None,
    pos_weight: Annotated[
        float | None, typer.Option(help="Positive-class loss weight (binary).")
    ] = None,
    threshold: Annotated[float, typer.Option(help="Decision threshold (binary).")] = 0.5,
    scaling: Annotated[str, typer.Option(help="standard, robust or quantile.")] = "standard",
    ensemble: Annotated[int, typer.Option(help="Members trained together, averaged.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed: same seed, same model.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    quiet: Quiet = False,
    as_json: AsJson = False,
):
    """Train a classifier on DATA, evaluate it once on held-out test rows beside
    baselines, and save it as a model directory."""
    from .estimator import TabNNClassifier
    from .jobs import ReadOptions, train_job

    with user_errors():
        if class_weight not in (None, "balanced"):
            raise UsageError(f"--class-weight must be 'balanced'; got {class_weight!r}.")
        estimator = TabNNClassifier(
            hidden=_hidden(model),
            activation=activation,
            dropout=dropout,
            norm=norm,
            epochs=epochs,
            batch_size=batch_size if batch_size == "auto" else _int_option(batch_size),
            lr=lr,
            weight_decay=weight_decay,
            patience=patience,
            class_weight=class_weight,
            pos_weight=pos_weight,
            threshold=threshold,
            scaling=scaling,
            n_members=ensemble,
            categorical=_names(categorical),
            numeric=_names(numeric),
            drop=_names(drop),
            task=task,
            random_state=seed,
            device=device,
        )
        options = ReadOptions(sep=sep, header=not no_header, target=target, label_sep=label_sep)
        out = out or Path("tabnn-models") / Path(data).name.split(".")[0]
        with epoch_progress(epochs, quiet or as_json) as on_epoch:
            result = train_job(
                data,
                options,
                estimator,
                out=out,
                val_size=val_size,
                test_size=test_size,
                on_epoch=on_epoch,
            )
    if as_json:
        _print_json(vars(result))
    else:
        show_training(result)


def _int_option(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"--batch-size must be an integer or 'auto'; got {text!r}.") from None


@contextmanager
def epoch_progress(total: int, quiet: bool):
    """A progress bar over epochs on a terminal; nothing when quiet or piped."""
    if quiet or not err_console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [
        TextColumn("epoch {task.completed}/{task.total}"),
        BarColumn(),
        TextColumn("{task.fields[losses]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=err_console, transient=True) as progress:
        bar = progress.add_task("train", total=total, losses="")

        def on_epoch(record: dict) -> None:
            losses = f"train {_mean(record['train_loss']):.4f}"
            if record["val_loss"][0] is not None:
                losses += f"  val {_mean(record['val_loss']):.4f}"
                losses += f"  val acc {_mean(record['val_accuracy']):.3f}"
            progress.update(bar, completed=record["epoch"], losses=losses)

        yield on_epoch


def _mean(values) -> float:
    values = [v for v in values if v is not None]
    return sum(values) / max(1, len(values))


def show_training(result) -> None:
    """Readable summary of a training job."""
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
    show_scores(result.evaluation, title="Test rows (never used for any choice)")
    if result.model_dir is not None:
        out_console.print(f"model saved to [green]{result.model_dir}[/]")


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


def show_scores(evaluation: dict, *, title: str) -> None:
    """A metric x model table with the baselines beside the model, and the confusion matrix."""
    scores = evaluation.get("scores", {})
    if not scores:
        out_console.print("no test rows: nothing evaluated")
        return
    task = _task_of(scores["model"])
    table = Table(title=f"{title}: {evaluation['rows']} rows", title_justify="left")
    table.add_column("metric")
    for name in scores:
        table.add_column(name.replace("_", " "), justify="right")
    for metric in SHOWN[task]:
        table.add_row(metric, *[_fmt(scores[name].get(metric)) for name in scores])
    out_console.print(table)
    matrix = scores["model"].get("confusion_matrix")
    if matrix is not None:
        out_console.print("confusion matrix (rows: true class, columns: predicted):")
        for line in matrix:
            out_console.print("  " + " ".join(f"{v:>6}" for v in line))


def _task_of(scores: dict) -> str:
    if "hamming_loss" in scores:
        return "multilabel"
    return "binary" if "pr_auc" in scores else "multiclass"


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


@app.command("evaluate")
def evaluate_command(
    model_dir: Annotated[Path, typer.Argument(help="A model directory from tabnn train.")],
    data: Annotated[Path, typer.Argument(help="A labelled table with the target column(s).")],
    target: Annotated[str | None, typer.Option(help="Target column(s), if renamed.")] = None,
    sep: Sep = None,
    no_header: NoHeader = False,
    as_json: AsJson = False,
):
    """Score a saved model on every row of a labelled table."""
    from .jobs import ReadOptions, evaluate_job

    with user_errors():
        result = evaluate_job(model_dir, data, ReadOptions(sep, not no_header, target))
    if as_json:
        _print_json(result)
    else:
        show_scores(result, title=f"Evaluation on {data.name}")


@app.command()
def predict(
    model_dir: Annotated[Path, typer.Argument(help="A model directory from tabnn train.")],
    data: Annotated[Path, typer.Argument(help="Rows to predict (extra columns are ignored).")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write .csv or .parquet here.")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option(help="Decision threshold (binary/multi-label).")
    ] = None,
    sep: Sep = None,
    no_header: NoHeader = False,
    chunk_size: Annotated[int, typer.Option(help="Rows read at a time.")] = 50_000,
    quiet: Quiet = False,
):
    """Predict labels and class probabilities for every row of DATA."""
    from .jobs import ReadOptions, predict_job

    with user_errors():
        if threshold is not None and not 0 < threshold < 1:
            raise UsageError(f"--threshold must be between 0 and 1; got {threshold}.")
        options = ReadOptions(sep, not no_header)
        result = predict_job(
            model_dir, data, options, out=out, threshold=threshold, chunksize=chunk_size
        )
    if out is None:
        sys.stdout.write(result.to_csv(index=False))
    elif not quiet:
        err_console.print(f"wrote {result} predictions to [green]{out}[/]")


@app.command()
def info(
    model_dir: Annotated[Path, typer.Argument(help="A model directory.")],
    as_json: AsJson = False,
):
    """Show a saved model's schema, classes, training and metrics."""
    with user_errors():
        meta = read_meta(model_dir)
    if as_json:
        _print_json(meta)
        return
    schema = meta["schema"]
    out_console.print(f"[bold]{model_dir}[/]: tabnn {meta['tabnn_version']}, {schema['task']}")
    out_console.print(f"target: {', '.join(schema['target'])}; classes: {schema['classes']}")
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
    if "evaluation" in meta:
        show_scores(meta["evaluation"], title="Test rows at training time")


@app.command()
def demo(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Model directory.")] = None,
    quiet: Quiet = False,
):
    """Train and evaluate on the bundled Sonar data (mines vs rocks), then predict 5 rows."""
    from .estimator import TabNNClassifier
    from .jobs import ReadOptions, predict_job, train_job

    source = resources.files("tabnn") / "datasets" / "sonar.csv"
    out_console.print(
        "[bold]tabnn demo[/]: sonar returns, 208 rows x 60 numbers, mine (M) or rock (R)?"
    )
    with user_errors(), resources.as_file(source) as path:
        out = out or Path(tempfile.mkdtemp(prefix="tabnn-demo-")) / "sonar-model"
        options = ReadOptions(header=False, target="-1")
        with epoch_progress(200, quiet) as on_epoch:
            result = train_job(path, options, TabNNClassifier(), out=out, on_epoch=on_epoch)
        show_training(result)
        predictions = predict_job(out, path, ReadOptions(header=False), out=None)
    table = Table(title="Five rows predicted by the saved model", title_justify="left")
    for column in predictions.columns:
        table.add_column(column, justify="right")
    for _, row in predictions.sample(5, random_state=0).sort_values("row").iterrows():
        table.add_row(*[_fmt(v) if isinstance(v, float) else str(v) for v in row])
    out_console.print(table)
    out_console.print(f"next: tabnn info {out} / tabnn predict {out} your.csv -o predictions.csv")


def _version(value: bool) -> None:
    if value:
        out_console.print(f"tabnn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
):
    """tabnn: labelled table in, trained and honestly evaluated classifier out."""


def main() -> None:
    app()
