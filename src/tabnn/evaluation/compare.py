"""Comparing model designs with stratified (repeated) k-fold cross-validation.

The test rows are set aside first and touched once, at the end. On the training portion,
every design trains all its folds x repeats as the members of ONE stack (each member with
its fold's rows, its own numeric statistics and its own early stopping on an inner
validation split of its fold), so a k-fold comparison costs about one fit per design.
Folds are drawn once from the seed and shared by every design and baseline, so the
comparison is paired.

This module owns the comparison (``Comparison``, ``CompareResult``, ``compare``), the fold
members of one stack, scoring those members and the baselines on the same folds, the
summary with its paired test, and nested cross-validation. It builds on the estimator's
public member-level API only (``as_frames``, ``infer_schema``, ``fit_members``, ``encode``,
``member_proba``, ``design_matrix``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.splits import encoded_for_split, split_indices, stratified_folds
from ..errors import DataError, UsageError
from ..estimator.classifier import TabNNClassifier
from ..estimator.params import bagging_of, check_memory, validate_params
from ..features.schema import drop_missing_targets
from ..nn.designs import design_params
from ..nn.forward import mean_probabilities
from ..tasks import HIGHER_IS_BETTER
from .baselines import baseline_scores, lightgbm_frame, lightgbm_scores, lightgbm_wanted
from .holdout import holdout_evaluation, positive_proba
from .metrics import check_metric, compute_metrics, mean_std
from .stats import corrected_paired_t_test

__all__ = [
    "REFITS",
    "CompareResult",
    "Comparison",
    "baseline_folds",
    "compare",
    "cross_validate_designs",
    "fold_members",
    "nested_cross_validation",
    "score_stack",
    "summarise",
]

REFITS = ("full", "ensemble")


@dataclass
class Comparison:
    """Per-fold scores of every design and baseline on the same folds, and the verdict.

    Attributes
    ----------
    scores : dict
        name -> list of per-fold metric dicts (all metrics), in fold order.
    metric : str
        The metric designs are ranked by.
    summary : dict
        name -> {"mean", "std"} of ``metric`` over folds.
    ranking : list of str
        Designs (not baselines), best first.
    paired : dict
        The best two designs' difference over the same folds and the corrected
        resampled t-test (or the winner against the best baseline when there is one
        design).
    """

    task: str
    metric: str
    folds: int
    repeats: int
    fold_rows: list[dict]
    scores: dict[str, list[dict]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    summary: dict[str, dict] = field(default_factory=dict)
    ranking: list[str] = field(default_factory=list)
    paired: dict = field(default_factory=dict)
    winner: str = ""

    def values(self, name: str) -> list[float]:
        """Per-fold values of the ranking metric for one design or baseline."""
        return [fold[self.metric] for fold in self.scores[name]]

    def to_dict(self) -> dict:
        return {
            "task": self.task,
            "metric": self.metric,
            "folds": self.folds,
            "repeats": self.repeats,
            "fold_rows": self.fold_rows,
            "per_fold": {name: self.values(name) for name in self.scores},
            "scores": self.scores,
            "seconds": self.seconds,
            "summary": self.summary,
            "ranking": self.ranking,
            "paired": self.paired,
            "winner": self.winner,
        }


def fold_members(
    y: np.ndarray, task: str, folds, validation_fraction: float, seed: int, bagging=None
):
    """Each fold's fitting rows split again into training rows and the validation rows
    its member stops early on; the fold's held-out rows are only ever scored. With
    ``bagging=k``, each fold's fitting rows are cut into k stratified folds instead, and
    the fold gets k members, one per inner fold, in a row (outer folds x bags)."""
    members = []
    for fit_rows, _ in folds:
        if bagging:
            inner = stratified_folds(y[fit_rows], task, n_splits=bagging, seed=seed)
            members += [(fit_rows[train], fit_rows[val]) for train, val in inner]
            continue
        train, val, _ = split_indices(
            y[fit_rows], task, val_size=validation_fraction, test_size=0.0, seed=seed
        )
        members.append((fit_rows[train], fit_rows[val]))
    return members


# how a memory refusal names the members of a fold stack
FOLD_MEMBERS = {"n_members": ("{} members (--folds x --repeats)", "fewer folds or repeats")}


def design_estimator(name: str, params: dict, **extra) -> TabNNClassifier:
    """An unfitted estimator for design or preset ``name`` with the shared ``params``."""
    return TabNNClassifier(**{**params, **design_params(name), **extra})


def check_fold_stacks(designs, params: dict, folds, repeats, rows: int) -> None:
    """Refuse (UsageError), before any split is made, a design whose stack of folds x
    repeats (x bags) members would not fit in memory; each member trains on a fold's rows."""
    if not (isinstance(folds, int) and isinstance(repeats, int)) or folds < 2:
        return  # stratified_folds says what they must be
    for name in designs:
        stack = design_estimator(name, params)
        fitting = rows - rows // folds
        members = folds * repeats * (bagging_of(stack) or 1)
        check_memory(stack, members=members, rows=fitting, labels=FOLD_MEMBERS)


