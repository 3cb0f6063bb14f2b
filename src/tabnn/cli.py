"""The ``tabnn`` command line: thin commands over the library.

This is the only module that prints progress and turns errors into exit codes: 0 success,
2 usage errors (bad option, file or column not found), 1 data or model errors. User
errors print one clear message, never a traceback, and leave nothing written behind.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import __version__
from .artifact import read_meta, threshold_info, to_jsonable
from .errors import TabnnError, UsageError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain Click help: docstring paragraphs are re-wrapped
    help="Turn a labelled table into a trained, honestly evaluated, shippable classifier.",
)
# soft_wrap: sentences are never broken at 80 columns when the output goes to a pipe
out_console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

INTERRUPTED = 130  # the shell's code for a command stopped by Ctrl-C


# --------------------------------------------------------------------------- option checks
# Each runs while the command line is parsed, so a bad value exits 2 before any file is read.


def _choice(*allowed: str):
    def check(value: str | None) -> str | None:
        if value is not None and value not in allowed:
            raise typer.BadParameter(f"expected one of {', '.join(allowed)}; got {value!r}.")
        return value

    return check


def _in_range(low: float, high: float, *, low_open: bool = False, high_open: bool = False):
    left, right = "(" if low_open else "[", ")" if high_open else "]"
    shown = f"{left}{low:g}, {'inf' if high == float('inf') else f'{high:g}'}{right}"

    def check(value: float | None) -> float | None:
        if value is None:
            return value
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        if not (above and below):
            raise typer.BadParameter(f"expected a number in {shown}; got {value:g}.")
        return value

    return check


def _at_least(low: int):
    def check(value: int | None) -> int | None:
        if value is not None and value < low:
            raise typer.BadParameter(f"expected a whole number >= {low}; got {value}.")
        return value

    return check


def _check_model(value: str) -> str:
    """``default``, ``wide``, ``deep`` or ``mlp:256-128``."""
    if value in ("default", "wide", "deep"):
        return value
    sizes = value[4:].split("-") if value.startswith("mlp:") else []
    if not sizes or not all(size.isdigit() and int(size) > 0 for size in sizes):
        raise typer.BadParameter(
            f"expected default, wide, deep or mlp:SIZES such as mlp:256-128; got {value!r}."
        )
    return value


def _check_batch_size(value: str) -> str:
    if value != "auto" and not (value.isdigit() and int(value) > 0):
        raise typer.BadParameter(f"expected 'auto' or a whole number >= 1; got {value!r}.")
    return value


def _check_device(value: str) -> str:
    name, _, index = value.partition(":")
    if value not in ("auto", "cpu") and not (name == "cuda" and (index == "" or index.isdigit())):
        raise typer.BadParameter(f"expected auto, cpu, cuda or cuda:N; got {value!r}.")
    if name == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise typer.BadParameter(
                f"{value!r} asked for, but PyTorch sees no CUDA device here; use cpu or auto."
            )
    return value


def _check_threshold(value: str) -> str | float:
    """``auto`` or a number in (0, 1)."""
    if value == "auto":
        return value
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is None or not 0 < number < 1:
        raise typer.BadParameter(f"expected a number in (0, 1) or auto; got {value!r}.")
    return number


def _check_threshold_metric(value: str | None) -> str | None:
    from .evaluate import parse_threshold_metric

    if value is None:
        return value
    try:
        parse_threshold_metric(value)
    except UsageError as error:
        raise typer.BadParameter(
            f"expected f1, balanced_accuracy, mcc, recall>=R or precision>=P with R, P in "
            f"(0, 1]; got {value!r}."
        ) from error
    return value


def _activations() -> tuple[str, ...]:
    from .model import ACTIVATIONS

    return tuple(ACTIVATIONS)


def _check_activation(value: str) -> str:
    return _choice(*_activations())(value)


# --------------------------------------------------------------------------- shared options

Sep = Annotated[str | None, typer.Option("--sep", help="Field delimiter (detected if omitted).")]
TrainHeader = Annotated[
    bool | None,
    typer.Option(
        "--header/--no-header",
        help="Whether the first line holds column names; without, columns are 0..n-1 "
        "(default: detected: names are text where the columns hold numbers, a first line "
        "with numbers is data).",
        show_default=False,
    ),
]
Header = Annotated[
    bool | None,
    typer.Option(
        "--header/--no-header",
        help="Whether the file has a header row (default: as the model's training file).",
        show_default=False,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or notes.")]
ReportOpt = Annotated[
    bool,
    typer.Option(
        "--report/--no-report",
        help="Write report.html (plots and tables; its data is stored in any case).",
    ),
]
TensorBoardOpt = Annotated[
    str | None,
    typer.Option(
        "--tensorboard",
        metavar="DIR",
        help="Write per-epoch scalars of every member to TensorBoard event files in DIR "
        "(extra: tabnn[tensorboard]).",
    ),
]
MlflowOpt = Annotated[
    str | None,
    typer.Option(
        "--mlflow",
        metavar="URI",
        help="Log parameters, per-epoch and final metrics and the model directory to this "
        "MLflow tracking URI, e.g. sqlite:///mlflow.db (extra: tabnn[mlflow]).",
    ),
]
Fraction = _in_range(0, 1, high_open=True)


@contextmanager
def user_errors():
    """Turn tabnn's own errors (and file-system refusals) into a message and an exit code."""
    try:
        yield
    except TabnnError as error:
        _fail(str(error), error.exit_code)
    except OSError as error:  # permission denied, disk full, ...: the user's to fix
        where = f" '{error.filename}'" if error.filename else ""
        _fail(f"{error.strerror or error}{where}.", 1)
    except KeyboardInterrupt:
        _fail("interrupted; nothing was written.", INTERRUPTED)


