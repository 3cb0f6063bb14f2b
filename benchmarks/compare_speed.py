"""How much a k-fold comparison costs with tabnn, against the tutorial and against one fit.

1. Workload W1 with tabnn's own defaults: `tabnn.compare` of wide and deep on sonar (5-fold
   CV on a 70 % training split, baselines on the same folds, refit of the winner, one test
   evaluation), timed in-process after imports, against the tutorial's script (the
   tutorial-style loop of benchmarks/w1_tutorial.py: 5-fold CV of both designs, 300
   epochs, batch 10, then the final fit), measured in the same run.
2. Stack efficiency: the CV of one design (5 folds as one stack) against one ordinary fit
   of the same design on the same data (sonar, titanic, adult).

Run: python benchmarks/compare_speed.py [--quick] [--seed N] [--w1-seeds S]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import tabnn
from tabnn.data import read_table, split_target
from tabnn.estimator.classifier import TabNNClassifier
from tabnn.evaluation.compare import cross_validate_designs

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
HERE = Path(__file__).resolve().parent
DATASETS = {
    "sonar": ("sonar/sonar.csv", False, "-1"),
    "titanic": ("titanic/train.csv", True, "Survived"),
    "adult": ("adult/adult.data", False, "-1"),
}


def tutorial_module():
    """benchmarks/w1_tutorial.py, imported by path (benchmarks is not a package)."""
    spec = importlib.util.spec_from_file_location("w1_tutorial", HERE / "w1_tutorial.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def timed(function):
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def load(name: str, quick: bool):
    path, header, target = DATASETS[name]
    X, y = split_target(read_table(DATA / path, header=header), target)
    if quick and len(X) > 3000:
        X, y = X.iloc[:3000], y.iloc[:3000]
    return X, y


def w1_defaults(seeds: list[int], quick: bool) -> None:
    """tabnn compare (defaults) vs the tutorial script, same run, over several seeds (one
    seed's 5 folds of ~29 rows each are too few to tell designs or tools apart)."""
    tutorial = tutorial_module()
    epochs = 30 if quick else 300
    X, y = load("sonar", quick)
    tabnn.compare(X, y, ["wide", "deep"], folds=5, test_size=0.3, seed=seeds[0])  # warm-up
    print(f"W1 with tabnn's defaults (tutorial: {epochs} epochs, batch 10, Adam 1e-4)")
    print(f"{'seed':6s}{'tutorial s':>11s}{'tabnn s':>9s}{'ratio':>8s}  CV accuracy %")
    tut_total = tab_total = 0.0
    cv = {"tutorial": {"wide": [], "deep": []}, "tabnn": {"wide": [], "deep": []}}
    for seed in seeds:
        split = tutorial.load_split(DATA / "sonar" / "sonar.csv", seed)
        tut_seconds, tut = timed(lambda split=split, seed=seed: tutorial.run_tutorial(
            split, epochs, seed))  # fmt: skip
        seconds, result = timed(
            lambda seed=seed: tabnn.compare(X, y, ["wide", "deep"], folds=5, test_size=0.3,
                                            seed=seed)
        )  # fmt: skip
        summary = result.comparison.summary
        for design in ("wide", "deep"):
            cv["tutorial"][design].append(np.mean(tut.cv_scores[design]))
            cv["tabnn"][design].append(summary[design]["mean"])
        tut_total, tab_total = tut_total + tut_seconds, tab_total + seconds
        print(
            f"{seed:<6d}{tut_seconds:11.2f}{seconds:9.2f}{tut_seconds / seconds:7.1f}x  "
            f"tutorial wide {100 * cv['tutorial']['wide'][-1]:.1f} deep "
            f"{100 * cv['tutorial']['deep'][-1]:.1f} | tabnn wide "
            f"{100 * cv['tabnn']['wide'][-1]:.1f} deep {100 * cv['tabnn']['deep'][-1]:.1f}"
        )
    print(
        f"all seeds: tutorial {tut_total:.2f} s, tabnn.compare (CV, baselines, refit, test) "
        f"{tab_total:.2f} s, ratio {tut_total / tab_total:.1f}x"
    )
    for tool, designs in cv.items():
        means = ", ".join(f"{d} {100 * np.mean(v):.1f}" for d, v in designs.items())
        print(f"mean CV accuracy over seeds, {tool}: {means}")
    print(
        "note: the tutorial picks each fold's best epoch on the rows it then scores "
        "(optimistic); tabnn stops early on an inner validation split and scores the "
        "held-out fold once.\n"
    )


def stack_efficiency(seed: int, quick: bool) -> None:
    """5 folds of the default design as one stack vs one fit of it."""
    print("Stack efficiency: 5-fold CV of the default design (one stack) vs one fit")
    print(f"{'data':10s}{'rows':>8s}{'one fit s':>11s}{'5-fold CV s':>13s}{'ratio':>8s}")
    for name in DATASETS:
        X, y = load(name, quick)
        fit_seconds, _ = timed(lambda X=X, y=y: TabNNClassifier(random_state=seed).fit(X, y))
        cv_seconds, _ = timed(
            lambda X=X, y=y: cross_validate_designs(X, y, ["default"], folds=5, seed=seed)
        )
        ratio = cv_seconds / fit_seconds
        print(f"{name:10s}{len(X):8d}{fit_seconds:11.2f}{cv_seconds:13.2f}{ratio:7.2f}x")
    print(
        "(the CV also scores every fold and fits the most-frequent, logistic-regression and "
        "LightGBM baselines on the same folds; the one fit holds out 15 % for early stopping "
        "as each fold does)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few epochs, subsampled data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--w1-seeds", type=int, default=3, help="seeds for the W1 comparison")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    load_avg = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"tabnn {tabnn.__version__}, {os.cpu_count()} CPUs, load average {load_avg}\n")
    w1_defaults(list(range(args.seed, args.seed + args.w1_seeds)), args.quick)
    stack_efficiency(args.seed, args.quick)


if __name__ == "__main__":
    main()
