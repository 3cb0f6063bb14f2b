"""The search of ``tabnn tune``: an Optuna study whose trials train as members of stacks.

Optuna proposes (TPE) and records; tabnn trains. Trials are asked a batch at a time (the
ask-and-tell interface): the batch's first trial gets TPE's whole proposal, the others its
proposal of the member settings under the first one's shape (``PartialFixedSampler``), so
the batch's trials x folds train as the members of one stack, each with its own learning
rate, weight decay and label smoothing. TPE's constant liar keeps a batch's proposals apart.

A trial is scored by stratified k-fold CV on the training rows, with the same folds for
every trial. The pruner reads each trial's per-epoch validation loss (the mean over its
folds of each fold's best so far); a pruned trial's members stop at once. A deadline stops
every member still training; those trials are recorded as failed, never as scored.

A study in a storage (``sqlite:///tune.db``) survives a crash: trials left running by a
killed process are marked failed when the study is opened again, and the search goes on
until the study holds the number of trials asked for. The study records the data, metric,
folds and seed it was run with, and refuses to go on with others.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import TabnnError, UsageError
from ..estimator.classifier import TabNNClassifier
from ..evaluation.metrics import compute_metrics
from ..tasks import HIGHER_IS_BETTER
from . import space

# what a study records of its run; resuming it with other values would mix scores
STUDY_KEYS = ("data", "target", "metric", "folds", "seed", "space")
SPACE_VERSION = 1
FINISHED = ("COMPLETE", "PRUNED")
TIME_UP = "stopped by the time limit"


@dataclass
class Folds:
    """What every trial shares: the training rows, their folds and the members' rows."""

    X: object  # the training rows (DataFrame)
    y: object  # their target
    codes: np.ndarray  # the encoded target
    schema: object
    splits: list  # (fit rows, held-out rows) per fold
    members: list  # (train rows, validation rows) per fold
    metric: str

    @property
    def n_train(self) -> int:
        """Rows a fold member trains on."""
        return len(self.members[0][0])


@dataclass
class Outcome:
    """A trained trial: its fold scores, or why it has none."""

    scores: list[float] | None
    state: str  # COMPLETE, PRUNED or FAIL
    reason: str = ""


def import_optuna():
    """Optuna, or a clear error naming the extra that installs it."""
    try:
        import optuna
    except ImportError:
        raise UsageError(
            "tabnn tune needs Optuna: pip install 'tabnn[tune]' (or pip install optuna)."
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def open_study(storage: str | None, name: str, record: dict, seed: int):
    """Create the study, or load it from ``storage`` and check that it was run with the
    same data and settings; trials a killed run left running are marked failed."""
    optuna = import_optuna()
    direction = "maximize" if HIGHER_IS_BETTER[record["metric"]] else "minimize"
    if storage is not None:
        storage = _rdb_storage(optuna, storage)
        names = {s.study_name for s in optuna.study.get_all_study_summaries(storage)}
        if name in names:
            _check_record(optuna.load_study(study_name=name, storage=storage), name, record)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=5)
    study = optuna.create_study(
        study_name=name, storage=storage, direction=direction, pruner=pruner,
        load_if_exists=True,
    )  # fmt: skip
    if not study.user_attrs:
        for key, value in record.items():
            study.set_user_attr(key, value)
    running = study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.RUNNING])
    for trial in running:  # a run that was killed: its trials will never report
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    # seeded by the trials already run: a resumed study's proposals do not repeat the first's
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials), n_startup_trials=8)
    return study


def _rdb_storage(optuna, url: str):
    """An Optuna database storage for a SQLAlchemy URL, or a clear error."""
    if "://" not in url:
        raise UsageError(
            f"--storage must be a database URL such as sqlite:///tune.db; got {url!r}."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return optuna.storages.RDBStorage(url)
    except Exception as error:  # SQLAlchemy's errors for a bad URL, path or server
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"Cannot open the study storage {url!r}: {first}") from None


def _check_record(study, name: str, record: dict) -> None:
    saved = study.user_attrs
    if saved and saved.get("data") != record["data"]:
        raise UsageError(
            f"The study {name!r} belongs to another dataset (its training rows had "
            f"fingerprint {str(saved.get('data'))[:12]}, these have {record['data'][:12]}). "
            "Name a new study with --study, or tune the data it was made for."
        )
    changed = [key for key in STUDY_KEYS if saved and saved.get(key) != record[key]]
    if changed:
        was = ", ".join(f"{key} {saved.get(key)!r}" for key in changed)
        now = ", ".join(f"{key} {record[key]!r}" for key in changed)
        raise UsageError(
            f"The study {name!r} was run with {was}; this run asks for {now}. Resume it with "
            "the same settings, or name a new study with --study."
        )


def ask_batch(study, size: int, n_train: int) -> list[tuple[object, dict]]:
    """``size`` trials that share a shape: the first as TPE proposes it, the others TPE's
    member settings under that shape."""
    import optuna

    leader = study.ask()
    first = space.suggest(leader, n_train)
    batch, base = [(leader, first)], study.sampler
    fixed = {name: first[name] for name in space.SHAPE}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.sampler = optuna.samplers.PartialFixedSampler(fixed, base)
        for _ in range(size - 1):
            trial = study.ask()
            batch.append((trial, space.suggest(trial, n_train)))
    finally:
        study.sampler = base
    return batch