def _fail(message: str, code: int):
    # escaped: messages quote user values and extras such as tabnn[mlflow] verbatim
    err_console.print(f"[bold red]error:[/] {escape(message)}", markup=True)
    raise typer.Exit(code) from None


def _names(text: str | None) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()] if text else []


def _hidden(model: str):
    """The estimator's ``hidden`` for a checked --model value."""
    return [int(size) for size in model[4:].split("-")] if model.startswith("mlp:") else model


def _print_json(payload) -> None:
    """Plain JSON on stdout (no colour, no wrapping), for scripts."""
    sys.stdout.write(json.dumps(to_jsonable(payload), indent=2) + "\n")


# --------------------------------------------------------------------------- train


# options shared by train and compare
TargetOpt = Annotated[
    str, typer.Option("--target", "-t", help="Target column(s): name, index, -1, a,b,c, -6:.")
]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="Model directory (default: tabnn-models/NAME)."),
]
LabelSepOpt = Annotated[
    str | None, typer.Option(help="Delimiter inside one multi-label target column.")
]
DropOpt = Annotated[str | None, typer.Option(help="Columns to ignore, comma-separated.")]
CategoricalOpt = Annotated[str | None, typer.Option(help="Columns to treat as categories.")]
NumericOpt = Annotated[str | None, typer.Option(help="Columns to treat as numbers.")]
TaskOpt = Annotated[
    str | None,
    typer.Option(
        help="binary, multiclass or multilabel (inferred).",
        callback=_choice("binary", "multiclass", "multilabel"),
    ),
]
ActivationOpt = Annotated[
    str, typer.Option(help="relu, gelu, silu, selu, tanh, ...", callback=_check_activation)
]
DropoutOpt = Annotated[
    float, typer.Option(help="Dropout after each hidden layer.", callback=Fraction)
]
NormOpt = Annotated[
    str, typer.Option(help="none, batch or layer.", callback=_choice("none", "batch", "layer"))
]
EpochsOpt = Annotated[
    int, typer.Option(help="Most epochs; early stopping ends sooner.", callback=_at_least(1))
]
BatchSizeOpt = Annotated[
    str, typer.Option(help="Rows per step, or auto.", callback=_check_batch_size)
]
LrOpt = Annotated[
    float,
    typer.Option(help="AdamW learning rate.", callback=_in_range(0, float("inf"), low_open=True)),
]
WeightDecayOpt = Annotated[
    float, typer.Option(help="AdamW weight decay.", callback=_in_range(0, float("inf")))
]
PatienceOpt = Annotated[
    int, typer.Option(help="Early-stopping patience in epochs.", callback=_at_least(1))
]
TestSizeOpt = Annotated[float, typer.Option(help="Test share of all rows.", callback=Fraction)]
ThresholdMetricOpt = Annotated[
    str | None,
    typer.Option(
        help="What --threshold auto maximises on the validation rows: f1 (default), "
        "balanced_accuracy, mcc, 'recall>=0.9' (highest precision with that recall) or "
        "'precision>=0.9' (highest recall with that precision).",
        callback=_check_threshold_metric,
        show_default=False,
    ),
]
ClassWeightOpt = Annotated[
    str | None,
    typer.Option(help="'balanced' to weight classes by rarity.", callback=_choice("balanced")),
]
PosWeightOpt = Annotated[
    float | None,
    typer.Option(
        help="Positive-class loss weight (binary).",
        callback=_in_range(0, float("inf"), low_open=True),
    ),
]
ScalingOpt = Annotated[
    str,
    typer.Option(
        help="standard, robust or quantile.",
        callback=_choice("standard", "robust", "quantile"),
    ),
]
SeedOpt = Annotated[int, typer.Option(help="Seed: same seed, same model.")]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.", callback=_check_device)]


