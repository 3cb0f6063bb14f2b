"""The command line's shared option types, the checks they run, and what they become.

Each check runs while the command line is parsed, so a bad value exits 2 before any file is
read. Only the checks that need the library import it, inside the check: loading this module
(and ``tabnn --help``) loads no torch, pandas or scikit-learn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from ..nn.designs import DESIGN_HELP, MAX_DIGITS, PRESET_NAMES, abridged, parse_design, whole_number
from ..tasks import TASKS

# --------------------------------------------------------------------------- checks


def choice(*allowed: str):
    """A check that lets through None and the ``allowed`` words."""

    def check(value: str | None) -> str | None:
        if value is not None and value not in allowed:
            raise typer.BadParameter(f"expected one of {', '.join(allowed)}; got {value!r}.")
        return value

    return check


def in_range(low: float, high: float, *, low_open: bool = False, high_open: bool = False):
    """A check that lets through None and numbers between ``low`` and ``high``."""
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


def at_least(low: int):
    """A check that lets through None and whole numbers from ``low`` up."""

    def check(value: int | None) -> int | None:
        if value is not None and value < low:
            raise typer.BadParameter(f"expected a whole number >= {low}; got {value}.")
        return value

    return check


def check_model(value: str) -> str:
    """``default``, ``wide``, ``deep`` or ``mlp:256-128``, as ``nn.designs.parse_design``
    reads them."""
    try:
        parse_design(value)
    except UsageError as error:
        raise typer.BadParameter(f"expected {DESIGN_HELP}; got {abridged(value)!r}.") from error
    return value


def check_batch_size(value: str) -> str:
    """``auto`` or a whole number >= 1 (of at most 18 digits: designs.whole_number)."""
    if value == "auto" or whole_number(value) is not None:
        return value
    longer = f" of at most {MAX_DIGITS} digits" if len(value) > MAX_DIGITS else ""
    raise typer.BadParameter(
        f"expected 'auto' or a whole number >= 1{longer}; got {abridged(value)!r}."
    )


def check_device(value: str) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``; a CUDA device must be there."""
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


def check_threshold(value: str) -> str | float:
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


def check_threshold_metric(value: str | None) -> str | None:
    """What ``--threshold auto`` maximises: f1, ..., ``recall>=0.9``, ``precision>=0.9``."""
    if value is None:
        return value
    from ..estimator.threshold import parse_threshold_metric

    try:
        parse_threshold_metric(value)
    except UsageError as error:
        raise typer.BadParameter(
            f"expected f1, balanced_accuracy, mcc, recall>=R or precision>=P with R, P in "
            f"(0, 1]; got {value!r}."
        ) from error
    return value


def check_activation(value: str) -> str:
    """One of the network's activations (:data:`tabnn.nn.mlp.ACTIVATIONS`)."""
    from ..nn.config import ACTIVATIONS

    return choice(*ACTIVATIONS)(value)


Fraction = in_range(0, 1, high_open=True)

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
Quiet = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="Print nothing but errors: no progress bar, notes or tables (--json still prints "
        "the results).",
    ),
]
ProgressOnly = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
PredictQuiet = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", help="No progress bar or notes (without --out the CSV still prints)."
    ),
]
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
ModelDir = Annotated[Path, typer.Argument(help="A model directory from tabnn train.")]
DataFile = Annotated[Path, typer.Argument(help="CSV, TSV, Parquet or ARFF file.")]