def score_stack(stack: TabNNClassifier, inputs, y: np.ndarray, folds, members=None) -> list:
    """Score fold k's members of a fitted stack (member k, or with ``bagging`` its bag:
    see ``fold_members``) on fold k's held-out rows, their probabilities averaged;
    ``inputs`` are the stack's input arrays for every row (``stack.encode``). With
    ``twins=True`` and each member's (train, val) rows (``members``), each fold gets the
    twin member ``fit`` would choose on its rows (``fold_twins``)."""
    proba = stack.member_proba(inputs)  # (members, rows, outputs)
    bag = bagging_of(stack) or 1
    scores = []
    for k, (fit_rows, held_out) in enumerate(folds):
        fold = proba[k * bag : (k + 1) * bag, held_out]
        mean = mean_probabilities(fold, stack.task_)  # predict_proba's shape
        twins = fold_twins(stack, inputs, y, members, range(k * bag, (k + 1) * bag), fit_rows)
        if twins is not None:
            mean = twins.blend(mean, inputs.numeric[held_out], inputs.categorical[held_out])
        scored = mean[:, 1] if stack.task_ == "binary" else mean
        scores.append(compute_metrics(stack.task_, y[held_out], scored))
    return scores


def fold_twins(stack: TabNNClassifier, inputs, y, members, fold: range, fit_rows):
    """The twin member ``fit`` would choose for one outer fold (its stack members
    ``fold``), on their validation rows, remembering the fold's fitting rows; None when
    twins are off, no ``members`` are given or the twins earn no weight."""
    if not stack.twins or members is None:
        return None
    from ..estimator.recipe import HeldOut, held_out_members  # fit time only

    empty = np.arange(0)  # the other folds' members hold out nothing here
    rows = [(tr, va if i in fold else empty) for i, (tr, va) in enumerate(members)]
    held = HeldOut(inputs.numeric, inputs.categorical, y, rows)
    network, temperature = stack.inference_model_, stack.temperature_
    return held_out_members(held, network, temperature, stack.schema_, fit_rows)[0]


def baseline_folds(stack: TabNNClassifier, inputs, y: np.ndarray, folds, seed):
    """Most-frequent and logistic-regression baselines on the same folds, each fold on
    the preprocessing fitted for that fold's member; LightGBM when it is installed."""
    x_num, x_cat = inputs
    gbm_frame = lightgbm_frame(x_num, x_cat) if lightgbm_wanted(stack.task_) else None
    results: dict[str, list[dict]] = {}
    for k, (fit_rows, held_out) in enumerate(folds):
        design = stack.design_matrix(inputs, member=k * (bagging_of(stack) or 1))
        scores = baseline_scores(
            stack.task_, design[fit_rows], y[fit_rows], design[held_out], y[held_out], seed=seed
        )
        if gbm_frame is not None:
            scores["lightgbm"] = lightgbm_scores(
                stack.task_, gbm_frame, y, fit_rows, held_out, seed
            )
        for name, values in scores.items():
            results.setdefault(name, []).append(values)
    return results