@app.command()
def train(
    data: Annotated[Path, typer.Argument(help="CSV, TSV, Parquet or ARFF file.")],
    target: TargetOpt,
    out: OutOpt = None,
    sep: Sep = None,
    header: TrainHeader = None,
    label_sep: LabelSepOpt = None,
    drop: DropOpt = None,
    categorical: CategoricalOpt = None,
    numeric: NumericOpt = None,
    task: TaskOpt = None,
    model: Annotated[
        str, typer.Option(help="default, wide, deep or mlp:256-128.", callback=_check_model)
    ] = "default",
    activation: ActivationOpt = "relu",
    dropout: DropoutOpt = 0.1,
    norm: NormOpt = "none",
    epochs: EpochsOpt = 200,
    batch_size: BatchSizeOpt = "auto",
    lr: LrOpt = 1e-3,
    weight_decay: WeightDecayOpt = 1e-4,
    patience: PatienceOpt = 20,
    val_size: Annotated[
        float, typer.Option(help="Validation share of all rows.", callback=Fraction)
    ] = 0.15,
    test_size: TestSizeOpt = (0.15),
    class_weight: ClassWeightOpt = None,
    pos_weight: PosWeightOpt = None,
    threshold: Annotated[
        str,
        typer.Option(
            help="Decision threshold (binary; also per label for multi-label), or auto: "
            "chosen on the validation rows after training, see --threshold-metric.",
            callback=_check_threshold,
        ),
    ] = "0.5",
    threshold_metric: ThresholdMetricOpt = None,
    scaling: ScalingOpt = "standard",
    ensemble: Annotated[
        int, typer.Option(help="Members trained together, averaged.", callback=_at_least(1))
    ] = 1,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    report: ReportOpt = True,
    tensorboard: TensorBoardOpt = None,
    mlflow: MlflowOpt = None,
    quiet: Quiet = False,
    as_json: AsJson = False,
):
    """Train a classifier on DATA, evaluate it once on held-out test rows beside
    baselines, and save it as a model directory with its report."""
    from .estimator import TabNNClassifier
    from .jobs import Outputs, ReadOptions, train_job

    with user_errors():
        if val_size + test_size >= 1:
            raise UsageError(
                f"--val-size + --test-size must be below 1; got {val_size} + {test_size}."
            )
        estimator = TabNNClassifier(
            **_estimator_params(locals()), hidden=_hidden(model), n_members=ensemble
        )
        options = ReadOptions(sep=sep, header=header, target=target, label_sep=label_sep)
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
                outputs=Outputs(report, tensorboard, mlflow),
            )
    if as_json:
        _print_json({k: v for k, v in vars(result).items() if k != "test_rows"})
    else:
        show_training(result)


def _estimator_params(options: dict) -> dict:
    """TabNNClassifier parameters from the options train and compare share."""
    batch_size = options["batch_size"]
    return dict(
        **_threshold_params(options["threshold"], options["threshold_metric"]),
        activation=options["activation"],
        dropout=options["dropout"],
        norm=options["norm"],
        epochs=options["epochs"],
        batch_size=batch_size if batch_size == "auto" else int(batch_size),
        lr=options["lr"],
        weight_decay=options["weight_decay"],
        patience=options["patience"],
        class_weight=options["class_weight"],
        pos_weight=options["pos_weight"],
        scaling=options["scaling"],
        categorical=_names(options["categorical"]),
        numeric=_names(options["numeric"]),
        drop=_names(options["drop"]),
        task=options["task"],
        random_state=options["seed"],
        device=options["device"],
    )


def _threshold_params(threshold, metric: str | None) -> dict:
    """``threshold`` and ``threshold_metric``; a metric only goes with --threshold auto."""
    if metric is not None and threshold != "auto":
        raise UsageError(
            f"--threshold-metric {metric} chooses how --threshold auto tunes the threshold; "
            f"add --threshold auto, or leave --threshold-metric out."
        )
    return {"threshold": threshold, "threshold_metric": metric or "f1"}


