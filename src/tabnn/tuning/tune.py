"""``tabnn.tune``: hold out the test rows, search on the rest by k-fold CV, refit the best
configuration, and test it once beside the default model and the baselines."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone

from ..artifact.directory import data_fingerprint
from ..data.splits import encoded_for_split, split_indices, stratified_folds
from ..errors import DataError, UsageError
from ..estimator.classifier import TabNNClassifier
from ..estimator.params import check_memory
from ..evaluation.compare import fold_members
from ..evaluation.holdout import holdout_evaluation
from ..evaluation.metrics import check_metric
from ..evaluation.stats import corrected_paired_t_test
from ..features.schema import drop_missing_targets
from ..tasks import HIGHER_IS_BETTER
from . import search, space

__all__ = ["TuneResult", "check_tune_settings", "prepare_folds", "tune"]

# what the search sets itself; the user's value would be silently overridden
SEARCHED = (
    "hidden", "ensemble_size", "numeric_embedding", "dropout", "batch_size", "epochs", "lr",
    "weight_decay", "label_smoothing", "scaling", "random_state",
)  # fmt: skip


@dataclass
class TuneResult:
    """What ``tune`` did: the study's summary, the refitted best model and its one test."""

    estimator: TabNNClassifier
    summary: dict  # the study: trials, best, default, paired test, trials per minute
    test: dict  # the best model's test scores beside the baselines
    default_test: dict  # the default model's test scores on the same rows
    rows: dict
    test_rows: np.ndarray
    trials: list[dict] = field(default_factory=list)  # every trial of the study
    # what the workflow around it adds (workflows.save_and_track): what it read, where
    # the model, its report and the tracked run went
    source: dict = field(default_factory=dict)
    model_dir: Path | None = None
    report: Path | None = None
    tracking: list[str] = field(default_factory=list)

    def test_scores(self) -> dict:
        """The test scores of the tuned model (``model``), the baselines and the default
        model (``default_model``), side by side."""
        scores = dict(self.test.get("scores", {}))
        if "model" in self.default_test.get("scores", {}):
            scores["default_model"] = self.default_test["scores"]["model"]
        return scores

    def to_dict(self) -> dict:
        return {
            "tuning": self.summary,
            "test": self.test,
            "default_test": self.default_test,
            "rows": self.rows,
        }


def check_tune_settings(trials, time_limit, folds: int, params: dict) -> None:
    """Refuse settings that cannot work, before any data is read or anything written."""
    if trials is not None and (not isinstance(trials, int) or trials < 1):
        raise UsageError(f"trials must be a whole number of at least 1; got {trials!r}.")
    if time_limit is not None and not time_limit > 0:
        raise UsageError(f"time_limit must be a number of seconds above 0; got {time_limit!r}.")
    if trials is None and time_limit is None:
        raise UsageError("Give a number of trials, a time limit, or both.")
    if not isinstance(folds, int) or folds < 2:
        raise UsageError(f"folds must be a whole number of at least 2; got {folds!r}.")
    fixed = sorted(set(params) & set(SEARCHED))
    if fixed:
        raise UsageError(
            f"tune chooses {', '.join(fixed)} itself (see tabnn.tuning.space); leave "
            f"{'it' if len(fixed) == 1 else 'them'} out."
        )


