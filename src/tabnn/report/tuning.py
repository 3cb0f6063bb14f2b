"""The report's section on ``tabnn tune``: the study in numbers, the best configuration
beside the default's on the same folds with their paired test, the best trials, and
Optuna's own matplotlib plots (optimisation history, parameter importances), drawn from
the trials stored in the report data (the study itself is not needed)."""

from __future__ import annotations

import html
import warnings

from .data import ReportData

TOP_TRIALS = 10


def tuning_section(data: ReportData, figure, table):
    """(id, heading, html) of the tuning section, or None; ``figure(fig, plot, caption)``
    and ``table(header, rows, css)`` are the page's own helpers."""
    tuning = data.tuning
    if not tuning:
        return None
    parts = [_study_html(tuning), _versus_html(tuning, table), _top_html(tuning, table)]
    figures = []
    for fig, plot, caption in optuna_figures(tuning):
        figures.append(figure(fig, plot, caption))
        _close(fig)
    if figures:
        parts.append('<div class="grid">' + "".join(figures) + "</div>")
    return "tuning", "Tuning", "\n".join(parts)


def _close(fig) -> None:
    """Optuna draws with pyplot, which keeps every figure until it is closed."""
    import matplotlib.pyplot as plt

    plt.close(fig)


def _e(value: object) -> str:
    return html.escape(str(value))


def _study_html(tuning: dict) -> str:
    counts = ", ".join(f"{n} {state}" for state, n in tuning["trials"].items())
    rate = tuning.get("trials_per_minute")
    speed = f", {rate:.1f} trials a minute of training" if rate else ""
    return (
        f"<p>Study <b>{_e(tuning['study'])}</b>: {_e(counts)} in {tuning['seconds']:.0f} s"
        f"{speed}. Every trial was scored by the same {tuning['folds']}-fold CV of the "
        f"training rows ({_e(tuning['metric'])}, {_e(tuning['direction'])}d); the test "
        "rows were used once, by the refit models.</p>"
    )


def _versus_html(tuning: dict, table) -> str:
    from ..estimator.params import describe_point

    best, default = tuning["best"], tuning.get("default")
    rows = [["best", str(best["number"]), _e(describe_point(best["params"])), _score(best)]]
    if default is not None and default["number"] != best["number"]:
        rows.append(
            [
                "default",
                str(default["number"]),
                _e(describe_point(default["params"])),
                _score(default),
            ]
        )
    text = table(["", "trial", "configuration", f"CV {_e(tuning['metric'])}"], rows, "numbers")
    paired = tuning.get("paired")
    if paired:
        text += (
            f"<p>Best against default on the same folds: difference "
            f"{paired['difference']:+.4f} &plusmn; {paired['difference_std']:.4f}, corrected "
            f"resampled t = {paired['t']:.2f}, p = {paired['p_value']:.3f} (Nadeau and "
            "Bengio's test; the best was chosen on these folds, so the difference is "
            "optimistic).</p>"
        )
    elif best.get("is_default"):
        text += "<p>The default model itself scored best.</p>"
    return text


def _score(trial: dict) -> str:
    from ..evaluation.metrics import mean_std

    scores = trial.get("fold_scores") or []
    spread = f" &plusmn; {mean_std(scores)[1]:.4f}" if len(scores) > 1 else ""
    return f"{trial['value']:.4f}{spread}"


def _top_html(tuning: dict, table) -> str:
    from ..estimator.params import describe_point

    done = [t for t in tuning.get("all_trials", []) if t["state"] == "COMPLETE"]
    higher = tuning["direction"] == "maximize"
    done.sort(key=lambda t: t["value"], reverse=higher)
    rows = [
        [str(t["number"]) + (" (default)" if t["is_default"] else ""),
         _e(describe_point(t["params"])), _score(t), f"{t['seconds']:.1f}"]
        for t in done[:TOP_TRIALS]
    ]  # fmt: skip
    header = ["trial", "configuration", f"CV {_e(tuning['metric'])}", "seconds"]
    return f"<h3>Best {len(rows)} trials</h3>" + table(header, rows, "numbers")


def optuna_figures(tuning: dict) -> list:
    """Optuna's optimisation history and parameter importances for the stored trials, as
    (figure, plot name, caption); none without Optuna or with too few trials."""
    try:
        study = rebuilt_study(tuning)
    except ImportError:
        return []
    from optuna.visualization import matplotlib as optuna_plots

    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    figures = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
        if done:
            axes = optuna_plots.plot_optimization_history(study, target_name=tuning["metric"])
            caption = "Each scored trial's CV score, and the best so far (Optuna's plot)."
            figures.append((axes.figure, "optimization-history", caption))
        if len(done) >= 2 and len({str(t.params) for t in done}) >= 2:
            axes = optuna_plots.plot_param_importances(study)
            caption = (
                "How much of the CV score's variance each setting explains over the scored "
                "trials (fANOVA, Optuna's plot): a guide to where to search, not a proof."
            )
            figures.append((axes.figure, "param-importances", caption))
    for fig, _, _ in figures:
        fig.set_size_inches(6.4, 4.0)
        fig.tight_layout()
    return figures


def rebuilt_study(tuning: dict):
    """An in-memory Optuna study holding the stored trials (for Optuna's plots)."""
    import optuna
    from optuna.distributions import json_to_distribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=tuning["direction"])
    for trial in tuning.get("all_trials", []):
        if trial["state"] not in ("COMPLETE", "PRUNED", "FAIL"):
            continue
        distributions = {k: json_to_distribution(v) for k, v in trial["distributions"].items()}
        state = getattr(optuna.trial.TrialState, trial["state"])
        study.add_trial(
            optuna.trial.create_trial(
                params=trial["params"], distributions=distributions,
                value=trial["value"] if trial["state"] == "COMPLETE" else None, state=state,
            )
        )  # fmt: skip
    return study
