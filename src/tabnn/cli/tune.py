"""``tabnn tune``: search the default model's hyperparameters with Optuna, its trials
trained as stacks, then refit the best and test it once beside the default.

Loading this module loads no torch, pandas or Optuna: the command imports them when it
runs, after its options are checked."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from . import render
from .guard import user_errors
from .options import (
    AsJson,
    CalibrateOpt,
    CategoricalOpt,
    ClassWeightOpt,
    DataFile,
    DeviceOpt,
    DropOpt,
    LabelSepOpt,
    MlflowOpt,
    NumericOpt,
    OutOpt,
    PatienceOpt,
    PosWeightOpt,
    PresetOpt,
    Quiet,
    ReportOpt,
    SeedOpt,
    Sep,
    TargetOpt,
    TaskOpt,
    TensorBoardOpt,
    TestSizeOpt,
    TrainHeader,
    at_least,
    default_out,
    names,
)


def tune(
    data: DataFile,
    target: TargetOpt,
    trials: Annotated[
        int | None,
        typer.Option(
            help="Trials the study should hold when done (a resumed study counts its earlier ones)."
        ),
    ] = 40,
    time_limit: Annotated[
        float | None,
        typer.Option(
            "--time-limit",
            help="Seconds of search; trials still training then "
            "are stopped and recorded as failed.",
        ),
    ] = None,
    metric: Annotated[
        str | None, typer.Option(help="CV metric to optimise (accuracy, roc_auc, log_loss, ...).")
    ] = None,
    folds: Annotated[int, typer.Option(help="Stratified CV folds, the same for every trial.")] = 5,
    storage: Annotated[
        str | None,
        typer.Option(
            help="Database URL that keeps the study, e.g. sqlite:///tune.db: a "
            "killed run resumes where it stopped."
        ),
    ] = None,
    study: Annotated[
        str | None, typer.Option(help="Study name (default: one derived from the data).")
    ] = None,
    trials_per_stack: Annotated[
        int | None,
        typer.Option(
            help="Trials trained together as one stack (default: 1 on the CPU, where "
            "stacking trials measured no faster, 4 on a GPU).",
            callback=at_least(1),
        ),
    ] = None,
    prune: Annotated[
        bool, typer.Option("--prune/--no-prune", help="Stop hopeless trials early (median).")
    ] = True,
    out: OutOpt = None,
    sep: Sep = None,
    header: TrainHeader = None,
    label_sep: LabelSepOpt = None,
    drop: DropOpt = None,
    categorical: CategoricalOpt = None,
    numeric: NumericOpt = None,
    task: TaskOpt = None,
    patience: PatienceOpt = 20,
    test_size: TestSizeOpt = 0.15,
    class_weight: ClassWeightOpt = None,
    pos_weight: PosWeightOpt = None,
    calibrate: CalibrateOpt = False,
    preset: PresetOpt = "fast",
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    report: ReportOpt = True,
    tensorboard: TensorBoardOpt = None,
    mlflow: MlflowOpt = None,
    quiet: Quiet = False,
    as_json: AsJson = False,
):
    """Tune the default model by stratified k-fold CV on the training rows (Optuna's TPE;
    trials that share a shape train as one stack), refit the best, test it once beside the
    default model and the baselines, and save it with the study and its report."""
    from ..workflows.runs import Outputs, ReadOptions, tune_workflow

    with user_errors(quiet):
        options = ReadOptions(sep=sep, header=header, target=target, label_sep=label_sep)
        params = {
            "patience": patience,
            "class_weight": class_weight,
            "pos_weight": pos_weight,
            "calibrate": calibrate,
            "categorical": names(categorical),
            "numeric": names(numeric),
            "drop": names(drop),
            "task": task,
            "device": device,
            "random_state": seed,
            "preset": preset,
        }
        settings = {
            "trials": trials, "time_limit": time_limit, "metric": metric, "folds": folds,
            "test_size": test_size, "storage": storage, "study": study,
            "trials_per_stack": trials_per_stack or "auto", "prune": prune,
        }  # fmt: skip
        result = tune_workflow(
            data,
            options,
            out=out or default_out(data),
            params=params,
            settings=settings,
            on_batch=None if quiet or as_json else show_batch,
            outputs=Outputs(report, tensorboard, mlflow),
        )
    if as_json:
        extra = {"model_dir": result.model_dir, "source": result.source, "trials": result.trials}
        render.print_json({**result.to_dict(), **extra})
    elif not quiet:
        show_tuning(result)


def show_batch(trials: list[dict]) -> None:
    """One line per trial of a finished stack."""
    for trial in trials:
        value = f"{trial['value']:.4f}" if trial["state"] == "COMPLETE" else trial["state"].lower()
        why = f" ({trial['reason']})" if trial.get("reason") else ""
        name = " default model" if trial["is_default"] else ""
        render.out_console.print(
            f"trial {trial['number']:>3}{name}: {value}{escape(str(why))}  [dim]stacked with "
            f"{trial['stacked_with'] - 1} other(s), {trial['seconds']:.1f} s each[/]"
        )


def show_tuning(result) -> None:
    """The study, the best configuration against the default on the same folds, and the
    single test evaluation."""
    from ..estimator.params import describe_point

    summary = result.summary
    render.show_source(result.source)
    counts = ", ".join(f"{n} {state}" for state, n in summary["trials"].items())
    rate = summary["trials_per_minute"]
    render.out_console.print(
        f"study [bold]{escape(str(summary['study']))}[/]"
        + (f" in {escape(str(summary['storage']))}" if summary["storage"] else "")
        + f": {counts}; {summary['seconds']:.0f} s"
        + (f", {rate:.1f} trials a minute" if rate else "")
    )
    best, default = summary["best"], summary["default"]
    metric = summary["metric"]
    render.out_console.print(
        f"best (trial {best['number']}): {escape(describe_point(best['params']))}\n"
        f"  {summary['folds']}-fold CV {metric} {best['value']:.4f}"
    )
    if default is not None and summary["paired"] is not None:
        paired = summary["paired"]
        render.out_console.print(
            f"  default model {default['value']:.4f} on the same folds: difference "
            f"{paired['difference']:+.4f} +- {paired['difference_std']:.4f}, corrected "
            f"resampled t = {paired['t']:.2f}, p = {paired['p_value']:.3f}"
        )
    elif best["is_default"]:
        render.out_console.print("  the default model itself scored best")
    scores = result.test_scores()
    render.out_console.print(
        "model: the best configuration refit on all training rows; default model: the "
        "default refit the same way"
    )
    render.show_scores(
        {**result.test, "scores": scores}, title="Test rows (never used for any choice)"
    )
    render.show_outputs(result)
