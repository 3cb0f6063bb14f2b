"""The ``tabnn`` command line: the Typer app and its commands, thin over the library.

This is the only place that turns errors into exit codes: 0 success, 2 usage errors (bad
option, file or column not found), 1 data or model errors. User errors print one clear
message, never a traceback, and leave nothing written behind.

Start-up is kept short: at module level only typer, rich, the standard library and tabnn's
light modules (errors, tasks, designs) load; each command imports the library parts it needs
(torch, pandas, ...) when it runs, so ``tabnn --help`` and ``tabnn --version`` load none.
"""

from __future__ import annotations

import signal
import sys
import tempfile
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from .. import __version__
from ..errors import UsageError
from ..nn.designs import design_params
from . import render
from .export import export
from .guard import ClosedPipeSafe, raise_terminated, user_errors
from .options import (
    ActivationOpt,
    AsJson,
    BaggingOpt,
    BatchSizeOpt,
    CalibrateOpt,
    CategoricalOpt,
    ClassWeightOpt,
    DataFile,
    DeviceOpt,
    DropOpt,
    DropoutOpt,
    EpochsOpt,
    Header,
    LabelSepOpt,
    LrOpt,
    MlflowOpt,
    ModelDir,
    ModelOpt,
    NormOpt,
    NumericOpt,
    OutOpt,
    PatienceOpt,
    PosWeightOpt,
    PredictQuiet,
    PresetOpt,
    ProgressOnly,
    Quiet,
    ReportOpt,
    ScalingOpt,
    SeedOpt,
    Sep,
    TargetOpt,
    TaskOpt,
    TensorBoardOpt,
    TestSizeOpt,
    ThresholdMetricOpt,
    TrainHeader,
    TwinsOpt,
    ValSizeOpt,
    WeightDecayOpt,
    at_least,
    bagging_param,
    check_threshold,
    choice,
    default_out,
    estimator_params,
    hidden,
    in_range,
    names,
)
from .progress import chunk_progress, design_progress, epoch_progress
from .serve import serve
from .tune import tune

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain Click help: docstring paragraphs are re-wrapped
    help="Turn a labelled table into a trained, honestly evaluated, shippable classifier.",
)

# --------------------------------------------------------------------------- train


