"""Stopped members of a stack: computed as padding against not computed, in one run.

A stack trains its members together; before the change this benchmark came with, a
member that had stopped (patience, or a search's pruner) still went through every step
of the others as padding rows; now an autograd epoch computes only the members still
training (``engine.steps.LiveMembers``). Two workloads, each fitted both ways: ``live``
(tabnn as it is) and ``padded`` (``LiveMembers.of`` answering None, the stack as before),
interleaved, ``--repeats`` times each after an untimed warm-up:

- a bag: ``TabNNClassifier(preset="best", random_state=0)`` (5 folds, each stopped by its
  own patience) on a few tables of ``../shared/data``;
- pruned trials: a stack of 5 default networks (4-member ensembles of 2 x 128, with and
  without piecewise-linear encodings) on 8,000 synthetic rows, 4 of them halted after
  epoch 2 of 20, as a search's pruner halts trials.

It prints each one's median seconds, the ratio, the share of member-epochs that trained
(the arithmetic the stack must do; the saving can be at most its complement), and for the
bags the largest difference of the two fits' probabilities (they must agree up to float32
rounding).

    .venv/bin/python benchmarks/live_members.py        # titanic, segmentation, satimage
    .venv/bin/python benchmarks/live_members.py --tables titanic --repeats 1
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from tabnn import TabNNClassifier
from tabnn.engine import steps
from tabnn.engine.config import FitSpec, Member, TensorData, TrainConfig
from tabnn.engine.train import fit_stack
from tabnn.features.preprocess import Preprocessor
from tabnn.nn.config import build_config
from tabnn.nn.ensemble import build_network

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TABLES = {
    "titanic": (DATA / "titanic" / "train.csv", ",", "Survived"),
    "segmentation": (DATA / "pmlb" / "segmentation.tsv.gz", "\t", "target"),
    "satimage": (DATA / "pmlb" / "satimage.tsv.gz", "\t", "target"),
}
LIVE_OF = steps.LiveMembers.of


def padded_of(cls, model, loss_fn, plan):
    return None  # every member computed every step, as before LiveMembers


def timed(live: bool, work) -> tuple[float, object]:
    """-> seconds ``work()`` took with stopped members cut (``live``) or padded, its result."""
    steps.LiveMembers.of = LIVE_OF if live else classmethod(padded_of)
    try:
        start = time.perf_counter()
        result = work()
        return time.perf_counter() - start, result
    finally:
        steps.LiveMembers.of = LIVE_OF


def fit(frame: pd.DataFrame, target: str, live: bool) -> tuple[float, TabNNClassifier, float]:
    """-> fit seconds, the estimator and the share of member-epochs that trained."""
    model = TabNNClassifier(preset="best", random_state=0)
    seconds, _ = timed(live, lambda: model.fit(frame.drop(columns=[target]), frame[target]))
    return seconds, model, live_share(model)


def pruned_stack(embedding: str, live: bool) -> float:
    """Seconds of a 5-member stack whose members 1-4 are halted after epoch 2 of 20."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8000, 20)).astype(np.float32)
    y = (x[:, 0] + np.sin(x[:, 1]) > 0).astype(np.float32)
    columns = [f"x{j}" for j in range(x.shape[1])]
    prep = Preprocessor.fit(pd.DataFrame(x[:6400], columns=columns), columns, [], scaling="clipped")
    config = build_config(prep, 1, preset=[128, 128], n_members=5, task="binary",
                          ensemble_size=4, numeric_embedding=embedding)  # fmt: skip
    model = build_network(config)
    for k in range(5):
        model.encoder.set_statistics(k, prep)
        model.fit_inputs(k, x, np.arange(6400))
    data = TensorData.from_arrays(x, np.zeros((len(x), 0), np.int64), y, torch.device("cpu"))
    members = [Member(np.arange(6400), np.arange(6400, 8000), seed) for seed in range(5)]
    train = TrainConfig(epochs=20, batch_size=256, lr=3e-3, patience=100)
    halt = lambda record: [1, 2, 3, 4] if record["epoch"] == 2 else None  # noqa: E731
    spec = FitSpec(model, data, members, "binary", train, on_epoch=halt)
    return timed(live, lambda: fit_stack(spec))[0]


def live_share(model: TabNNClassifier) -> float:
    """The share of (member, epoch) cells of the stack's run in which the member trained."""
    records = model.history_.epochs
    return float(np.mean([loss is not None for r in records for loss in r["train_loss"]]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    head = ["padded s", "live s", "ratio", "live share", "max |dp|"]
    print(f"{'workload':22}" + "".join(f"{h:>{w}}" for h, w in zip(head, [10, 10, 8, 12, 10])))
    for embedding in ("none", "ple"):
        pruned_stack(embedding, True), pruned_stack(embedding, False)  # warm-up
        times = {True: [], False: []}
        for repeat in range(args.repeats):
            for live in (repeat % 2 == 0, repeat % 2 == 1):
                times[live].append(pruned_stack(embedding, live))
        padded, live = statistics.median(times[False]), statistics.median(times[True])
        share = (5 * 2 + 18) / (5 * 20)
        name = f"pruned trials, {embedding}"
        print(f"{name:22}{padded:10.2f}{live:10.2f}{padded / live:7.2f}x{share:12.2f}{'-':>10}")
    for name in args.tables.split(","):
        path, sep, target = TABLES[name]
        frame = pd.read_csv(path, sep=sep)
        _, live_model, share = fit(frame, target, live=True)  # warm-up, and the check
        _, padded_model, _ = fit(frame, target, live=False)
        rows = frame.drop(columns=[target]).head(4096)
        diff = np.abs(live_model.predict_proba(rows) - padded_model.predict_proba(rows)).max()
        times = {True: [], False: []}
        for repeat in range(args.repeats):
            for live in (repeat % 2 == 0, repeat % 2 == 1):
                times[live].append(fit(frame, target, live)[0])
        padded, live = statistics.median(times[False]), statistics.median(times[True])
        name = f"bag of 5, {name}"
        print(f"{name:22}{padded:10.2f}{live:10.2f}{padded / live:7.2f}x{share:12.2f}{diff:10.1e}")


if __name__ == "__main__":
    main()
