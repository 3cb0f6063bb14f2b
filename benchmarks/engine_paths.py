"""The engine's hand-written paths against autograd and public torch, measured in one run.

``fit_stack`` has two hand-written paths: a backward pass written by hand
(``backward="manual"``, ``engine.steps.ManualSteps``; what ``auto`` picks for plain
``TabularMLP`` networks) and torch's private kernels (``private_kernels=True``,
``engine.kernels``: the fused Adam, ``_foreach_*``, ``threshold_backward``). The project's
rule (issue 21): autograd and public torch by default, a hand-written path kept only where
this benchmark shows it earns at least 1.3x on the workload it serves.

The wall time of the whole ``fit_stack`` call is measured for every variant

- autograd + public kernels (the baseline every ratio divides),
- autograd + private kernels,
- manual backward + public kernels (plain networks only),
- manual backward + private kernels (plain networks only),

on these workloads:

(a) W1, sonar (``benchmarks/w1_tutorial.py``'s protocol): the 60-180-1 ``wide`` and the
    60-60-60-60-1 ``deep`` MLP, each as ONE stack of its 5 stratified fold members on the
    70 % training split, batch 10, Adam lr 1e-4, 60 epochs, best epoch by validation loss;
(b) the two sizes of ``benchmarks/throughput.py``: binary 64-128-128-128-1 at batch 128 and
    64-256-256-256-1 at batch 1024 on its synthetic rows (200,000 of them here, not
    1,000,000 for the large one), one member, 1 epoch;
(c) the default design (``TabNNClassifier()``'s ``EnsembleMLP``, built as the estimator
    builds it: schema, clipped scaling, its batch, learning rate and epochs) on the bundled
    Adult census table, 15 % held out for early stopping; autograd only, so only kernels
    on and off are compared;
(d) a CV stack: 5 fold members of a binary 64-256-256-1 MLP on 10,000 synthetic rows
    (8,000 training rows each), batch 128, 10 epochs.

The variants run interleaved (each repeat runs them all, in an order rotated by one per
repeat) after one untimed warm-up fit each; the table gives each one's median and its
ratio to the baseline's median, and per workload whether the manual backward (manual +
private against autograd + private, and manual + public against the baseline) and the
private kernels (private against public, under each backward) earn the 1.3x. The warm-up
fits also check that the comparison is like for like: every variant must train the same
network as the baseline up to float32 rounding (max abs difference of the members' logits
on up to 4,096 rows, of the best validation losses, and whether the best epochs agree).

Run from the repository root::

    python benchmarks/engine_paths.py              # the sizes above, 5 repeats (~4 minutes)
    python benchmarks/engine_paths.py --threads 1  # the same on one torch thread
    python benchmarks/engine_paths.py --quick      # fewer epochs and rows, 2 repeats

On a shared machine prefer ``--threads 1``: a fit whose steps are large enough for the
engine to use every core (b, c, d; W1's steps always run on one thread) stalls whenever
another process holds a core, by 10x and more, which no number of repeats averages out.
One thread makes every step slower, so the fixed costs the hand-written paths save weigh
a little less than on an idle machine's cores.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import gc
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.preprocessing import LabelEncoder

from tabnn.data import read_table
from tabnn.engine.config import FitSpec, History, Member, TensorData, TrainConfig
from tabnn.engine.train import fit_stack
from tabnn.estimator import params
from tabnn.estimator.classifier import TabNNClassifier
from tabnn.features.preprocess import Preprocessor
from tabnn.features.schema import drop_missing_targets
from tabnn.nn.config import build_config
from tabnn.nn.ensemble import build_network
from tabnn.nn.forward import predict_logits
from tabnn.nn.mlp import TabularMLP

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
BUNDLED = ROOT / "tests" / "data"
CPU = torch.device("cpu")
GAIN = 1.3  # what a hand-written path must earn to stay (issue 21)
CHECK_ROWS = 4096


@dataclass(frozen=True)
class Variant:
    backward: str
    private_kernels: bool

    @property
    def name(self) -> str:
        return f"{self.backward} + {'private' if self.private_kernels else 'public'}"


BASELINE = Variant("autograd", False)
VARIANTS = [BASELINE, Variant("autograd", True), Variant("manual", False), Variant("manual", True)]


@dataclass
class Case:
    """One workload: a model to copy before each fit, and fit_stack's other arguments."""

    name: str
    description: str
    model: torch.nn.Module
    data: TensorData
    members: list[Member]
    task: str
    config: TrainConfig
    check: tuple[np.ndarray, np.ndarray]  # raw rows (x_num, x_cat) whose logits are compared

    @property
    def plain(self) -> bool:
        return isinstance(self.model, TabularMLP) and self.model.plain

    @property
    def variants(self) -> list[Variant]:
        return [v for v in VARIANTS if self.plain or v.backward == "autograd"]

    def fit(self, variant: Variant) -> tuple[float, torch.nn.Module, History]:
        """Seconds of one fit_stack call on a fresh copy of the model (copy not timed)."""
        model = copy.deepcopy(self.model)
        gc.collect()
        start = time.perf_counter()
        spec = FitSpec(
            model,
            self.data,
            self.members,
            self.task,
            self.config,
            backward=variant.backward,
            private_kernels=variant.private_kernels,
        )
        history = fit_stack(spec)
        return time.perf_counter() - start, model, history