def cross_validate(
    folds: Folds,
    points: list[dict],
    params: dict,
    *,
    seed: int,
    on_epoch: Callable[[dict], object] | None = None,
) -> list[list[float] | None]:
    """Train every point (one shape) x every fold as ONE stack -> each point's fold scores
    (None where the metric is undefined on a fold). ``params``: the estimator parameters
    shared by every trial (class weights, device, ...)."""
    # the trials' folds are the stack's members: a preset's bag is for the refits only
    shape = {**space.estimator_params(points[0]), **params, "bagging": None}
    stack = TabNNClassifier(**shape, random_state=seed)
    n_folds = len(folds.members)
    rows = [rows for _ in points for rows in folds.members]
    # fold f of every trial starts from the same seed: trials differ by their settings only
    own = [
        {**space.member_settings(point), "seed": seed + f}
        for point in points
        for f in range(n_folds)
    ]
    stack.fit_members(folds.X, folds.y, rows, schema=folds.schema, on_epoch=on_epoch, own=own)
    proba = stack.member_proba(folds.X)
    proba = proba[..., 0] if stack.task_ == "binary" else proba
    scores = []
    for t in range(len(points)):
        values = []
        for f, (_, held_out) in enumerate(folds.splits):
            member = proba[t * n_folds + f][held_out]
            values.append(compute_metrics(stack.task_, folds.codes[held_out], member)[folds.metric])
        scores.append(None if None in values else [float(v) for v in values])
    return scores


class EpochWatch:
    """The per-epoch callback of a batch's stack: reports each trial's validation loss to
    its Optuna trial, and names the members to stop (pruned trials, or every live one
    past the deadline)."""

    def __init__(self, trials, n_folds: int, maximize: bool, deadline: float | None) -> None:
        self.trials, self.n_folds, self.deadline = trials, n_folds, deadline
        self.sign = -1.0 if maximize else 1.0  # the pruner compares in the study's direction
        self.best = np.full(len(trials) * n_folds, np.inf)
        self.pruned: set[int] = set()
        self.timed_out = False

    def __call__(self, record: dict) -> list[int]:
        losses = np.array([np.inf if v is None else v for v in record["val_loss"]], dtype=float)
        self.best = np.minimum(self.best, losses)
        stop = []
        for t, trial in enumerate(self.trials):
            members = list(range(t * self.n_folds, (t + 1) * self.n_folds))
            if t in self.pruned:
                continue
            best = self.best[members]
            if np.isfinite(best).all():
                trial.report(self.sign * float(best.mean()), record["epoch"])
                if trial.should_prune():
                    self.pruned.add(t)
                    stop += members
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.timed_out = True
            stop = list(range(len(self.trials) * self.n_folds))
        return stop


def run_batch(study, batch, folds: Folds, params: dict, seed: int, deadline, prune: bool):
    """Train one batch of trials as one stack and tell Optuna each outcome -> outcomes."""
    trials = [trial for trial, _ in batch]
    maximize = HIGHER_IS_BETTER[folds.metric]
    watch = EpochWatch(trials, len(folds.members), maximize, deadline)
    started = time.perf_counter()
    try:
        scores = cross_validate(
            folds, [point for _, point in batch], params, seed=seed,
            on_epoch=watch if prune or deadline is not None else None,
        )  # fmt: skip
        failure = ""
    except TabnnError as error:  # diverged, or too large: these trials fail, the search goes on
        scores, failure = [None] * len(batch), str(error)
    seconds = time.perf_counter() - started
    outcomes = [_outcome(t, values, watch, failure) for t, values in enumerate(scores)]
    for (trial, _), outcome in zip(batch, outcomes):
        _tell(study, trial, outcome, seconds / len(batch), len(batch))
    return outcomes


def _outcome(t: int, values, watch: EpochWatch, failure: str) -> Outcome:
    if failure:
        return Outcome(None, "FAIL", failure)
    if watch.timed_out and t not in watch.pruned:
        return Outcome(None, "FAIL", TIME_UP)
    if t in watch.pruned:
        return Outcome(None, "PRUNED")
    if values is None:
        return Outcome(None, "FAIL", "the metric is undefined on some fold")
    return Outcome(values, "COMPLETE")


def _tell(study, trial, outcome: Outcome, seconds: float, stacked: int) -> None:
    import optuna

    trial.set_user_attr("seconds", seconds)
    trial.set_user_attr("stacked_with", stacked)
    if outcome.state == "COMPLETE":
        trial.set_user_attr("fold_scores", outcome.scores)
        study.tell(trial, float(np.mean(outcome.scores)))
        return
    if outcome.reason:
        trial.set_user_attr("reason", outcome.reason)
    study.tell(trial, state=getattr(optuna.trial.TrialState, outcome.state))


def finished(study) -> int:
    """Trials scored or pruned so far (failed ones do not count towards ``--trials``)."""
    return sum(trial.state.name in FINISHED for trial in study.get_trials(deepcopy=False))
