"""Training throughput: tabnn's engine against the usual PyTorch loops, measured in one run.

Rows per second of training (forward, backward and Adam step; no validation) for a binary
MLP on synthetic numeric rows, at two sizes:

- large: 1,000,000 x 64, hidden 3 x 256, batch 1024
- small: 200,000 x 64, hidden 3 x 128, batch 128

Each size is measured as:

(a) matmul peak: the MLP's forward and backward matrix products alone (``torch.addmm`` /
    ``torch.mm`` into preallocated outputs, no data, no optimizer), as GFLOP/s and the rows
    per second they would allow: with torch's default float32 matmul (MKL), with oneDNN
    (torch's mkldnn matmul; on CPUs without AMX it computes float32, checked below), and
    with the faster of the two per layer, the peak the percentages refer to;
(b) a ``DataLoader(TensorDataset)`` loop with ``nn.Sequential``, shuffled, one epoch;
(c) the same loop over index batches of resident tensors (``x[perm[i:i + batch]]``);
(d) tabnn's ``fit_stack`` with one member, one epoch, no validation rows (the whole call is
    timed: input encoding and setup included);
(e) tabnn with 5 members in one stack (5-fold training rows), as member-rows per second;
(f) skorch's ``NeuralNetBinaryClassifier``, one epoch, when skorch is importable.

Every loop uses Adam (lr 1e-3, no weight decay, no clipping) and the torch thread setting
printed in the header. Run from the repository root::

    python benchmarks/throughput.py            # the issue's sizes (a few minutes)
    python benchmarks/throughput.py --quick    # a tenth of the rows, a smoke test
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tabnn.engine.config import FitSpec, Member, TensorData, TrainConfig
from tabnn.engine.cpu import cpu_matmuls_for, cpu_threads_for, onednn_is_exact
from tabnn.engine.train import fit_stack
from tabnn.features.preprocess import Preprocessor
from tabnn.nn.config import build_config
from tabnn.nn.mlp import TabularMLP

LR = 1e-3


@dataclass
class Size:
    """One problem size of the benchmark."""

    name: str
    rows: int
    features: int
    hidden: list[int]
    batch: int

    def flops_per_row(self) -> float:
        """Multiply-adds x 2 of one row's forward and backward pass (no input gradient)."""
        sizes = [self.features, *self.hidden, 1]
        weights = [a * b for a, b in zip(sizes, sizes[1:])]
        return 2 * (2 * sum(weights) + sum(weights[1:]))


SIZES = {
    "large": Size("large", 1_000_000, 64, [256, 256, 256], 1024),
    "small": Size("small", 200_000, 64, [128, 128, 128], 128),
}


def synthetic(size: Size, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Standard normal features; the label is the sign of a random linear score plus noise."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((size.rows, size.features), dtype=np.float32)
    score = x @ rng.standard_normal(size.features).astype(np.float32)
    y = (score + rng.standard_normal(size.rows).astype(np.float32) > 0).astype(np.float32)
    return x, y


def plain_mlp(size: Size) -> nn.Module:
    sizes = [size.features, *size.hidden]
    layers: list[nn.Module] = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(sizes[-1], 1))


# --- (a) the matmul peak ------------------------------------------------------------


def layer_products_seconds(batch: int, n_in: int, n_out: int, first: bool, onednn: bool) -> float:
    """Seconds for one layer's forward, weight-gradient and input-gradient products."""
    x, w, bias = torch.randn(batch, n_in), torch.randn(n_in, n_out), torch.randn(n_out)
    out, grad_w, grad_x = torch.empty(batch, n_out), torch.empty_like(w), torch.empty_like(x)

    def once() -> None:
        torch.addmm(bias, x, w, out=out)
        torch.mm(x.T, out, out=grad_w)
        if not first:
            torch.mm(out, w.T, out=grad_x)

    matmul = torch.backends.mkldnn.matmul
    before = matmul.fp32_precision
    matmul.fp32_precision = "bf16" if onednn else before
    try:
        for _ in range(3):
            once()
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < 0.5:
            once()
            count += 1
        return (time.perf_counter() - start) / count
    finally:
        matmul.fp32_precision = before


def matmul_peak(size: Size) -> dict[str, float]:
    """GFLOP/s of the MLP's forward and backward products at batch ``size.batch``, with
    torch's default float32 matmul (MKL), with oneDNN, and with the faster of the two
    for each layer (``best``: the peak the loops are measured against)."""
    sizes = [size.features, *size.hidden, 1]
    layers = list(zip(sizes, sizes[1:]))
    times = {
        library: [
            layer_products_seconds(size.batch, a, b, i == 0, library == "onednn")
            for i, (a, b) in enumerate(layers)
        ]
        for library in ("mkl", "onednn")
    }
    times["best"] = [min(pair) for pair in zip(times["mkl"], times["onednn"])]
    flops = size.batch * size.flops_per_row()
    return {library: flops / sum(seconds) / 1e9 for library, seconds in times.items()}