def train_config(epochs: int, batch: int, lr: float) -> TrainConfig:
    """Adam, constant rate, no decay, no clipping, no early stop (patience = epochs)."""
    return TrainConfig(
        epochs=epochs,
        batch_size=batch,
        lr=lr,
        weight_decay=0.0,
        optimizer="adam",
        schedule="constant",
        warmup_epochs=0,
        patience=epochs,
        grad_clip=0.0,
    )


def data_file(*parts: str) -> Path:
    """The shared data directory's copy of a file when there is one, else the bundled one."""
    shared = SHARED.joinpath(*parts)
    return shared if shared.exists() else BUNDLED.joinpath(*parts)


def numeric_stack(
    x: np.ndarray, row_sets: list[np.ndarray], hidden: str | list[int], scaling: str = "standard"
) -> TabularMLP:
    """A plain binary stack, member k standard-scaling with its own rows' statistics."""
    columns = [f"x{j}" for j in range(x.shape[1])]
    frame = pd.DataFrame(x, columns=columns)
    preps = [Preprocessor.fit(frame.iloc[rows], columns, [], scaling=scaling) for rows in row_sets]
    config = build_config(preps[0], 1, preset=hidden, dropout=0.0, n_members=len(preps))
    model = TabularMLP(config)
    for k, prep in enumerate(preps):
        model.encoder.set_statistics(k, prep)
    return model


def no_categories(x: np.ndarray) -> np.ndarray:
    return np.zeros((len(x), 0), dtype=np.int64)


# --- the workloads ---------------------------------------------------------------------


def w1_cases(epochs: int, seed: int = 0) -> list[Case]:
    """(a) sonar as benchmarks/w1_tutorial.py splits it: each design's 5 folds, one stack."""
    frame = pd.read_csv(data_file("sonar", "sonar.csv"), header=None)
    x = frame.iloc[:, 0:60].to_numpy(dtype=np.float32)
    y = LabelEncoder().fit_transform(frame.iloc[:, 60]).astype(np.float32)
    x, _, y, _ = train_test_split(x, y, train_size=0.7, shuffle=True, random_state=seed)
    folds = list(StratifiedKFold(n_splits=5, shuffle=True, random_state=seed).split(x, y))
    data = TensorData.from_arrays(x, no_categories(x), y, CPU)
    members = [Member(train, val, seed + k) for k, (train, val) in enumerate(folds)]
    config = train_config(epochs, batch=10, lr=1e-4)
    return [
        Case(
            f"W1 {design}",
            f"sonar {len(x)} rows, 5 folds as one stack, {shape}, batch 10, {epochs} epochs",
            numeric_stack(x, [train for train, _ in folds], design),
            data,
            members,
            "binary",
            config,
            (x, no_categories(x)),
        )
        for design, shape in (("wide", "60-180-1"), ("deep", "60-60-60-60-1"))
    ]