# options shared by train and compare
TargetOpt = Annotated[
    str, typer.Option("--target", "-t", help="Target column(s): name, index, -1, a,b,c, -6:.")
]
OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        help="Model directory (default: tabnn-models/NAME). An existing tabnn model directory "
        "is replaced, its evaluations/ reports included; a directory holding anything else is "
        "refused.",
    ),
]
LabelSepOpt = Annotated[
    str | None, typer.Option(help="Delimiter inside one multi-label target column.")
]
DropOpt = Annotated[str | None, typer.Option(help="Columns to ignore, comma-separated.")]
CategoricalOpt = Annotated[str | None, typer.Option(help="Columns to treat as categories.")]
NumericOpt = Annotated[str | None, typer.Option(help="Columns to treat as numbers.")]
TaskOpt = Annotated[
    str | None,
    typer.Option(help="binary, multiclass or multilabel (inferred).", callback=choice(*TASKS)),
]
ModelOpt = Annotated[
    str, typer.Option(help="default, wide, deep or mlp:256-128.", callback=check_model)
]
ActivationOpt = Annotated[
    str, typer.Option(help="relu, gelu, silu, selu, tanh, ...", callback=check_activation)
]
DropoutOpt = Annotated[
    float | None,
    typer.Option(
        help="Dropout after each hidden layer (default: the design's; 0 for default, 0.1 "
        "for the others).",
        callback=Fraction,
        show_default=False,
    ),
]
NormOpt = Annotated[
    str, typer.Option(help="none, batch or layer.", callback=choice("none", "batch", "layer"))
]
EpochsOpt = Annotated[
    int | None,
    typer.Option(
        help="Most epochs; early stopping ends sooner (default: 200; the default design "
        "trains until --patience ends it, at most 500, or without validation rows a "
        "budget of steps that shrinks as the rows grow). Given, the rate decays over them.",
        callback=at_least(1),
        show_default=False,
    ),
]
BatchSizeOpt = Annotated[
    str, typer.Option(help="Rows per step, or auto.", callback=check_batch_size)
]
LrOpt = Annotated[
    float | None,
    typer.Option(
        help="AdamW learning rate (default: 1e-3; for the default design 3e-3 at batches "
        "of 256 rows, scaled by sqrt(batch / 256) below).",
        callback=in_range(0, float("inf"), low_open=True),
        show_default=False,
    ),
]
WeightDecayOpt = Annotated[
    float, typer.Option(help="AdamW weight decay.", callback=in_range(0, float("inf")))
]
PatienceOpt = Annotated[
    int, typer.Option(help="Early-stopping patience in epochs.", callback=at_least(1))
]
ValSizeOpt = Annotated[float, typer.Option(help="Validation share of all rows.", callback=Fraction)]
TestSizeOpt = Annotated[float, typer.Option(help="Test share of all rows.", callback=Fraction)]
ThresholdMetricOpt = Annotated[
    str | None,
    typer.Option(
        help="What --threshold auto maximises on the validation rows: f1 (default), "
        "balanced_accuracy, mcc, 'recall>=0.9' (highest precision with that recall) or "
        "'precision>=0.9' (highest recall with that precision).",
        callback=check_threshold_metric,
        show_default=False,
    ),
]
CalibrateOpt = Annotated[
    bool,
    typer.Option(
        "--calibrate",
        help="Temperature scaling fitted on the validation rows after training (one "
        "temperature, one per label for multi-label), applied by predict, serve and export.",
    ),
]
TwinsOpt = Annotated[
    bool,
    typer.Option(
        "--twins/--no-twins",
        help="Let the labels of a row's exact duplicates among the training rows "
        "(its twins) share its answer, at a weight chosen on the validation rows; where "
        "they earn one, the model stores its distinct training rows, encoded.",
    ),
]
ClassWeightOpt = Annotated[
    str | None,
    typer.Option(help="'balanced' to weight classes by rarity.", callback=choice("balanced")),
]
PosWeightOpt = Annotated[
    float | None,
    typer.Option(
        help="Positive-class loss weight (binary).",
        callback=in_range(0, float("inf"), low_open=True),
    ),
]
ScalingOpt = Annotated[
    str,
    typer.Option(
        help="auto (clipped for the default design, else standard), standard, robust, "
        "quantile or clipped (robust, then smoothly clipped to +-3).",
        callback=choice("auto", "standard", "robust", "quantile", "clipped"),
    ),
]
SeedOpt = Annotated[int, typer.Option(help="Seed: same seed, same model.")]
BaggingOpt = Annotated[
    int | None,
    typer.Option(
        help="Bag over K folds of the training and validation rows: K members, each trained "
        "on K-1 folds and stopped early on its own; threshold auto and --calibrate are "
        "fitted on every row's out-of-fold prediction. 1: no bag (default: the preset's).",
        metavar="K",
        callback=at_least(1),
    ),
]
PresetOpt = Annotated[
    str,
    typer.Option(
        help="fast: one network; best: a bag of 5 networks (the default design's on "
        "piecewise-linear encodings of the numeric columns; about 4.6x the fit time). "
        "Options given explicitly override the preset's choices.",
        callback=choice(*PRESET_NAMES),
    ),
]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.", callback=check_device)]


# --------------------------------------------------------------------------- what they become


def names(text: str | None) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; nothing for None."""
    return [part.strip() for part in text.split(",") if part.strip()] if text else []


def hidden(model: str) -> str | list[int]:
    """The estimator's ``hidden`` for a checked --model value."""
    return parse_design(model)


def default_out(data: Path) -> Path:
    """Where a model trained on ``data`` goes without --out: tabnn-models/NAME."""
    return Path("tabnn-models") / Path(data).name.split(".")[0]


def estimator_params(options: dict) -> dict:
    """TabNNClassifier parameters from the options train and compare share."""
    batch_size = options["batch_size"]
    return dict(
        **threshold_params(options["threshold"], options["threshold_metric"]),
        activation=options["activation"],
        dropout=auto_if_none(options["dropout"]),
        norm=options["norm"],
        epochs=auto_if_none(options["epochs"]),
        batch_size=batch_size if batch_size == "auto" else int(batch_size),
        lr=auto_if_none(options["lr"]),
        weight_decay=options["weight_decay"],
        patience=options["patience"],
        class_weight=options["class_weight"],
        pos_weight=options["pos_weight"],
        calibrate=options.get("calibrate", False),
        twins=options.get("twins", True),
        scaling=options["scaling"],
        categorical=names(options["categorical"]),
        numeric=names(options["numeric"]),
        drop=names(options["drop"]),
        task=options["task"],
        random_state=options["seed"],
        device=options["device"],
        preset=options["preset"],
    )


def bagging_param(bagging: int | None):
    """The estimator's ``bagging`` for --bagging: left out, the preset's; 1, no bag."""
    return "auto" if bagging is None else None if bagging == 1 else bagging


def auto_if_none(value):
    """An option left out means the estimator's ``auto``: the design's own setting."""
    return "auto" if value is None else value


def threshold_params(threshold, metric: str | None) -> dict:
    """``threshold`` and ``threshold_metric``; a metric only goes with --threshold auto."""
    if metric is not None and threshold != "auto":
        raise UsageError(
            f"--threshold-metric {metric} chooses how --threshold auto tunes the threshold; "
            f"add --threshold auto, or leave --threshold-metric out."
        )
    return {"threshold": threshold, "threshold_metric": metric or "f1"}
