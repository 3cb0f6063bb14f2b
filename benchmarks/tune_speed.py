"""Trials per minute of ``tabnn tune``: the same trials trained as stacks against one by one.

For each dataset, ``--batches`` batches of ``--per-stack`` trials are drawn from the search
space the way ``tune`` draws them (``search.ask_batch``: a batch shares its first trial's
shape; Optuna's random sampler, seed 0, so every run draws the same trials). Each batch is
cross-validated (``--folds`` folds, the same folds for every trial) twice through the same
engine: once as ONE stack of trials x folds members (what ``tune`` does), once trial by
trial (each trial's folds as one stack: what ``--trials-per-stack 1`` does). Both runs must
give the same fold scores (no dropout differs between them unless a batch draws dropout,
whose masks come from one stream per stack); the largest difference is printed.

Prints per dataset: trials, seconds stacked and one by one, trials per minute of each, and
the ratio; then the mean ratio. Run from the repository root::

    .venv/bin/python benchmarks/tune_speed.py                       # the default datasets
    .venv/bin/python benchmarks/tune_speed.py --datasets iris --batches 1
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from suite import DATA_DIR, load_dataset  # noqa: E402

from tabnn.estimator.classifier import TabNNClassifier  # noqa: E402
from tabnn.tuning import search  # noqa: E402
from tabnn.tuning.tune import prepare_folds  # noqa: E402

DATASETS = "credit_a,vehicle,segmentation,spambase"


def draw_batches(n_batches: int, per_stack: int, n_train: int) -> list[list[dict]]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    batches = []
    for _ in range(n_batches):
        batch = search.ask_batch(study, per_stack, n_train)
        batches.append([point for _, point in batch])
        for trial, _ in batch:
            study.tell(trial, 0.0)
    return batches


def timed(folds, points) -> tuple[float, list]:
    started = time.perf_counter()
    scores = search.cross_validate(folds, points, {}, seed=0)
    return time.perf_counter() - started, scores


def run(name: str, args) -> float:
    dataset = load_dataset(name, DATA_DIR, args.max_rows)
    probe = TabNNClassifier(random_state=0)
    folds = prepare_folds(probe, dataset.X, dataset.y, None, args.folds, 0)
    batches = draw_batches(args.batches, args.per_stack, folds.n_train)
    timed(folds, batches[0][:1])  # warm-up: first-call costs belong to neither side
    stacked = alone = 0.0
    worst = 0.0
    for points in batches:
        seconds, scores = timed(folds, points)
        stacked += seconds
        for point, together in zip(points, scores):
            seconds, (single,) = timed(folds, [point])
            alone += seconds
            worst = max(worst, float(np.max(np.abs(np.subtract(together, single)))))
        print(
            f"  {name}: batch {points[0]['width']}x{points[0]['depth']} "
            f"ensemble {points[0]['ensemble_size']} done",
            file=sys.stderr,
            flush=True,
        )
    trials = args.batches * args.per_stack
    ratio = alone / stacked
    print(
        f"{name:14} {len(dataset.X):>6} rows  {trials} trials  stacked {stacked:7.1f} s "
        f"({60 * trials / stacked:6.1f}/min)  one by one {alone:7.1f} s "
        f"({60 * trials / alone:6.1f}/min)  ratio {ratio:4.2f}x  max score diff {worst:.4f}",
        flush=True,
    )
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=DATASETS)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--per-stack", type=int, default=4)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--max-rows", type=int, default=20_000)
    args = parser.parse_args()
    ratios = [run(name, args) for name in args.datasets.split(",")]
    print(f"mean ratio (stacked trials per minute / one by one): {np.mean(ratios):.2f}x")


if __name__ == "__main__":
    main()