# --- (b), (c) the usual loops -------------------------------------------------------


def train_step(model, optimizer, loss_fn, x_batch, y_batch) -> None:
    loss = loss_fn(model(x_batch)[:, 0], y_batch)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def dataloader_loop(size: Size, x: np.ndarray, y: np.ndarray) -> float:
    """Rows per second of one epoch of the textbook DataLoader(TensorDataset) loop."""
    torch.manual_seed(0)
    model = plain_mlp(size)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.BCEWithLogitsLoss()
    loader = DataLoader(
        TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
        batch_size=size.batch,
        shuffle=True,
    )
    start = time.perf_counter()
    for x_batch, y_batch in loader:
        train_step(model, optimizer, loss_fn, x_batch, y_batch)
    return len(x) / (time.perf_counter() - start)


def index_loop(size: Size, x: np.ndarray, y: np.ndarray) -> float:
    """Rows per second of one epoch over index batches of resident tensors."""
    torch.manual_seed(0)
    model = plain_mlp(size)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.BCEWithLogitsLoss()
    x_all, y_all = torch.from_numpy(x), torch.from_numpy(y)
    start = time.perf_counter()
    order = torch.randperm(len(x))
    for first in range(0, len(x), size.batch):
        rows = order[first : first + size.batch]
        train_step(model, optimizer, loss_fn, x_all[rows], y_all[rows])
    return len(x) / (time.perf_counter() - start)


# --- (d), (e) tabnn's engine ------------------------------------------------------------


