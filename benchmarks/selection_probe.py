"""Which members earn a place in a bagged, selected ensemble: a probe on the suite's tables.

Issue 22's evidence step, before the ensemble is built into the estimator. On each table
(the suite's loading and its 5 outer folds, seed 0), per outer fold:

* ``net``: ``TabNNClassifier(bagging=5)``, the default design bagged over 5 inner folds;
* ``ple``: the same with ``numeric_embedding="ple"`` (``--no-ple`` leaves it out);
* ``knn``: ``tabnn.nn.neighbours.NeighbourMember`` (k = 10, twins answered by their
  twins) on the bag's design matrix (scaled numbers, indicators, one-hot categories), one
  per inner fold with that fold's statistics, their probabilities averaged for the test;
* ``linear``: scikit-learn's ``LogisticRegression`` on the same matrices (a stand-in
  for the linear member, which will be a torch layer).

Every member's out-of-fold probabilities come from the same inner folds (the bag's
``bagging_rows``), and ``tabnn.estimator.selection.select_ensemble`` (25 steps, log loss)
weighs them; the blends below are scored once on the outer fold's test rows. Printed per
table: each member alone, then the selected blends of growing sets of members, and the
mean selected weights; then means over the tables.

Run from the repository root::

    .venv/bin/python benchmarks/selection_probe.py --datasets titanic,heart
    .venv/bin/python benchmarks/selection_probe.py            # the suite's single-label tables
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parent))
from suite import DATA_DIR, TABLES, load_dataset, make_folds  # noqa: E402

from tabnn import TabNNClassifier  # noqa: E402
from tabnn.estimator.selection import blend, select_ensemble  # noqa: E402
from tabnn.nn.neighbours import NeighbourMember  # noqa: E402

BAGS, NEIGHBOURS, SEED = 5, 10, 0
BLENDS = {
    "net": ["net"],
    "net+knn": ["net", "knn"],
    "net+linear": ["net", "linear"],
    "net+knn+linear": ["net", "knn", "linear"],
    "net+ple": ["net", "ple"],
    "all": ["net", "ple", "knn", "linear"],
}


def one_hot(y: np.ndarray, classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.as_tensor(y).long(), classes).double()


def side_members(bag: TabNNClassifier, X_train, y_codes, X_test, classes: int):
    """knn and linear: out-of-fold probabilities on the bag's inner folds, and the mean of
    the fold models' probabilities on the test rows."""
    folds = bag.bagging_rows(y_codes, bag.schema_)
    oof = {name: np.zeros((len(y_codes), classes)) for name in ("knn", "linear")}
    test = {name: np.zeros((len(X_test), classes)) for name in ("knn", "linear")}
    for k, (train, held) in enumerate(folds):
        design = bag.design_matrix(X_train, member=k * bag.n_members)
        design_test = bag.design_matrix(X_test, member=k * bag.n_members)
        knn = NeighbourMember(torch.as_tensor(design[train]), one_hot(y_codes[train], classes),
                              k=NEIGHBOURS)  # fmt: skip
        with torch.no_grad():
            oof["knn"][held] = knn(torch.as_tensor(design[held])).numpy()
            test["knn"] += knn(torch.as_tensor(design_test)).numpy() / len(folds)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            linear = LogisticRegression(max_iter=1000).fit(design[train], y_codes[train])
        columns = linear.classes_
        oof["linear"][np.ix_(held, columns)] = linear.predict_proba(design[held])
        test["linear"][:, columns] += linear.predict_proba(design_test) / len(folds)
    return oof, test


def probe_fold(dataset, train, test, ple: bool) -> tuple[dict, dict, float]:
    """One outer fold -> (blend -> test accuracy, member -> weight in 'all', seconds)."""
    started = time.perf_counter()
    X_train, X_test = dataset.X.iloc[train], dataset.X.iloc[test]
    y_train, y_test = dataset.y.iloc[train], dataset.y.iloc[test]
    bag = TabNNClassifier(bagging=BAGS, random_state=SEED).fit(X_train, y_train)
    classes = len(bag.classes_)
    y_codes = bag.schema_.encode_target(y_train).astype(np.int64)
    test_codes = bag.schema_.encode_target(y_test).astype(np.int64)
    oof = {"net": bag.oof_proba_}
    proba = {"net": bag.predict_proba(X_test)}
    if ple:
        ple_bag = TabNNClassifier(bagging=BAGS, numeric_embedding="ple", random_state=SEED)
        ple_bag.fit(X_train, y_train)
        oof["ple"], proba["ple"] = ple_bag.oof_proba_, ple_bag.predict_proba(X_test)
    side_oof, side_test = side_members(bag, X_train, y_codes, X_test, classes)
    oof.update(side_oof)
    proba.update(side_test)
    scores = {f"{name} alone": accuracy(proba[name], test_codes) for name in proba}
    weights = {}
    for label, names in BLENDS.items():
        names = [name for name in names if name in oof]
        chosen = select_ensemble([oof[n] for n in names], y_codes, bag.task_)
        scores[label] = accuracy(blend([proba[n] for n in names], chosen), test_codes)
        if label == "all":
            weights = dict(zip(names, chosen))
    return scores, weights, time.perf_counter() - started


def accuracy(proba: np.ndarray, codes: np.ndarray) -> float:
    return float(np.mean(proba.argmax(1) == codes))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(spec.name for spec in TABLES))
    parser.add_argument("--no-ple", action="store_true", help="leave the ple member out")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)
    means, all_weights = {}, {}
    for name in args.datasets.split(","):
        dataset = load_dataset(name, args.data_dir, 20_000)
        folds = make_folds(dataset, 5)
        results = [probe_fold(dataset, train, test, not args.no_ple) for train, test in folds]
        scores = {key: float(np.mean([r[0][key] for r in results])) for key in results[0][0]}
        weights = {key: float(np.mean([r[1][key] for r in results])) for key in results[0][1]}
        seconds = sum(r[2] for r in results)
        means[name], all_weights[name] = scores, weights
        shown = "  ".join(f"{key} {value:.4f}" for key, value in scores.items())
        print(f"{name:<13} {seconds:6.1f}s  {shown}", flush=True)
        print(f"{'':<13} weights in 'all': "
              + "  ".join(f"{k} {v:.2f}" for k, v in weights.items()), flush=True)  # fmt: skip
    keys = list(next(iter(means.values())))
    print(f"\nmean over {len(means)} tables:")
    for key in keys:
        print(f"  {key:<16} {np.mean([scores[key] for scores in means.values()]):.4f}")


if __name__ == "__main__":
    main()