def show_progress(quiet: bool) -> bool:
    """Progress bars only for a person at a terminal: not with --quiet, not when stderr is
    piped, not in CI (the CI variable that CI services set)."""
    return not quiet and err_console.is_terminal and not os.environ.get("CI")


@contextmanager
def epoch_progress(total: int, quiet: bool):
    """A progress bar over epochs on a terminal; nothing when quiet, piped or in CI."""
    if not show_progress(quiet):
        yield None
        return
    with _epoch_bar(total) as (progress, bar):
        yield _epoch_updater(progress, bar)


@contextmanager
def _epoch_bar(total: int):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [
        TextColumn("{task.fields[stage]}"),
        TextColumn("epoch {task.completed}/{task.total}"),
        BarColumn(),
        TextColumn("{task.fields[losses]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=err_console, transient=True) as progress:
        yield progress, progress.add_task("train", total=total, stage="", losses="")


def _epoch_updater(progress, bar):
    """on_epoch for a bar: mean losses over the members still training, and how many are."""

    def on_epoch(record: dict) -> None:
        live = [v for v in record["train_loss"] if v is not None]
        losses = f"train {_mean(live):.4f}"
        if any(v is not None for v in record["val_loss"]):
            losses += f"  val {_mean(record['val_loss']):.4f}"
            losses += f"  val acc {_mean(record['val_accuracy']):.3f}"
        if len(record["train_loss"]) > 1:
            losses += f"  {len(live)}/{len(record['train_loss'])} training"
        progress.update(bar, completed=record["epoch"], losses=losses)

    return on_epoch


def _mean(values) -> float:
    values = [v for v in values if v is not None]
    return sum(values) / max(1, len(values))


def show_training(result, *, metrics: list[str] | None = None) -> None:
    """Readable summary of a training job (``metrics`` narrows the score table)."""
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
        out_console.print(f"report: [green]{result.report}[/]")
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
        out_console.print(f"threshold {_threshold_text(threshold)}")


def _threshold_text(threshold: dict) -> str:
    """'0.37 chosen on 32 validation rows, maximising F1 (0.860)', or just '0.5'."""
    from .evaluate import describe_threshold

    text = f"{threshold['value']:.4g}"
    tuning = threshold.get("tuning")
    if not tuning:
        return text
    text += f" chosen on {tuning['rows']} validation rows"
    if tuning["members"] > 1 and tuning["members_per_row"] == tuning["members"]:
        text += f" (the {tuning['members']} members' mean probability)"
    elif tuning["members"] > 1:
        text += " (each scored by the members that held it out for validation)"
    return f"{text}, {describe_threshold(tuning)}"


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
COLUMN_ORDER = ("model", "most_frequent", "label_frequency", "logistic_regression")


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


# --------------------------------------------------------------------------- evaluate


@app.command()
def compare(
    data: Annotated[Path, typer.Argument(help="CSV, TSV, Parquet or ARFF file.")],
    target: TargetOpt,
    models: Annotated[
        str, typer.Option(help="Designs to compare: default, wide, deep, mlp:256-128, ...")
    ] = "wide,deep,default",
    folds: Annotated[int, typer.Option(help="Stratified folds.", callback=_at_least(2))] = 5,
    repeats: Annotated[
        int, typer.Option(help="Repeats of the k folds.", callback=_at_least(1))
    ] = 1,
    metric: Annotated[
        str | None, typer.Option(help="Metric to rank by (accuracy, f1, roc_auc, log_loss, ...).")
    ] = None,
    refit: Annotated[
        str,
        typer.Option(
            help="full: refit the winner on all training rows; ensemble: keep its fold models.",
            callback=_choice("full", "ensemble"),
        ),
    ] = "full",
    nested: Annotated[
        bool, typer.Option("--nested", help="Also run nested CV of the whole selection.")
    ] = False,
    out: OutOpt = None,
    sep: Sep = None,
    header: TrainHeader = None,
    label_sep: LabelSepOpt = None,
    drop: DropOpt = None,
    categorical: CategoricalOpt = None,
    numeric: NumericOpt = None,
    task: TaskOpt = None,
    activation: ActivationOpt = "relu",
    dropout: DropoutOpt = 0.1,
    norm: NormOpt = "none",
    epochs: EpochsOpt = 200,
    batch_size: BatchSizeOpt = "auto",
    lr: LrOpt = 1e-3,
    weight_decay: WeightDecayOpt = 1e-4,
    patience: PatienceOpt = 20,
    test_size: TestSizeOpt = 0.15,
    class_weight: ClassWeightOpt = None,
    pos_weight: PosWeightOpt = None,
    threshold: Annotated[
        str,
        typer.Option(
            help="Decision threshold of the saved winner (binary), or auto: chosen on its "
            "validation rows. The CV fold scores always use 0.5.",
            callback=_check_threshold,
        ),
    ] = "0.5",
    threshold_metric: ThresholdMetricOpt = None,
    scaling: ScalingOpt = "standard",
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    report: ReportOpt = True,
    tensorboard: TensorBoardOpt = None,
    mlflow: MlflowOpt = None,
    quiet: Quiet = False,
    as_json: AsJson = False,
):
    """Compare model designs by stratified k-fold cross-validation on the training rows
    (all folds of a design train as one stack), refit the winner, test it once, save it
    with its report."""
    from .compare import parse_design
    from .jobs import Outputs, ReadOptions, compare_job

    with user_errors():
        designs = _names(models)
        for name in designs:
            parse_design(name)
        if not designs:
            raise UsageError("--models needs at least one design, e.g. wide,deep.")
        options = ReadOptions(sep=sep, header=header, target=target, label_sep=label_sep)
        out = out or Path("tabnn-models") / Path(data).name.split(".")[0]
        with design_progress(designs, epochs, quiet or as_json) as (on_design, on_epoch):
            result = compare_job(
                data,
                options,
                designs,
                out=out,
                params=_estimator_params(locals()),
                folds=folds,
                repeats=repeats,
                metric=metric,
                refit=refit,
                test_size=test_size,
                nested=nested,
                on_design=on_design,
                on_epoch=on_epoch,
                outputs=Outputs(report, tensorboard, mlflow),
            )
    if as_json:
        threshold = threshold_info(result.estimator)
        extra = {"model_dir": result.model_dir, "source": result.source, "threshold": threshold}
        _print_json({**result.to_dict(), **extra})
    else:
        show_comparison(result)


@contextmanager
def design_progress(designs: list[str], epochs: int, quiet: bool):
    """A bar over each design's epochs (its folds train together) and the refit, naming
    the stage; nothing when quiet, piped or in CI. Yields (on_design, on_epoch)."""
    if not show_progress(quiet):
        yield None, None
        return
    with _epoch_bar(epochs) as (progress, bar):

        def on_design(name: str) -> None:
            stage = (
                "refit" if name == "refit" else f"{name} ({designs.index(name) + 1}/{len(designs)})"
            )
            progress.reset(bar, total=epochs, stage=stage, losses="")

        yield on_design, _epoch_updater(progress, bar)


def show_comparison(result) -> None:
    """Per-fold scores, mean +- std and rank per design, the paired test, the winner and
    its single test evaluation."""
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
    show_threshold(threshold_info(result.estimator))
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


@app.command("evaluate")
def evaluate_command(
    model_dir: Annotated[Path, typer.Argument(help="A model directory from tabnn train.")],
    data: Annotated[Path, typer.Argument(help="A labelled table with the target column(s).")],
    target: Annotated[
        str | None, typer.Option("--target", "-t", help="Target column(s), if renamed.")
    ] = None,
    sep: Sep = None,
    header: Header = None,
    report: ReportOpt = True,
    as_json: AsJson = False,
):
    """Score a saved model on every row of a labelled table; the report goes to
    MODEL_DIR/evaluations/<file name>/report.html."""
    from .jobs import Outputs, ReadOptions, evaluate_job

    with user_errors():
        result = evaluate_job(
            model_dir, data, ReadOptions(sep, header, target), Outputs(report=report)
        )
    if as_json:
        _print_json(result)
        return
    if result["dropped_targets"]:
        out_console.print(f"dropped {result['dropped_targets']} rows with a missing target")
    show_scores(result, title=f"Evaluation on {data.name}")
    if "report" in result:
        out_console.print(f"report: [green]{result['report']}[/]")


# --------------------------------------------------------------------------- predict


@app.command()
def predict(
    model_dir: Annotated[Path, typer.Argument(help="A model directory from tabnn train.")],
    data: Annotated[Path, typer.Argument(help="Rows to predict (extra columns are ignored).")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write .csv or .parquet here (default: CSV to stdout)."),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            help="Decision threshold (binary/multi-label); the model's if omitted.",
            callback=_in_range(0, 1, low_open=True, high_open=True),
        ),
    ] = None,
    sep: Sep = None,
    header: Header = None,
    chunk_size: Annotated[
        int, typer.Option(help="Rows read at a time.", callback=_at_least(1))
    ] = 50_000,
    quiet: Quiet = False,
):
    """Predict labels and class probabilities for every row of DATA.

    Columns: row (0-based data row), prediction (labels if multi-label), proba_CLASS.
    """
    from .jobs import ReadOptions, predict_job

    with user_errors(), chunk_progress(quiet) as on_chunk:
        options = ReadOptions(sep, header)
        result = predict_job(
            model_dir,
            data,
            options,
            out=out,
            threshold=threshold,
            chunksize=chunk_size,
            on_chunk=on_chunk,
        )
    if out is None:
        sys.stdout.write(result.to_csv(index=False))
    elif not quiet:
        err_console.print(f"wrote {result} predictions to [green]{out}[/]")


@contextmanager
def chunk_progress(quiet: bool):
    """A running count of the rows predicted so far; nothing when quiet, piped or in CI."""
    if not show_progress(quiet):
        yield None
        return
    with err_console.status("predicting") as status:

        def on_chunk(rows: int) -> None:
            status.update(f"predicted {rows:,} rows")

        yield on_chunk


# --------------------------------------------------------------------------- report


@app.command()
def report(
    model_dir: Annotated[
        Path,
        typer.Argument(help="A model directory (or one of its evaluations/<file> directories)."),
    ],
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the report in the web browser.")
    ] = False,
):
    """Draw report.html again from the report data stored in MODEL_DIR."""
    from .report import REPORT_JSON, ReportData, write_report

    with user_errors():
        if not (model_dir / REPORT_JSON).is_file():
            raise UsageError(
                f"'{model_dir}' holds no report data ({REPORT_JSON}): expected a model "
                f"directory saved by tabnn train or compare, or an evaluations/<file> "
                f"directory made by tabnn evaluate."
            )
        path = write_report(ReportData.load(model_dir), model_dir)
    out_console.print(f"report: [green]{path}[/]")
    if open_browser:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())