def tune(
    X,
    y,
    *,
    trials: int | None = 40,
    time_limit: float | None = None,
    metric: str | None = None,
    folds: int = 5,
    test_size: float = 0.15,
    seed: int = 0,
    storage: str | None = None,
    study: str | None = None,
    trials_per_stack: int | str = "auto",
    prune: bool = True,
    on_batch: Callable[[list[dict]], None] | None = None,
    **params,
) -> TuneResult:
    """Search the default model's hyperparameters with Optuna; trials train as stacks.

    The test rows (``test_size``) are held out first and used once, at the end. Each trial
    is scored by stratified ``folds``-fold CV on the other rows (the folds fixed by
    ``seed``); trials sharing a shape train ``trials_per_stack`` at a time as one stack
    (see :mod:`tabnn.tuning.search`; ``auto``: see :func:`stack_size`). The default
    model is the first trial. The best trial is refit on all training rows and tested
    once beside the default model (refit the same way) and the baselines.

    Parameters
    ----------
    X, y : as for ``TabNNClassifier.fit``
    trials : int, optional
        Trials the study should hold when done (scored or pruned; a resumed study counts
        its earlier ones).
    time_limit : float, optional
        Seconds of search; trials still training then are stopped and recorded as failed.
    metric : str, optional
        The CV metric to optimise; the task's primary metric by default.
    storage, study : str, optional
        A database URL (``sqlite:///tune.db``) that keeps the study, and its name; a study
        of that name is resumed when its data and settings match.
    **params
        Other ``TabNNClassifier`` parameters, shared by every trial and the refits
        (``calibrate``, ``class_weight``, ``device``, ...). ``bagging`` bags the two
        refits; the trials are scored with one member per fold.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from tabnn import tune
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> result = tune(X, y, trials=8, folds=3)  # doctest: +SKIP
    >>> result.summary["best"]["value"], result.test["scores"]["model"]  # doctest: +SKIP
    """
    check_tune_settings(trials, time_limit, folds, params)
    trials_per_stack = stack_size(trials_per_stack, params.get("device", "cpu"))
    probe = TabNNClassifier(**params, random_state=seed)
    check_stack_memory(probe, min(trials_per_stack, trials or trials_per_stack), folds)
    frame, target = probe.as_frames(X, y)
    frame, target, _ = drop_missing_targets(frame, target)
    y_split, task = encoded_for_split(target)
    train, _, test = split_indices(y_split, task, val_size=0.0, test_size=test_size, seed=seed)
    X_train = frame.iloc[train].reset_index(drop=True)
    y_train = target.iloc[train].reset_index(drop=True)
    prepared = prepare_folds(probe, X_train, y_train, metric, folds, seed)
    record = _record(X_train, y_train, prepared.metric, folds, seed)
    name = study or f"tabnn-{record['data'][:12]}"
    opened = search.open_study(storage, name, record, seed)
    limits = (trials, time_limit, trials_per_stack, prune)
    seconds = _search(opened, prepared, params, seed, limits, on_batch)
    summary = summarise(opened, prepared, storage, seconds)
    best = _refit(summary["best"]["params"], X_train, y_train, params, seed)
    default = (
        best if summary["best"]["is_default"] else TabNNClassifier(**params, random_state=seed)
    )
    if default is not best:
        default.fit(X_train, y_train)
    test_scores = holdout_evaluation(best, X_train, y_train, frame, target, test)
    default_scores = holdout_evaluation(default, X_train, y_train, frame, target, test)
    rows = {"train": len(train), "test": len(test)}
    trials_list = [_trial_dict(t) for t in opened.get_trials(deepcopy=False)]
    return TuneResult(best, summary, test_scores, default_scores, rows, test, trials_list)


FAILED_BATCHES = 3  # batches failing one after the other that end a search

# trials per stack on a GPU, where a step of small products costs its kernel launches and
# four times the members cost little more; not measured yet (no GPU was at hand)
GPU_TRIALS_PER_STACK = 4


def stack_size(trials_per_stack: int | str, device: str) -> int:
    """``auto``: one trial at a time on the CPU, ``GPU_TRIALS_PER_STACK`` on a GPU.

    On 2 CPU cores a stack's step costs its arithmetic: the same 12 trials took 0.98x the
    time stacked 4 at a time as one by one (``benchmarks/tune_speed.py``, 3 tables; 1.2x
    for one-layer networks, 0.6x for ensembles of 8 x 256-wide layers), and a stack runs
    until its slowest trial stops, so pruning a trial saves nothing while its stack runs.
    """
    from ..engine.config import device_of

    if trials_per_stack == "auto":
        return GPU_TRIALS_PER_STACK if device_of(device).type == "cuda" else 1
    if isinstance(trials_per_stack, bool) or not isinstance(trials_per_stack, int):
        trials_per_stack = -1
    if trials_per_stack < 1:
        raise UsageError(
            f"trials_per_stack must be 'auto' or at least 1; got {trials_per_stack!r}."
        )
    return trials_per_stack


# how a memory refusal names the members of a stack of trials
TRIAL_MEMBERS = {
    "n_members": ("{} members (--trials-per-stack x --folds)", "fewer trials per stack")
}


def check_stack_memory(probe, trials_per_stack: int, folds: int) -> None:
    """Refuse (UsageError), before the data is read, a stack of trials x folds members that
    would not fit in memory even with the smallest network of the search space."""
    hidden = [min(space.WIDTHS)] * min(space.DEPTHS)
    smallest = clone(probe).set_params(hidden=hidden, ensemble_size=1)
    check_memory(smallest, members=trials_per_stack * folds, labels=TRIAL_MEMBERS)


def prepare_folds(probe, X_train, y_train, metric, n_folds: int, seed: int) -> search.Folds:
    """What every trial shares: the schema, the metric, the folds and their members."""
    schema = probe.infer_schema(X_train, y_train)
    codes = schema.encode_target(y_train)
    metric = check_metric(metric, schema.task)
    splits = stratified_folds(
        codes, schema.task, n_splits=n_folds, seed=seed, class_names=schema.classes
    )
    members = fold_members(codes, schema.task, splits, probe.validation_fraction, seed)
    return search.Folds(X_train, y_train, codes, schema, splits, members, metric)