def summarise(result: Comparison, n_fit: float, n_held_out: float) -> None:
    """Mean +- std per name, the ranking of designs, the paired test of the best two."""
    higher = HIGHER_IS_BETTER[result.metric]
    for name in result.scores:
        if None in result.values(name):
            raise DataError(
                f"{result.metric} is undefined on some folds for {name} (for example a "
                "fold whose held-out rows hold one class); rank by another --metric."
            )
        mean, std = mean_std(result.values(name))
        result.summary[name] = {"mean": mean, "std": std}
    designs = [name for name in result.scores if name in result.seconds]
    result.ranking = sorted(designs, key=lambda n: result.summary[n]["mean"], reverse=higher)
    result.winner = result.ranking[0]
    baselines = [name for name in result.scores if name not in result.seconds]
    best_baseline = sorted(baselines, key=lambda n: result.summary[n]["mean"], reverse=higher)
    rival = result.ranking[1] if len(result.ranking) > 1 else best_baseline[0]
    test = corrected_paired_t_test(
        result.values(result.winner), result.values(rival), n_train=n_fit, n_test=n_held_out
    )
    result.paired = {"a": result.winner, "b": rival, **test}


def checked_designs(designs, params: dict, seed: int = 0) -> list[TabNNClassifier]:
    """One unfitted estimator per design (a default-design one when there is none), each
    with its parameters checked (UsageError) before any data is read: an option that one
    design cannot honour (``norm`` for the default's ensemble) stops the comparison before
    the other designs train, and does not stop a comparison without that design."""
    params = {"random_state": seed, **params}
    stacks = [design_estimator(name, params) for name in designs]
    stacks = stacks or [TabNNClassifier(**params)]
    for stack in stacks:
        validate_params(stack)
    refuse_repeated_models(designs, stacks)
    return stacks


def refuse_repeated_models(designs, stacks) -> None:
    """Refuse two names for one model (``default`` and ``fast`` under ``--preset fast``, a
    name given twice): they would train the same networks and rank one above the other."""
    seen: dict = {}
    for name, stack in zip(designs, stacks):
        key = repr(sorted(stack.get_params().items()))
        if key in seen:
            twice = (
                f"lists {name!r} twice"
                if seen[key] == name
                else f"names one model twice: {seen[key]!r} and {name!r} are the same design "
                "with the same preset and options here"
            )
            raise UsageError(f"--models {twice}. List it once.")
        seen[key] = name


def _prepared(frame, target, metric, seed: int, params: dict, designs):
    """Checked parameters, the schema of these rows, the ranking metric and the encoded
    target, shared by plain and nested cross-validation."""
    probe = checked_designs(designs, params, seed)[0]
    schema = probe.infer_schema(frame, target)
    return probe, schema, check_metric(metric, schema.task), schema.encode_target(target)