# --------------------------------------------------------------------------- info


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
        out_console.print(f"decision threshold {_threshold_text(meta['threshold'])}")
    training = meta.get("training")
    if training:
        rows = training.get("rows", {})
        out_console.print(
            f"trained on {training.get('source')}: {rows.get('train')} train, "
            f"{rows.get('validation')} validation, {rows.get('test')} test rows"
        )
    if "evaluation" in meta:
        show_scores(meta["evaluation"], title="Test rows at training time")


# --------------------------------------------------------------------------- demo

DEMO_METRICS = ["accuracy", "balanced_accuracy", "roc_auc", "log_loss"]
DEMO_ROWS = 5


@app.command()
def demo(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Model directory.")] = None,
    quiet: Quiet = False,
):
    """Train and evaluate on the bundled Sonar data (mines vs rocks), then let the saved
    model predict 5 held-out test rows beside their true labels."""
    from .estimator import TabNNClassifier
    from .jobs import ReadOptions, predict_rows, train_job

    source = resources.files("tabnn") / "datasets" / "sonar.csv"
    out_console.print(
        "[bold]tabnn demo[/]: sonar returns, 208 rows x 60 numbers, mine (M) or rock (R)?"
    )
    with user_errors(), resources.as_file(source) as path:
        out = out or Path(tempfile.mkdtemp(prefix="tabnn-demo-")) / "sonar-model"
        options = ReadOptions(header=False, target="-1")
        with epoch_progress(200, quiet) as on_epoch:
            result = train_job(path, options, TabNNClassifier(), out=out, on_epoch=on_epoch)
        show_training(result, metrics=DEMO_METRICS)
        rows = _spread(result.test_rows, DEMO_ROWS)
        predictions = predict_rows(out, path, ReadOptions(header=False), rows)
    show_demo_predictions(predictions, len(result.test_rows))
    out_console.print(f"next: tabnn info {out}")
    out_console.print(f"      tabnn predict {out} your.csv -o predictions.csv")
    out_console.print(f"      tabnn report {out} --open   (plots and tables in a browser)")


def _spread(rows: list[int], n: int) -> list[int]:
    """``n`` rows evenly spread over a sorted list (every row when there are fewer)."""
    ordered = sorted(rows)
    if len(ordered) <= n:
        return ordered
    step = len(ordered) / n
    return [ordered[int(i * step)] for i in range(n)]


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


# --------------------------------------------------------------------------- root


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
