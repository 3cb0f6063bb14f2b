"""In-process latency of one-row predictions: what a server pays per request.

Fits the default network on the bundled Sonar data (and, when ``../shared/data`` is beside
the project, on Titanic's mixed-type table), then times ``predict_proba`` on one row, on
100 rows and from 8 threads at once. The baseline, measured in the same run, is the bare
forward pass of the same float64 network on already-encoded inputs: the difference is
tabnn's own per-call cost (frame checks, schema, encoding).

    .venv/bin/python benchmarks/predict_latency.py [--repeats 300]
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import torch

from tabnn import TabNNClassifier
from tabnn.data import read_table, split_target

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def timed(call, repeats: int) -> float:
    """Median seconds of ``call()`` after a few untimed warm-up calls."""
    for _ in range(10):
        call()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def tables() -> dict[str, tuple[pd.DataFrame, pd.Series]]:
    found = {"sonar": split_target(read_table(ROOT / "src/tabnn/datasets/sonar.csv"), "-1")}
    titanic = SHARED / "titanic" / "train.csv"
    if titanic.exists():
        found["titanic"] = split_target(read_table(titanic), "Survived")
    return found


def bare_forward(clf: TabNNClassifier, X: pd.DataFrame):
    """The float64 network alone on encoded inputs: the floor under predict_proba."""
    x_num, x_cat = (torch.as_tensor(a) for a in clf.encode(X))
    network = clf.inference_model_

    def forward() -> None:
        with torch.no_grad():
            network(x_num[None].double(), x_cat[None])

    return forward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    print(f"{'table':<8} {'rows':>5} {'predict_proba ms':>17} {'bare forward ms':>16} {'ratio':>6}")
    for name, (X, y) in tables().items():
        clf = TabNNClassifier(epochs=20).fit(X, y)
        for rows in (1, 100):
            batch = X.iloc[:rows]
            ours = timed(lambda b=batch, c=clf: c.predict_proba(b), args.repeats)
            floor = timed(bare_forward(clf, batch), args.repeats)
            print(
                f"{name:<8} {rows:>5} {ours * 1e3:>17.2f} {floor * 1e3:>16.2f} {ours / floor:>6.1f}"
            )
        one_row = [X.iloc[i : i + 1] for i in range(64)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            start = time.perf_counter()
            list(pool.map(clf.predict_proba, one_row * 4))
            per_call = (time.perf_counter() - start) / (len(one_row) * 4)
        print(f"{name:<8} 8 threads x one-row calls: {per_call * 1e3:.2f} ms per call (wall)")


if __name__ == "__main__":
    main()