def cross_validate_designs(
    frame: pd.DataFrame,
    target,
    designs: list[str],
    *,
    folds: int = 5,
    repeats: int = 1,
    metric: str | None = None,
    seed: int = 0,
    params: dict | None = None,
    on_design=None,
    on_epoch=None,
    keep_twins: bool = False,
) -> tuple[Comparison, dict[str, TabNNClassifier]]:
    """Cross-validate each design as one stack on ``frame``; returns the comparison and
    each design's fitted fold stack. ``on_design(name)`` is called as each design
    starts, ``on_epoch(record)`` after each epoch of its stack. ``keep_twins``: each
    stack chooses a twin member over all of ``frame``'s rows on its members' validation
    rows (for ``refit="ensemble"``, where the stack is the model); the fold scores never
    use it."""
    params = dict(params or {})
    probe, schema, metric, y = _prepared(frame, target, metric, seed, params, designs)
    check_fold_stacks(designs, params, folds, repeats, len(y))
    splits = stratified_folds(
        y, schema.task, n_splits=folds, repeats=repeats, seed=seed, class_names=schema.classes
    )
    result = Comparison(
        schema.task,
        metric,
        folds,
        repeats,
        [{"fit": len(f), "held_out": len(h)} for f, h in splits],
    )
    stacks, inputs = {}, {}
    for name in designs:
        if on_design is not None:
            on_design(name)
        stack = design_estimator(name, params, random_state=seed)
        members = fold_members(  # each design's own: a bagged one gets its bags
            y, schema.task, splits, probe.validation_fraction, seed, bagging=bagging_of(stack)
        )
        started = time.perf_counter()
        # every training row for a twin member, which only the ensemble refit keeps
        # (scoring a fold chooses its own twins on that fold's rows: ``fold_twins``)
        twin_rows = np.arange(len(frame)) if keep_twins else None
        stack.fit_members(
            frame, target, members, schema=schema, on_epoch=on_epoch, twin_rows=twin_rows
        )
        result.seconds[name] = time.perf_counter() - started
        inputs[name] = stack.encode(frame)
        result.scores[name] = score_stack(stack, inputs[name], y, splits, members)
        stacks[name] = stack
    first = designs[0]
    result.scores.update(baseline_folds(stacks[first], inputs[first], y, splits, seed))
    summarise(
        result,
        n_fit=float(np.mean([len(f) for f, _ in splits])),
        n_held_out=float(np.mean([len(h) for _, h in splits])),
    )
    return result, stacks


def nested_cross_validation(
    frame: pd.DataFrame,
    target,
    designs: list[str],
    *,
    folds: int = 5,
    repeats: int = 1,
    metric: str | None = None,
    seed: int = 0,
    params: dict | None = None,
) -> dict:
    """Nested CV: an honest score for "choose the best design by CV, then refit it".

    Each outer fold runs the whole inner comparison on its fitting rows only, refits the
    inner winner there and scores it once on the outer held-out rows. The mean over outer
    folds estimates how well the selection procedure generalises; the plain CV score of
    the chosen design is optimistic because the same folds chose it (the textbook
    protocol of workload W5).
    """
    params = dict(params or {})
    _, schema, metric, y = _prepared(frame, target, metric, seed, params, designs)
    outer = stratified_folds(y, schema.task, n_splits=folds, seed=seed, class_names=schema.classes)
    records = []
    for j, (fit_rows, held_out) in enumerate(outer):
        X_fit, y_fit = frame.iloc[fit_rows], target.iloc[fit_rows]
        inner, _ = cross_validate_designs(
            X_fit.reset_index(drop=True), y_fit.reset_index(drop=True), designs, folds=folds,
            repeats=repeats, metric=metric, seed=seed, params=params,
        )  # fmt: skip
        chosen = design_estimator(inner.winner, params)
        chosen.set_params(random_state=seed).fit(X_fit, y_fit)
        proba = positive_proba(chosen, frame.iloc[held_out])
        scores = compute_metrics(schema.task, y[held_out], proba)
        records.append(
            {
                "fold": j + 1,
                "chosen": inner.winner,
                "inner_cv": inner.summary[inner.winner]["mean"],
                "score": scores[metric],
            }
        )
    mean, std = mean_std([r["score"] for r in records])
    return {"metric": metric, "outer_folds": records, "mean": mean, "std": std}


@dataclass
class CompareResult:
    """What ``compare`` did: the cross-validated comparison, the winner refitted (or the
    winner's fold models as an ensemble) and its one evaluation on the test rows."""

    comparison: Comparison
    estimator: TabNNClassifier
    test: dict
    rows: dict
    test_rows: np.ndarray
    refit: str
    nested: dict | None = None
    # what the workflow around it adds (workflows.save_and_track): what it read, where
    # the model, its report and the tracked run went
    source: dict = field(default_factory=dict)
    model_dir: Path | None = None
    report: Path | None = None
    tracking: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "comparison": self.comparison.to_dict(),
            "nested": self.nested,
            "refit": self.refit,
            "rows": self.rows,
            "test": self.test,
        }