def tabnn_model(size: Size, x: np.ndarray, members: int) -> TabularMLP:
    """A stack for binary targets, every member scaling with statistics of a sample."""
    columns = [f"x{j}" for j in range(size.features)]
    sample = pd.DataFrame(x[:: max(1, len(x) // 20_000)], columns=columns)
    prep = Preprocessor.fit(sample, columns, [])
    model = TabularMLP(build_config(prep, 1, preset=size.hidden, n_members=members))
    for k in range(members):
        model.encoder.set_statistics(k, prep)
    return model


def engine_choices(size: Size, x: np.ndarray, members: int) -> str:
    """The CPU threads and matmul library per layer that fit_stack picks for this size."""
    model = tabnn_model(size, x[:100], members)
    cpu = torch.device("cpu")
    with cpu_threads_for(model, size.batch, cpu), cpu_matmuls_for(model, size.batch, cpu) as mm:
        threads = torch.get_num_threads()
        libraries = "/".join("oneDNN" if on else "MKL" for on in mm.layers)
    return f"{threads} thread{'s' if threads > 1 else ''}, {libraries}"


def tabnn_rows_per_second(size: Size, x: np.ndarray, y: np.ndarray, members: int) -> float:
    """Member-rows per second of one epoch of ``fit_stack``: one member on every row, or
    ``members`` members on the training rows of as many folds."""
    model = tabnn_model(size, x, members)  # statistics from a sample: setup, not timed
    data = TensorData.from_arrays(x, np.zeros((len(x), 0), dtype=np.int64), y, torch.device("cpu"))
    all_rows = np.arange(len(x))
    if members == 1:
        row_sets = [all_rows]
    else:
        folds = np.array_split(np.random.default_rng(0).permutation(len(x)), members)
        row_sets = [np.setdiff1d(all_rows, fold) for fold in folds]
    stack = [Member(rows, rows[:0], seed) for seed, rows in enumerate(row_sets)]
    train_config = TrainConfig(
        epochs=1,
        batch_size=size.batch,
        lr=LR,
        weight_decay=0.0,
        optimizer="adam",
        schedule="constant",
        warmup_epochs=0,
        grad_clip=0.0,
    )
    start = time.perf_counter()
    fit_stack(FitSpec(model, data, stack, "binary", train_config))
    return sum(len(r) for r in row_sets) / (time.perf_counter() - start)


# --- (f) skorch ---------------------------------------------------------------------


def skorch_loop(size: Size, x: np.ndarray, y: np.ndarray) -> float | None:
    """Rows per second of one epoch of skorch, or None when skorch is not installed."""
    try:
        from skorch import NeuralNetBinaryClassifier
    except ImportError:
        return None

    class Logit(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mlp = plain_mlp(size)

        def forward(self, X):
            return self.mlp(X)[:, 0]

    torch.manual_seed(0)
    net = NeuralNetBinaryClassifier(
        Logit,
        max_epochs=1,
        batch_size=size.batch,
        lr=LR,
        optimizer=torch.optim.Adam,
        train_split=None,
        iterator_train__shuffle=True,
        verbose=0,
    )
    start = time.perf_counter()
    net.fit(x, y)
    return len(x) / (time.perf_counter() - start)


# --- the report -----------------------------------------------------------------------


def measure(size: Size, stack_members: int) -> dict:
    x, y = synthetic(size)
    results: dict = {}
    for library, gflops in matmul_peak(size).items():
        results[f"peak_{library}_gflops"] = gflops
        results[f"peak_{library}"] = gflops * 1e9 / size.flops_per_row()
    results["dataloader"] = dataloader_loop(size, x, y)
    results["index"] = index_loop(size, x, y)
    results["tabnn"] = tabnn_rows_per_second(size, x, y, 1)
    results["tabnn_engine"] = engine_choices(size, x, 1)
    results["skorch"] = skorch_loop(size, x, y)
    if stack_members > 1:
        results["tabnn_stack"] = tabnn_rows_per_second(size, x, y, stack_members)
        results["tabnn_stack_engine"] = engine_choices(size, x, stack_members)
    return results


def report(size: Size, results: dict, stack_members: int) -> None:
    print(
        f"\n{size.name}: {size.rows:,} x {size.features}, hidden {size.hidden}, "
        f"batch {size.batch}, {size.flops_per_row() / 1e3:.0f} kFLOP per row "
        f"(load average {os.getloadavg()[0]:.1f})"
    )
    print(f"{'loop':44s} {'rows/s':>11s} {'% peak':>7s} {'x DataLoader':>13s}")
    base, peak = results["dataloader"], results["peak_best"]
    rows = [
        (f"(a) matmul peak ({results['peak_best_gflops']:.0f} GFLOP/s)", peak),
        (
            f"    MKL, torch's default ({results['peak_mkl_gflops']:.0f} GFLOP/s)",
            results["peak_mkl"],
        ),
        (f"    oneDNN ({results['peak_onednn_gflops']:.0f} GFLOP/s)", results["peak_onednn"]),
        ("(b) DataLoader(TensorDataset) loop", base),
        ("(c) index batches, resident tensors", results["index"]),
        ("(d) tabnn fit_stack, 1 member", results["tabnn"]),
        (f"    ({results['tabnn_engine']})", None),
    ]
    if stack_members > 1:
        rows.append((f"(e) tabnn, {stack_members} members (member-rows/s)", results["tabnn_stack"]))
        rows.append((f"    ({results['tabnn_stack_engine']})", None))
    rows.append(("(f) skorch NeuralNetBinaryClassifier", results["skorch"]))
    for name, value in rows:
        if value is None and name.startswith("(f)"):
            print(f"{name:44s} {'skorch is not installed: not measured':>33s}")
        elif value is None:
            print(name)
        else:
            print(f"{name:44s} {value:11,.0f} {100 * value / peak:6.0f}% {value / base:12.2f}x")
    if results["skorch"]:
        print(f"{'tabnn / skorch':44s} {results['tabnn'] / results['skorch']:33.2f}x")


NOTES = """
notes:
- one epoch per loop, binary target, Adam lr 1e-3, no weight decay, no clipping, no
  validation; tabnn's time is the whole fit_stack call (input encoding and setup included).
- (a) counts the forward, weight-gradient and input-gradient products (none for the input
  layer) at the same batch size: the arithmetic no loop can avoid. It is measured for one
  member; (e)'s products are 5 members wide, which batched matmuls run more efficiently,
  so its "% peak" can pass 100.
- (b), (c) and skorch use torch's defaults (MKL for float32 products, all threads); tabnn
  picks threads and, per layer, MKL or oneDNN (oneDNN only where it computes float32
  here: see the check in the header) by the size of the products.
- the machine may be shared: compare rows of one run, and rerun when the load average
  printed per size is near or above the CPU count."""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the rows")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch.set_num_threads (default: untouched)"
    )
    parser.add_argument("--only", choices=sorted(SIZES), help="measure one size only")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"training throughput: torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start"
        + (", --quick: a tenth of the rows" if args.quick else "")
    )
    exact = onednn_is_exact([(1, 1024, 256, 256), (5, 128, 128, 128)])
    print(f"oneDNN float32 products exact (errors of float32 order) here: {exact}")
    for name, size in SIZES.items():
        if args.only and name != args.only:
            continue
        if args.quick:
            size = Size(size.name, size.rows // 10, size.features, size.hidden, size.batch)
        stack_members = 5 if name == "small" else 1
        report(size, measure(size, stack_members), stack_members)
    print(NOTES)


if __name__ == "__main__":
    main()