@app.command()
def train(
    data: DataFile,
    target: TargetOpt,
    out: OutOpt = None,
    sep: Sep = None,
    header: TrainHeader = None,
    label_sep: LabelSepOpt = None,
    drop: DropOpt = None,
    categorical: CategoricalOpt = None,
    numeric: NumericOpt = None,
    task: TaskOpt = None,
    model: ModelOpt = "default",
    activation: ActivationOpt = "relu",
    dropout: DropoutOpt = None,
    norm: NormOpt = "none",
    epochs: EpochsOpt = None,
    batch_size: BatchSizeOpt = "auto",
    lr: LrOpt = None,
    weight_decay: WeightDecayOpt = 1e-4,
    patience: PatienceOpt = 20,
    val_size: ValSizeOpt = 0.15,
    test_size: TestSizeOpt = 0.15,
    class_weight: ClassWeightOpt = None,
    pos_weight: PosWeightOpt = None,
    threshold: Annotated[
        str,
        typer.Option(
            help="Decision threshold (binary; also per label for multi-label), or auto: "
            "chosen on the validation rows after training, see --threshold-metric.",
            callback=check_threshold,
        ),
    ] = "0.5",
    threshold_metric: ThresholdMetricOpt = None,
    calibrate: CalibrateOpt = False,
    twins: TwinsOpt = True,
    scaling: ScalingOpt = "auto",
    ensemble: Annotated[
        int, typer.Option(help="Members trained together, averaged.", callback=at_least(1))
    ] = 1,
    bagging: BaggingOpt = None,
    preset: PresetOpt = "fast",
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    stream: Annotated[
        bool | None,
        typer.Option(
            "--stream/--no-stream",
            help="Read DATA (a file or a directory of Parquet/CSV files) in a stream, for "
            "tables larger than memory; chosen when it would not fit in half of --memory.",
        ),
    ] = None,
    memory: Annotated[
        str | None, typer.Option(help="Memory budget for --stream, e.g. 1.5G (default: free RAM).")
    ] = None,
    report: ReportOpt = True,
    tensorboard: TensorBoardOpt = None,
    mlflow: MlflowOpt = None,
    quiet: Quiet = False,
    as_json: AsJson = False,
):
    """Train a classifier on DATA, evaluate it once on held-out test rows beside
    baselines, and save it as a model directory with its report."""
    from ..engine.distributed import joined
    from ..estimator.classifier import TabNNClassifier
    from ..estimator.params import validate_params
    from ..scale.streaming import memory_bytes, should_stream
    from ..workflows.runs import Outputs, ReadOptions, train_workflow
    from ..workflows.stream import stream_train_workflow

    with user_errors(quiet), joined(device) as (world, device):
        quiet = quiet or not world.is_main  # under torchrun, rank 0 alone prints
        as_json = as_json and world.is_main
        if val_size + test_size >= 1:
            raise UsageError(
                f"--val-size + --test-size must be below 1; got {val_size} + {test_size}."
            )
        estimator = TabNNClassifier(
            **estimator_params(locals()), hidden=hidden(model), n_members=ensemble,
            bagging=bagging_param(bagging),
        )  # fmt: skip
        validate_params(estimator)  # before the table is read
        options = ReadOptions(sep=sep, header=header, target=target, label_sep=label_sep)
        out = out or default_out(data)
        budget = None if memory is None else memory_bytes(memory)
        streamed = stream if stream is not None else should_stream(data, budget)
        workflow = partial(stream_train_workflow, memory=budget) if streamed else train_workflow
        with epoch_progress(epochs, quiet or as_json) as on_epoch:
            result = workflow(
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
        render.print_json({k: v for k, v in vars(result).items() if k != "test_rows"})
    elif not quiet:
        render.show_training(result)


# --------------------------------------------------------------------------- compare


@app.command()
def compare(
    data: DataFile,
    target: TargetOpt,
    models: Annotated[
        str,
        typer.Option(
            help="Designs or presets to compare: default, wide, deep, mlp:256-128, fast, best, ..."
        ),
    ] = "wide,deep,default",
    folds: Annotated[int, typer.Option(help="Stratified folds.", callback=at_least(2))] = 5,
    repeats: Annotated[int, typer.Option(help="Repeats of the k folds.", callback=at_least(1))] = 1,
    metric: Annotated[
        str | None, typer.Option(help="Metric to rank by (accuracy, f1, roc_auc, log_loss, ...).")
    ] = None,
    refit: Annotated[
        str,
        typer.Option(
            help="full: refit the winner on all training rows; ensemble: keep its fold models.",
            callback=choice("full", "ensemble"),
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
    dropout: DropoutOpt = None,
    norm: NormOpt = "none",
    epochs: EpochsOpt = None,
    batch_size: BatchSizeOpt = "auto",
    lr: LrOpt = None,
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
            callback=check_threshold,
        ),
    ] = "0.5",
    threshold_metric: ThresholdMetricOpt = None,
    scaling: ScalingOpt = "auto",
    preset: PresetOpt = "fast",
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
    from ..artifact.directory import threshold_info
    from ..evaluation.compare import checked_designs
    from ..workflows.runs import Outputs, ReadOptions, compare_workflow

    with user_errors(quiet):
        designs = names(models)
        for name in designs:
            design_params(name)
        if not designs:
            raise UsageError("--models needs at least one design, e.g. wide,deep.")
        checked_designs(designs, estimator_params(locals()))  # before the table is read
        options = ReadOptions(sep=sep, header=header, target=target, label_sep=label_sep)
        out = out or default_out(data)
        with design_progress(designs, epochs, quiet or as_json) as (on_design, on_epoch):
            result = compare_workflow(
                data,
                options,
                designs,
                out=out,
                params=estimator_params(locals()),
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
    threshold = threshold_info(result.estimator)
    if as_json:
        extra = {"model_dir": result.model_dir, "source": result.source, "threshold": threshold}
        render.print_json({**result.to_dict(), **extra})
    elif not quiet:
        render.show_comparison(result, threshold)


# --------------------------------------------------------------------------- evaluate


@app.command("evaluate")
def evaluate_command(
    model_dir: ModelDir,
    data: Annotated[Path, typer.Argument(help="A labelled table with the target column(s).")],
    target: Annotated[
        str | None, typer.Option("--target", "-t", help="Target column(s), if renamed.")
    ] = None,
    sep: Sep = None,
    header: Header = None,
    report: ReportOpt = True,
    quiet: Quiet = False,
    as_json: AsJson = False,
):
    """Score a saved model on every row of a labelled table; the report goes to
    MODEL_DIR/evaluations/<file name>/report.html."""
    from ..workflows.runs import Outputs, ReadOptions, evaluate_workflow

    with user_errors(quiet):
        result = evaluate_workflow(
            model_dir, data, ReadOptions(sep, header, target), Outputs(report=report)
        )
    if as_json:
        render.print_json(result)
    elif not quiet:
        render.show_evaluation(result, data.name)


# --------------------------------------------------------------------------- predict


@app.command()
def predict(
    model_dir: ModelDir,
    data: Annotated[
        Path,
        typer.Argument(
            help="Rows to predict: a file, or a directory of Parquet (or CSV) files read in "
            "name order (extra columns are ignored)."
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Write .csv or .parquet here, replacing the file; or, for a name without a "
            "suffix, a directory of Parquet parts (default: CSV to stdout).",
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            help="Decision threshold (binary/multi-label); the model's if omitted.",
            callback=in_range(0, 1, low_open=True, high_open=True),
        ),
    ] = None,
    sep: Sep = None,
    header: Header = None,
    chunk_size: Annotated[
        int, typer.Option(help="Rows read at a time.", callback=at_least(1))
    ] = 50_000,
    quiet: PredictQuiet = False,
    outside_training: Annotated[
        bool,
        typer.Option(
            "--outside-training",
            help="Add a column naming, per row, the inputs unlike any in training: "
            "Age:above_range;Sex:unseen_category (also below_range, unseen_missing).",
        ),
    ] = False,
    precision: Annotated[
        str,
        typer.Option(
            help="float64: exactly the Python API's probabilities; float32: about twice as "
            "fast, within 1e-6 of them (checked on the first rows, else float64).",
            callback=choice("float64", "float32"),
        ),
    ] = "float64",
):
    """Predict labels and class probabilities for every row of DATA.

    Columns: row (0-based data row), prediction (labels if multi-label), proba_CLASS, and
    with --outside-training, outside_training. A directory output holds part-00000.parquet,
    ... and _tabnn_predictions.json; it appears whole when done, and replaces only an
    earlier such output.
    """
    from ..data.read import ReadOptions, count_rows
    from ..inference.predict import predict_file

    with user_errors(), chunk_progress(quiet, count=lambda: count_rows(data)) as on_chunk:
        options = ReadOptions(sep, header)
        result = predict_file(
            model_dir,
            data,
            options,
            out=out,
            threshold=threshold,
            chunksize=chunk_size,
            on_chunk=on_chunk,
            outside=outside_training,
            precision=precision,
        )
    if out is None:
        sys.stdout.write(result.to_csv(index=False))
    elif not quiet:
        render.show_written(result, out)


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
    from ..artifact.directory import META_FILE, read_meta
    from ..report.data import REPORT_JSON, ReportData
    from ..report.html import write_report

    with user_errors():
        if (model_dir / META_FILE).is_file() or not model_dir.exists():
            # the report data of an edited or damaged model is refused; a model a killed
            # save left beside its place is restored first, as for any load
            read_meta(model_dir)
        if not (model_dir / REPORT_JSON).is_file():
            raise UsageError(
                f"'{model_dir}' holds no report data ({REPORT_JSON}): expected a model "
                f"directory saved by tabnn train or compare, or an evaluations/<file> "
                f"directory made by tabnn evaluate."
            )
        path = write_report(ReportData.load(model_dir), model_dir)
    render.show_report(path)
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
    from ..artifact.directory import load

    with user_errors():
        # predict's own load and checks, so that info describes only models that predict
        meta = load(model_dir).metadata_
        if not as_json:  # checked and laid out before anything is printed: a tabnn.json
            render.show_info(model_dir, meta)  # of another shape is a ModelError (exit 1)
    if as_json:
        render.print_json(meta)


# --------------------------------------------------------------------------- demo

DEMO_METRICS = ["accuracy", "balanced_accuracy", "roc_auc", "log_loss"]
DEMO_ROWS = 5


@app.command()
def demo(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Model directory (default: a new temporary one). A tabnn model already "
            "there is replaced; a directory holding other files is refused.",
        ),
    ] = None,
    quiet: ProgressOnly = False,
):
    """Train and evaluate on the bundled Sonar data (mines vs rocks), then let the saved
    model predict 5 held-out test rows beside their true labels."""
    from ..estimator.classifier import TabNNClassifier
    from ..inference.predict import predict_rows
    from ..workflows.runs import ReadOptions, train_workflow

    source = resources.files("tabnn") / "datasets" / "sonar.csv"
    render.show_demo_intro()
    with user_errors(), resources.as_file(source) as path:
        out = out or Path(tempfile.mkdtemp(prefix="tabnn-demo-")) / "sonar-model"
        options = ReadOptions(header=False, target="-1")
        with epoch_progress(200, quiet) as on_epoch:
            result = train_workflow(path, options, TabNNClassifier(), out=out, on_epoch=on_epoch)
        render.show_training(result, metrics=DEMO_METRICS)
        rows = _spread(result.test_rows, DEMO_ROWS)
        predictions = predict_rows(out, path, ReadOptions(header=False), rows)
    render.show_demo_predictions(predictions, len(result.test_rows))
    render.show_demo_next(out)


def _spread(rows: list[int], n: int) -> list[int]:
    """``n`` rows evenly spread over a sorted list (every row when there are fewer)."""
    ordered = sorted(rows)
    if len(ordered) <= n:
        return ordered
    step = len(ordered) / n
    return [ordered[int(i * step)] for i in range(n)]


# serving lives in its own module; this is the one app every command registers on
app.command()(serve)


# --------------------------------------------------------------------------- export

app.command("export")(export)

# --------------------------------------------------------------------------- tune

app.command()(tune)


# --------------------------------------------------------------------------- root


def _version(value: bool) -> None:
    if value:
        render.show_version(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
):
    """tabnn: labelled table in, trained and honestly evaluated classifier out."""


def main() -> None:
    """The console script ``tabnn`` (and ``python -m tabnn``)."""
    signal.signal(signal.SIGTERM, raise_terminated)
    sys.stdout = ClosedPipeSafe(sys.stdout)  # tabnn train ... | head: the model is saved
    app()
