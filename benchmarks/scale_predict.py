"""Prediction at scale: ``tabnn predict`` over a directory of Parquet files, timed and
measured (rows/s, peak memory of the process) beside pyarrow reading the same files alone.

1. Writes a synthetic table (default 10,000,000 rows x 30 columns: 20 numeric, 3 of them
   with missing values, and 10 categorical of 2 to 200 categories) as Parquet files of
   1,000,000 rows in row groups of 100,000, into a temporary directory.
2. Trains the default model on a 50,000-row sample drawn in memory (same generator, its
   own seed), saved to a model directory.
3. Baseline, same run: pyarrow alone reads every file batch by batch (``iter_batches``),
   the floor under any reader of these files.
4. Runs ``tabnn predict MODEL DATA_DIR -o OUT_DIR`` as a subprocess, once with
   ``--precision float64`` and once with ``float32``, and reports each one's wall time
   (start-up included), rows/s and peak resident memory (``ru_maxrss`` of that process,
   from ``wait4`` in a small launcher process), then checks the output: row count, row
   numbers in order, probabilities in [0, 1].

The files are read from the page cache (they were just written, and fit in memory); a
cold read from disk adds the disk's time to both the baseline and tabnn.

    .venv/bin/python benchmarks/scale_predict.py                 # 10 million rows (minutes)
    .venv/bin/python benchmarks/scale_predict.py --rows 1000000  # a quicker run
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_NUMERIC = 20
CARDINALITIES = (2, 3, 4, 5, 7, 10, 12, 20, 50, 200)
WITH_MISSING = (3, 7, 11)  # numeric columns with about 5 % missing values
ROWS_PER_FILE = 1_000_000
ROW_GROUP = 100_000
TRAIN_ROWS = 50_000


def make_rows(rng: np.random.Generator, n: int, *, target: bool = False):
    """``n`` synthetic rows as an Arrow table: numeric ``x00``..``x19`` (float64, ``x19``
    int64), categorical ``c0``..``c9`` (strings); with ``target`` a binary ``y`` that
    depends on some of each."""
    import pyarrow as pa

    numeric = rng.standard_normal((n, N_NUMERIC))
    numeric[:, 1] = np.exp(numeric[:, 1])  # skewed
    numeric[:, 2] *= 1000.0
    codes = [rng.integers(0, k, n) for k in CARDINALITIES]
    columns, names = [], []
    for j in range(N_NUMERIC):
        values = numeric[:, j]
        if j == N_NUMERIC - 1:
            columns.append(pa.array(np.round(values * 10).astype(np.int64)))
        else:
            mask = rng.random(n) < 0.05 if j in WITH_MISSING else None
            columns.append(pa.array(values, mask=mask))
        names.append(f"x{j:02d}")
    for j, (k, code) in enumerate(zip(CARDINALITIES, codes)):
        dictionary = pa.array([f"cat{j}_{i}" for i in range(k)])
        columns.append(pa.DictionaryArray.from_arrays(pa.array(code.astype(np.int32)), dictionary))
        names.append(f"c{j}")
    if target:
        effect = np.sin(codes[8] * 0.7) + (codes[4] % 3 - 1) * 0.8
        logit = numeric[:, 0] - 0.8 * numeric[:, 5] + 0.5 * numeric[:, 3] * numeric[:, 4] + effect
        y = rng.random(n) < 1 / (1 + np.exp(-logit))
        columns.append(pa.array(np.where(y, "yes", "no")))
        names.append("y")
    table = pa.table(columns, names=names)
    # strings as plain string columns (Parquet still dictionary-encodes their pages)
    return table.cast(
        pa.schema([pa.field(f.name, pa.string()) if f.name[0] == "c" else f for f in table.schema])
    )


def write_dataset(directory: Path, rows: int, seed: int = 0) -> list[Path]:
    """Parquet files ``part-00000.parquet``... of up to ROWS_PER_FILE rows each."""
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, start in enumerate(range(0, rows, ROWS_PER_FILE)):
        n = min(ROWS_PER_FILE, rows - start)
        path = directory / f"part-{i:05d}.parquet"
        pq.write_table(make_rows(rng, n), path, row_group_size=ROW_GROUP)
        paths.append(path)
    return paths


def train_model(directory: Path, seed: int = 1) -> None:
    """The default model fitted on TRAIN_ROWS rows of the same generator, saved."""
    from tabnn import TabNNClassifier, save

    table = make_rows(np.random.default_rng(seed), TRAIN_ROWS, target=True).to_pandas()
    y = table.pop("y")
    save(TabNNClassifier(random_state=0).fit(table, y), directory)


def pyarrow_baseline(paths: list[Path], batch_size: int) -> float:
    """Seconds for pyarrow alone to read every file batch by batch."""
    import pyarrow.parquet as pq

    start = time.perf_counter()
    rows = 0
    for path in paths:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
            rows += batch.num_rows
    return time.perf_counter() - start


# Runs a command and prints its wall seconds and peak RSS (KiB). A child started straight
# from this process would report this process's peak instead of its own when that is
# higher: Linux keeps the peak of the memory a child shared before its exec (and Python
# starts children with vfork). So a small launcher process starts tabnn.
LAUNCHER = """
import os, subprocess, sys, time
start = time.perf_counter()
process = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(process.pid, 0)
print(os.waitstatus_to_exitcode(status), time.perf_counter() - start, usage.ru_maxrss)
"""


def run_predict(model: Path, data: Path, out: Path, chunk_size: int, precision: str):
    """Wall seconds and peak resident memory (MiB) of one ``tabnn predict`` process."""
    tabnn = Path(sys.executable).with_name("tabnn")
    command = [str(tabnn), "predict", str(model), str(data), "-o", str(out), "--quiet"]
    command += ["--chunk-size", str(chunk_size), "--precision", precision]
    launched = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *command], capture_output=True, text=True, check=True
    )
    code, seconds, peak = launched.stdout.split()
    if int(code):
        raise SystemExit(f"tabnn predict failed with exit code {code}:\n{launched.stderr}")
    return float(seconds), int(peak) / 1024  # Linux reports KiB


def check_output(out: Path, rows: int) -> None:
    """The parts hold every row once, in order, with probabilities in [0, 1]."""
    import pyarrow.parquet as pq

    seen = 0
    for part in sorted(out.glob("part-*.parquet")):
        table = pq.read_table(part)
        index = table.column("row").to_numpy()
        assert (index == np.arange(seen, seen + len(index))).all(), (
            f"{part.name}: rows out of order"
        )
        for name in table.column_names:
            if name.startswith("proba_"):
                values = table.column(name).to_numpy()
                assert ((values >= 0) & (values <= 1)).all(), f"{part.name}: {name} not in [0, 1]"
        seen += len(index)
    assert seen == rows, f"expected {rows:,} rows, the output holds {seen:,}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--chunk-size", type=int, default=50_000)  # tabnn predict's
    parser.add_argument("--precision", choices=["float64", "float32", "both"], default="both")
    parser.add_argument("--keep", type=Path, help="write the data, model and output here")
    args = parser.parse_args()
    import pyarrow.parquet as pq

    root = args.keep or Path(tempfile.mkdtemp(prefix="tabnn-scale-"))
    data, model, out = root / "data", root / "model", root / "predictions"
    precisions = ["float64", "float32"] if args.precision == "both" else [args.precision]
    try:
        start = time.perf_counter()
        paths = write_dataset(data, args.rows)
        size = sum(p.stat().st_size for p in paths) / 2**20
        print(
            f"data: {args.rows:,} rows x 30 columns, {len(paths)} files, {size:,.0f} MiB, "
            f"written in {time.perf_counter() - start:.1f} s"
        )
        start = time.perf_counter()
        train_model(model)
        print(f"model: default design on {TRAIN_ROWS:,} rows, {time.perf_counter() - start:.1f} s")
        baseline = pyarrow_baseline(paths, args.chunk_size)
        print(f"pyarrow alone, iter_batches: {baseline:.1f} s, {args.rows / baseline:,.0f} rows/s")
        one = root / "one-row"
        one.mkdir(exist_ok=True)
        pq.write_table(pq.read_table(paths[0]).slice(0, 1), one / "part-00000.parquet")
        for precision in precisions:
            startup, floor = run_predict(model, one, root / "one-out", args.chunk_size, precision)
            shutil.rmtree(root / "one-out")
            shutil.rmtree(out, ignore_errors=True)
            seconds, peak = run_predict(model, data, out, args.chunk_size, precision)
            check_output(out, args.rows)
            print(
                f"tabnn predict --precision {precision} (whole process): {seconds:.1f} s, "
                f"{args.rows / seconds:,.0f} rows/s, peak RSS {peak:,.0f} MiB; "
                f"{seconds / baseline:.1f}x pyarrow's time; without the {startup:.1f} s that "
                f"one row takes (start-up, model; peak RSS {floor:,.0f} MiB): "
                f"{args.rows / (seconds - startup):,.0f} rows/s"
            )
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