def _record(X_train, y_train, metric: str, folds: int, seed: int) -> dict:
    """What the study is of: a fingerprint of the training rows and target, and the
    settings its scores depend on."""
    labels = y_train.to_frame() if isinstance(y_train, pd.Series) else y_train
    table = pd.concat([X_train, labels.add_prefix("target:")], axis=1)
    target = [str(c) for c in labels.columns]
    data = data_fingerprint(table)["sha256"]
    return {
        "data": data,
        "target": target,
        "metric": metric,
        "folds": folds,
        "seed": seed,
        "space": search.SPACE_VERSION,
    }


def _search(study, folds, params, seed, limits, on_batch) -> float:
    """Ask, train and tell batch by batch until the study holds ``trials`` finished trials
    or the time is up -> seconds spent. ``limits``: trials, time limit, trials per stack
    and whether to prune."""
    trials, time_limit, per_stack, prune = limits
    started = time.monotonic()
    deadline = None if time_limit is None else started + time_limit
    _enqueue_default(study, folds.n_train)
    last, failed_batches, reason = 0.0, 0, ""
    while True:
        done, now = search.finished(study), time.monotonic()
        if trials is not None and done >= trials:
            break
        if deadline is not None and (now > deadline or (done and now + last > deadline)):
            break  # time is up, or the next batch would not finish in time (with a score)
        size = per_stack if trials is None else min(per_stack, trials - done)
        batch = search.ask_batch(study, size, folds.n_train)
        outcomes = search.run_batch(study, batch, folds, params, seed, deadline, prune)
        last = time.monotonic() - now
        failed = all(outcome.state == "FAIL" for outcome in outcomes)
        failed_batches, reason = (failed_batches + 1, outcomes[0].reason) if failed else (0, "")
        if on_batch is not None:
            recorded = study.get_trials(deepcopy=False)
            on_batch([_trial_dict(recorded[trial.number]) for trial, _ in batch])
        if failed_batches == FAILED_BATCHES and reason != search.TIME_UP:
            if not done:  # a failed batch scores nothing: still what it was
                raise DataError(f"No trial could be trained; the last one failed: {reason}")
            break  # the search keeps failing: stop with what it has
    return time.monotonic() - started


def _enqueue_default(study, n_train: int) -> None:
    """The default model as the study's next trial, unless it has been scored already."""
    for trial in study.get_trials(deepcopy=False):
        if trial.user_attrs.get("default") and trial.state.name in ("COMPLETE", "WAITING"):
            return
    study.enqueue_trial(space.default_point(n_train), user_attrs={"default": True})


def summarise(study, folds: search.Folds, storage, seconds: float) -> dict:
    """The study as plain data: counts, the best trial, the default's, their paired test."""
    every = study.get_trials(deepcopy=False)
    complete = [t for t in every if t.state.name == "COMPLETE"]
    if not complete:
        raise DataError(
            "No trial finished: raise --time-limit (the first trials of a stack take the "
            "longest) or --trials."
        )
    best = study.best_trial
    default = next((t for t in complete if t.user_attrs.get("default")), None)
    states = [t.state.name for t in every]
    fits = [len(fit) for fit, _ in folds.splits]
    held = [len(h) for _, h in folds.splits]
    paired = None
    if default is not None and default.number != best.number:
        paired = corrected_paired_t_test(
            best.user_attrs["fold_scores"], default.user_attrs["fold_scores"],
            n_train=float(np.mean(fits)), n_test=float(np.mean(held)),
        )  # fmt: skip
    trained = [t for t in every if "seconds" in t.user_attrs]
    busy = sum(t.user_attrs["seconds"] for t in trained)
    return {
        "study": study.study_name,
        "storage": storage,
        "metric": folds.metric,
        "direction": "maximize" if HIGHER_IS_BETTER[folds.metric] else "minimize",
        "folds": len(folds.splits),
        "trials": {state.lower(): states.count(state) for state in sorted(set(states))},
        "seconds": seconds,
        "trials_per_minute": 60 * len(trained) / busy if busy else None,
        "best": _trial_dict(best),
        "default": None if default is None else _trial_dict(default),
        "paired": paired,
    }


def _trial_dict(trial) -> dict:
    from optuna.distributions import distribution_to_json

    attrs = trial.user_attrs
    return {
        "number": trial.number,
        "state": trial.state.name,
        "value": trial.value if trial.state.name == "COMPLETE" else None,
        "params": dict(trial.params),
        # what the report needs to draw Optuna's plots again without the study
        "distributions": {k: distribution_to_json(d) for k, d in trial.distributions.items()},
        "fold_scores": attrs.get("fold_scores"),
        "is_default": bool(attrs.get("default")),
        "seconds": attrs.get("seconds"),
        "stacked_with": attrs.get("stacked_with"),
        "reason": attrs.get("reason"),
    }


def _refit(point: dict, X_train, y_train, params: dict, seed: int) -> TabNNClassifier:
    """The best point refit on every training row (its own validation rows for stopping)."""
    chosen = {**space.estimator_params(point), **params}
    return TabNNClassifier(**chosen, random_state=seed).fit(X_train, y_train)
