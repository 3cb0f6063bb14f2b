"""Training at scale: ``tabnn train --stream --memory 1.5G`` on a generated table several
times larger than that budget, beside the in-memory engine on a share that fits.

1. Writes a synthetic table (default 22,000,000 rows: 20 numeric columns, 3 with missing
   values, 10 categorical of 2 to 200 categories, and a binary target; the generator of
   ``scale_predict.py``) as Parquet files of 1,000,000 rows.
2. Measures what the table takes in memory as pandas holds it (one file's
   ``memory_usage(deep=True)`` times the number of files).
3. Baseline, same run: ``tabnn train`` in memory on the first file (a share that fits),
   for the same epochs.
4. ``tabnn train DIR --stream --memory BUDGET``.

For each run: training rows per second (training rows x epochs / the fit's seconds, which
include the streaming passes), wall time, peak resident memory of the process
(``ru_maxrss`` from ``os.wait4``) and test accuracy.

    .venv/bin/python benchmarks/scale.py                  # 22 million rows (15 minutes)
    .venv/bin/python benchmarks/scale.py --rows 2000000   # a quicker run
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scale_predict import LAUNCHER, ROW_GROUP, ROWS_PER_FILE, make_rows


def write_table(directory: Path, rows: int, seed: int = 0) -> list[Path]:
    """Parquet files of up to ROWS_PER_FILE rows, features and target ``y``."""
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, start in enumerate(range(0, rows, ROWS_PER_FILE)):
        path = directory / f"part-{i:05d}.parquet"
        table = make_rows(rng, min(ROWS_PER_FILE, rows - start), target=True)
        pq.write_table(table, path, row_group_size=ROW_GROUP)
        paths.append(path)
    return paths


def in_memory_bytes(paths: list[Path]) -> int:
    """What pandas takes for the whole table (one file measured, times the files)."""
    import pandas as pd

    one = pd.read_parquet(paths[0]).memory_usage(deep=True).sum()
    return int(one * len(paths))


def train(data: Path, out: Path, epochs: int, extra: list[str]) -> dict:
    """One ``tabnn train`` process -> its summary, wall seconds and peak RSS (bytes),
    started through scale_predict's small launcher: a process this one starts directly
    would report this process's peak as its own (vfork)."""
    tabnn = Path(sys.executable).with_name("tabnn")
    command = [str(tabnn), "train", str(data), "--target", "y", "--epochs", str(epochs)]
    command += ["--json", "--no-report", "-o", str(out), *extra]
    launched = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *command], capture_output=True, text=True
    )
    *summary, last = launched.stdout.strip().splitlines()
    code, wall, peak = last.split()
    if int(code):
        raise SystemExit(f"tabnn train failed ({' '.join(command)}):\n{launched.stderr}")
    return {**json.loads("\n".join(summary)), "wall": float(wall), "peak": int(peak) * 1024}


def describe(name: str, run: dict, epochs: int) -> str:
    rows = run["rows"]["train"]
    speed = rows * epochs / run["seconds"]  # every epoch runs: patience outlasts them
    accuracy = run["evaluation"]["scores"]["model"]["accuracy"]
    return (
        f"{name:<34} {rows:>11,} {speed:>12,.0f} {run['wall']:>8.1f} "
        f"{run['peak'] / 2**30:>9.2f} {accuracy:>9.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=22_000_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--memory", default="1.5G")
    parser.add_argument("--keep", type=Path, help="write the table here and keep it")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tabnn-scale-"))
    data = args.keep or work / "table"
    try:
        started = time.perf_counter()
        paths = write_table(data, args.rows)
        seconds = time.perf_counter() - started
        print(f"wrote {args.rows:,} rows in {len(paths)} files in {seconds:.0f} s")
        share = train(paths[0], work / "in-memory", args.epochs, ["--no-stream"])
        streamed = train(data, work / "stream", args.epochs, ["--stream", "--memory", args.memory])
        size = in_memory_bytes(paths)
        print(f"the table takes {size / 2**30:.2f} GiB in memory as pandas holds it")
        print(f"{'run':<34} {'train rows':>11} {'rows/s':>12} {'wall s':>8} ", end="")
        print(f"{'peak GiB':>9} {'accuracy':>9}")
        print(describe(f"in memory, first {ROWS_PER_FILE:,} rows", share, args.epochs))
        print(describe(f"--stream --memory {args.memory}, all", streamed, args.epochs))
        ratio = size / streamed["peak"]
        print(f"table in memory / streaming peak: {ratio:.1f}x")
        speed = [r["rows"]["train"] / r["seconds"] for r in (streamed, share)]
        print(f"streaming training rows/s against in memory: {speed[0] / speed[1]:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