def synthetic(rows: int, features: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """benchmarks/throughput.py's rows: standard normal features, the label the sign of a
    random linear score plus noise."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, features), dtype=np.float32)
    score = x @ rng.standard_normal(features).astype(np.float32)
    y = (score + rng.standard_normal(rows).astype(np.float32) > 0).astype(np.float32)
    return x, y


def throughput_case(rows: int, epochs: int, hidden: list[int], batch: int) -> Case:
    """(b) a size of throughput.py: 64-hidden-1, one member, every row trains (no
    validation rows), statistics from a 20,000-row sample as there."""
    x, y = synthetic(rows, 64)
    all_rows = np.arange(rows)
    sample = all_rows[:: max(1, rows // 20_000)]
    model = numeric_stack(x, [sample], hidden)
    shape = "-".join(str(n) for n in [64, *hidden, 1])
    return Case(
        f"throughput {shape} b{batch}",
        f"synthetic {rows:,} x 64, {shape}, 1 member, batch {batch}, {epochs} epoch(s)",
        model,
        TensorData.from_arrays(x, no_categories(x), y, CPU),
        [Member(all_rows, all_rows[:0], 0)],
        "binary",
        train_config(epochs, batch=batch, lr=1e-3),
        (x[:CHECK_ROWS], no_categories(x[:CHECK_ROWS])),
    )


def default_design_case(epochs: int | None, rows: int | None, seed: int = 0) -> Case:
    """(c) TabNNClassifier()'s network, preprocessing and settings on Adult, built step by
    step as the estimator's fit recipe builds them (one member, its validation split)."""
    table = read_table(data_file("adult", "adult.data"), header=False)
    if rows is not None:
        table = table.sample(n=rows, random_state=seed).reset_index(drop=True)
    estimator = TabNNClassifier(random_state=seed)
    frame, target = estimator.as_frames(table.iloc[:, :-1], table.iloc[:, -1])
    frame, target, _ = drop_missing_targets(frame, target)
    schema = estimator.infer_schema(frame, target)
    y_all = schema.encode_target(target)
    x_all = schema.check(frame)
    train, val = estimator.validation_rows(y_all, schema.task)
    prep = Preprocessor.fit(
        x_all.iloc[train],
        schema.numeric,
        schema.categorical,
        scaling=params.recipe(estimator).scaling,
        missing_indicator=estimator.missing_indicator,
    )
    x_num, x_cat = prep.transform(x_all)
    model = build_network(params.network_config(estimator, schema, prep, 1, len(train)))
    model.encoder.set_statistics(0, prep)
    config = params.train_config(estimator, len(train))
    epochs = epochs or config.epochs
    config = dataclasses.replace(config, epochs=epochs, patience=epochs)  # no early stop
    return Case(
        "default design",
        f"Adult {len(train):,} train / {len(val):,} val rows, {type(model).__name__} "
        f"(x{model.config.ensemble_size}, hidden {model.config.hidden}), "
        f"batch {config.batch_size}, {epochs} epochs",
        model,
        TensorData.from_arrays(x_num, x_cat, y_all, CPU),
        [Member(train, val, seed)],
        schema.task,
        config,
        (x_num[:CHECK_ROWS], x_cat[:CHECK_ROWS]),
    )


def cv_stack_case(rows: int, epochs: int) -> Case:
    """(d) 5 fold members of a plain 64-256-256-1 MLP, each scaling with its own rows."""
    x, y = synthetic(rows, 64, seed=1)
    folds = list(StratifiedKFold(n_splits=5, shuffle=True, random_state=0).split(x, y))
    return Case(
        "CV stack",
        f"synthetic {rows:,} x 64, 5 folds as one stack, 64-256-256-1, batch 128, {epochs} epochs",
        numeric_stack(x, [train for train, _ in folds], [256, 256]),
        TensorData.from_arrays(x, no_categories(x), y, CPU),
        [Member(train, val, k) for k, (train, val) in enumerate(folds)],
        "binary",
        train_config(epochs, batch=128, lr=1e-3),
        (x[:CHECK_ROWS], no_categories(x[:CHECK_ROWS])),
    )


# --- measuring ---------------------------------------------------------------------------


@dataclass
class Agreement:
    """How far a variant's trained stack is from the baseline's."""

    logits: float  # max abs difference
    scale: float  # the baseline's max abs logit
    same_class: float  # share of (member, row) pairs predicting the baseline's class
    val_loss: float
    same_best_epochs: bool


def agreement(case: Case, model, history: History, base_model, base_history) -> Agreement:
    ours = predict_logits(model, *case.check, CPU)
    theirs = predict_logits(base_model, *case.check, CPU)
    losses = [
        abs(a - b)
        for a, b in zip(history.best_val_loss, base_history.best_val_loss)
        if a is not None and b is not None
    ]
    if ours.shape[-1] == 1:
        same = (ours > 0) == (theirs > 0)
    else:
        same = ours.argmax(-1, keepdim=True) == theirs.argmax(-1, keepdim=True)
    return Agreement(
        float((ours - theirs).abs().max()),
        float(theirs.abs().max()),
        float(same.float().mean()),
        max(losses) if losses else float("nan"),
        history.best_epoch == base_history.best_epoch,
    )


def measure(case: Case, repeats: int) -> tuple[dict[Variant, list[float]], dict]:
    """Warm-up fits (checked against the baseline), then ``repeats`` interleaved rounds."""
    variants = case.variants
    _, base_model, base_history = case.fit(BASELINE)
    agreements = {}
    for variant in variants[1:]:
        _, model, history = case.fit(variant)
        agreements[variant] = agreement(case, model, history, base_model, base_history)
    times: dict[Variant, list[float]] = {v: [] for v in variants}
    for r in range(repeats):
        for variant in variants[r % len(variants) :] + variants[: r % len(variants)]:
            times[variant].append(case.fit(variant)[0])
    return times, agreements


# --- the report --------------------------------------------------------------------------


# each hand-written path against the variant that differs from it in that path alone
GAINS = {
    "manual, public kernels": (VARIANTS[0], VARIANTS[2]),
    "manual, private kernels": (VARIANTS[1], VARIANTS[3]),
    "private, autograd": (VARIANTS[0], VARIANTS[1]),
    "private, manual": (VARIANTS[2], VARIANTS[3]),
    "both (auto's path)": (VARIANTS[0], VARIANTS[3]),
}


def gains(medians: dict[Variant, float]) -> dict[str, float | None]:
    """Each path's speed-up (reference median / path's median), None where not measured."""
    return {
        name: medians[slow] / medians[fast] if slow in medians and fast in medians else None
        for name, (slow, fast) in GAINS.items()
    }


def verdict(gain: float | None) -> str:
    if gain is None:
        return "n/a"
    return f"{gain:.2f}x {'EARNS' if gain >= GAIN else 'no'}"


def report(case: Case, times: dict[Variant, list[float]], agreements: dict) -> dict:
    medians = {v: statistics.median(t) for v, t in times.items()}
    base = medians[BASELINE]
    print(f"\n{case.name}: {case.description} (load average {os.getloadavg()[0]:.1f})")
    print(
        f"{'workload':16s} {'variant':20s} {'median s':>9s} {'min s':>7s} {'max s':>7s} "
        f"{'x baseline':>10s}  {'|d logit|':>9s} {'|logit|':>7s} {'same cls':>8s} "
        f"{'|d val loss|':>12s} {'best ep':>7s}"
    )
    for variant, median in medians.items():
        agree = agreements.get(variant)
        checks = (
            f"{agree.logits:9.1e} {agree.scale:7.2f} {100 * agree.same_class:7.2f}% "
            f"{agree.val_loss:12.2e} "
            f"{'same' if agree.same_best_epochs else 'DIFFER':>7s}"
            if agree
            else f"{'(baseline)':>9s}"
        )
        print(
            f"{case.name:16s} {variant.name:20s} {median:9.3f} {min(times[variant]):7.3f} "
            f"{max(times[variant]):7.3f} {base / median:9.2f}x  {checks}"
        )
    for name, gain in gains(medians).items():
        if gain is not None:
            print(f"  {name + ':':26s} {verdict(gain)}")
    if not case.plain:
        print("  manual backward: not a plain network, autograd only")
    return medians


def summary(results: dict[str, dict[Variant, float]]) -> None:
    """One line per workload: every path's speed-up, and whether it earns GAIN."""
    print(f"\nsummary: speed-up of each hand-written path over its reference (>= {GAIN}x earns)")
    print(f"{'workload':16s}" + "".join(f" {name:>23s}" for name in GAINS))
    for name, medians in results.items():
        print(f"{name:16s}" + "".join(f" {verdict(g):>23s}" for g in gains(medians).values()))
    for name in GAINS:
        earned = [
            w for w, medians in results.items() if (gain := gains(medians)[name]) and gain >= GAIN
        ]
        print(f"{name} earns {GAIN}x on: {', '.join(earned) if earned else 'none'}")


NOTES = """
notes:
- seconds are whole fit_stack calls (input encoding, setup and, where there are validation
  rows, each epoch's validation included) on a fresh copy of the same initial model; each
  variant has one untimed warm-up fit first, then the repeats run interleaved.
- "x baseline" is the baseline's median over the variant's (above 1: faster). A path
  earns its keep at >= 1.3x against the variant that differs from it in that path alone:
  the manual backward against autograd with the same kernels, the private kernels against
  the public ones with the same backward.
- the warm-up fits check that every variant trains the same stack: |d logit| is the
  largest difference of any member's logit on the check rows from the baseline's after
  training (|logit| the baseline's largest logit), "same cls" the share of (member, row)
  pairs predicting the class the baseline does, |d val loss| the largest
  difference of a member's best validation loss, "best ep" whether the members' best
  epochs agree. float32 rounding differs between the paths (the fused Adam orders its
  arithmetic differently, the hand-written backward sums in another order) and Adam's
  normalised steps amplify it (a gradient near zero moves its weight by up to lr either
  way), so differences that grow with steps and learning rate are expected; the
  baseline run twice is bit-identical.
- the fit's threads (up to torch's setting, see the header) and matmul library are the
  engine's own choice (engine.cpu), the same for every variant; the machine may be
  shared: compare rows of one run, and rerun when the load average printed per workload
  is near or above the CPU count (multi-threaded steps then stall waiting for a core, by
  10x or more: --threads 1 measures without that)."""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and rows, 2 repeats")
    parser.add_argument("--repeats", type=int, default=0, help="timed rounds (default 5, quick 2)")
    parser.add_argument(
        "--only", choices=["w1", "throughput", "default", "cv"], help="one workload only"
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="torch.set_num_threads (default: untouched)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    quick = args.quick
    repeats = args.repeats or (2 if quick else 5)
    print(
        f"engine paths: torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs, {repeats} repeats, load average "
        f"{os.getloadavg()[0]:.1f} at start" + (", --quick" if quick else "")
    )
    builders: dict[str, Callable[[], list[Case]]] = {
        "w1": lambda: w1_cases(epochs=10 if quick else 60),
        "throughput": lambda: [
            throughput_case(20_000 if quick else 200_000, 1, [128] * 3, batch=128),
            throughput_case(20_000 if quick else 200_000, 1, [256] * 3, batch=1024),
        ],
        "default": lambda: [default_design_case(epochs=2 if quick else None, rows=None)],
        "cv": lambda: [cv_stack_case(rows=10_000, epochs=2 if quick else 10)],
    }
    start, results = time.perf_counter(), {}
    for key, build in builders.items():
        if args.only and key != args.only:
            continue
        for case in build():
            times, agreements = measure(case, repeats)
            results[case.name] = report(case, times, agreements)
    summary(results)
    print(
        f"\ntotal {time.perf_counter() - start:.0f} s, "
        f"load average {os.getloadavg()[0]:.1f} at the end"
    )
    print(NOTES)


if __name__ == "__main__":
    main()