def compare(
    X,
    y,
    models=("wide", "deep", "default"),
    *,
    folds: int = 5,
    repeats: int = 1,
    metric: str | None = None,
    refit: str = "full",
    test_size: float = 0.15,
    seed: int = 0,
    nested: bool = False,
    on_design=None,
    on_epoch=None,
    **params,
) -> CompareResult:
    """Compare designs with stratified k-fold CV, refit the winner, test it once.

    Parameters
    ----------
    X : array-like or DataFrame
    y : array-like, Series or DataFrame (several 0/1 columns for multi-label)
    models : sequence of str
        Designs: ``default``, ``wide``, ``deep`` or ``mlp:256-128``; or presets,
        ``fast`` and ``best`` (the default design under that preset).
    folds, repeats : int
        Stratified k-fold, repeated with seeds ``seed + r``, on the training portion.
    metric : str, optional
        The metric to rank by; the task's primary metric by default.
    refit : {"full", "ensemble"}
        Refit the winner on the whole training portion, or keep its fold models as an
        ensemble (their probabilities averaged).
    test_size : float
        Share of rows held out, untouched until the winner's single evaluation.
    seed : int
    nested : bool
        Also run nested cross-validation of the whole selection (see
        :func:`nested_cross_validation`); costs about ``folds`` more comparisons.
    on_design, on_epoch : callable, optional
        Progress: ``on_design(name)`` as each design's cross-validation starts (and
        ``on_design("refit")`` before the refit), ``on_epoch(record)`` after each epoch.
    **params
        Any other ``TabNNClassifier`` parameter, shared by every design.

    Returns
    -------
    CompareResult

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from tabnn import compare
    >>> X, y = load_iris(return_X_y=True)
    >>> result = compare(X, y, ["wide", "deep"], folds=3, epochs=20)
    >>> sorted(result.comparison.summary)[:2], len(result.comparison.values("wide"))
    (['deep', 'logistic_regression'], 3)
    """
    if refit not in REFITS:
        raise UsageError(f"refit must be one of {', '.join(REFITS)}; got {refit!r}.")
    designs = list(models)
    probe = checked_designs(designs, params, seed)[0]
    frame, target = probe.as_frames(X, y)
    frame, target, _ = drop_missing_targets(frame, target)
    y_split, task = encoded_for_split(target)
    train, _, test = split_indices(y_split, task, val_size=0.0, test_size=test_size, seed=seed)
    X_train, y_train = (
        frame.iloc[train].reset_index(drop=True),
        target.iloc[train].reset_index(drop=True),
    )
    comparison, stacks = cross_validate_designs(
        X_train,
        y_train,
        designs,
        folds=folds,
        repeats=repeats,
        metric=metric,
        seed=seed,
        params=params,
        on_design=on_design,
        on_epoch=on_epoch,
        keep_twins=refit == "ensemble",
    )
    if refit == "full":
        if on_design is not None:
            on_design("refit")
        estimator = design_estimator(comparison.winner, params, random_state=seed)
        estimator.fit(X_train, y_train, on_epoch=on_epoch)
    else:
        estimator = stacks[comparison.winner]
    test_scores = holdout_evaluation(estimator, X_train, y_train, frame, target, test)
    rows = {"train": len(train), "test": len(test)}
    result = CompareResult(comparison, estimator, test_scores, rows, test, refit)
    if nested:
        result.nested = nested_cross_validation(
            X_train, y_train, designs, folds=folds, repeats=repeats, metric=metric, seed=seed,
            params=params,
        )  # fmt: skip
    return result
