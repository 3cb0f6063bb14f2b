"""The GPU check of issue 12, prepared to run once on a machine with CUDA (a dry run on the
CPU works too, with ``--device cpu --rows 20000``).

1. Matmul peak: the default model's largest product shape (rows x 128 by 128 x 128,
   batched over the 4 ensemble members) in float32 and in bfloat16, as TFLOP/s and the rows
   per second it would allow the default network (``multiply_adds_per_row``, times 2 for
   the flops and 3 for forward and backward).
2. The engine: ``fit_stack`` on synthetic rows on the device, one epoch, no validation,
   as rows per second and as a share of (1)'s float32 bound.
3. A one-million-row fit of the default model (``TabNNClassifier(device=...)``, 20 epochs
   at most, early stopping on 15 % validation rows): seconds and held-out accuracy.

    python benchmarks/gpu.py                  # on the GPU machine
    python benchmarks/gpu.py --device cpu --rows 20000   # a dry run here
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

HIDDEN, MEMBERS = 128, 4


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, dtype: torch.dtype, rows: int = 65_536) -> float:
    """TFLOP/s of a batched (members, rows, 128) x (members, 128, 128) product."""
    a = torch.randn(MEMBERS, rows, HIDDEN, device=device, dtype=dtype)
    b = torch.randn(MEMBERS, HIDDEN, HIDDEN, device=device, dtype=dtype)
    out = torch.empty(MEMBERS, rows, HIDDEN, device=device, dtype=dtype)
    for _ in range(3):
        torch.bmm(a, b, out=out)
    synchronize(device)
    repeats, start = 20, time.perf_counter()
    for _ in range(repeats):
        torch.bmm(a, b, out=out)
    synchronize(device)
    return 2 * MEMBERS * rows * HIDDEN * HIDDEN * repeats / (time.perf_counter() - start) / 1e12


def synthetic(rows: int, features: int = 32, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] * x[:, 2] + rng.logistic(size=rows) * 0.3 > 0).astype(np.int64)
    return pd.DataFrame(x, columns=[f"x{i}" for i in range(features)]), y


def engine_rows_per_second(device: torch.device, rows: int) -> tuple[float, int]:
    """One epoch of the default design through ``fit_stack`` on the device -> rows/s and
    the network's floating-point operations per training row (forward + backward)."""
    from tabnn import TabNNClassifier
    from tabnn.engine.config import FitSpec, Member, TensorData, TrainConfig
    from tabnn.engine.train import fit_stack
    from tabnn.estimator.params import network_config
    from tabnn.nn.ensemble import build_network
    from tabnn.nn.size import multiply_adds_per_row

    X, y = synthetic(rows)
    estimator = TabNNClassifier(device=str(device))
    schema = estimator.infer_schema(X.head(1000), y[:1000])
    prep = estimator.fit(X.head(1000), y[:1000]).preprocessor_
    design = network_config(estimator, schema, prep, 1)
    model = build_network(design)
    model.encoder.set_statistics(0, prep)
    model.to(device)
    x_num, x_cat = prep.transform(schema.check(X))
    data = TensorData.from_arrays(x_num, x_cat, y.astype(np.float32), device)
    config = TrainConfig(epochs=1, batch_size=256, lr=3e-3)
    members = [Member(np.arange(rows), np.arange(0), 0)]
    synchronize(device)
    start = time.perf_counter()
    fit_stack(FitSpec(model, data, members, "binary", config))
    synchronize(device)
    return rows / (time.perf_counter() - start), 2 * 3 * multiply_adds_per_row(design)


def million_row_fit(device: torch.device, rows: int) -> tuple[float, float]:
    from tabnn import TabNNClassifier

    X, y = synthetic(rows + rows // 5, seed=1)
    estimator = TabNNClassifier(device=str(device), epochs=20)
    start = time.perf_counter()
    estimator.fit(X.iloc[:rows], y[:rows])
    seconds = time.perf_counter() - start
    return seconds, float((estimator.predict(X.iloc[rows:]) == y[rows:]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name}, torch {torch.__version__}")
    speed, flops_per_row = engine_rows_per_second(device, args.rows)
    for dtype in (torch.float32, torch.bfloat16):
        peak = matmul_peak(device, dtype)
        bound = peak * 1e12 / flops_per_row
        print(f"matmul peak {str(dtype):<15} {peak:8.2f} TFLOP/s  <= {bound:,.0f} rows/s")
        if dtype == torch.float32:
            share = speed / bound
    print(f"fit_stack, one epoch of {args.rows:,} rows: {speed:,.0f} rows/s ({share:.1%} of it)")
    seconds, accuracy = million_row_fit(device, args.rows)
    print(f"default model on {args.rows:,} rows: {seconds:.1f} s, held-out accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
