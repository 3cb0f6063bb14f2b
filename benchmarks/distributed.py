"""Training across processes: the same ``tabnn train`` in one process and under
``torchrun --nproc-per-node 2`` (gloo, on the CPU), time and test accuracy side by side.

On a 2-core machine two processes share the cores one process already uses, so this
measures what the distributed path costs (process start-up, rendezvous, one all-reduce per
step), not a speed-up: with dropout 0 the two runs train the same model, so their accuracy
should match, and the time ratio is the overhead.

    python benchmarks/distributed.py                      # Adult (../shared/data)
    python benchmarks/distributed.py --data some.csv --target label
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ADULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "adult" / "adult.data"


def run(command: list[str]) -> tuple[float, dict]:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode:
        raise SystemExit(f"failed: {' '.join(command)}\n{result.stderr[-2000:]}")
    return seconds, json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ADULT)
    parser.add_argument("--target", default="-1")
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        train = ["train", str(args.data), "--target", args.target, "--dropout", "0", "--json",
                 "--no-report"]  # fmt: skip
        one = run([sys.executable, "-m", "tabnn", *train, "-o", f"{work}/one"])
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    f"--nproc-per-node={args.processes}", "-m", "tabnn"]  # fmt: skip
        many = run([*torchrun, *train, "-o", f"{work}/many"])
    print(f"{args.data.name}: {one[1]['rows']}")
    print(f"{'run':<28} {'wall s':>8} {'fit s':>8} {'epochs':>7} {'accuracy':>9}")
    for name, (wall, summary) in (("one process", one), (f"torchrun x{args.processes}", many)):
        accuracy = summary["evaluation"]["scores"]["model"]["accuracy"]
        epochs = summary["best_epochs"]
        print(f"{name:<28} {wall:>8.2f} {summary['seconds']:>8.2f} {epochs!s:>7} {accuracy:>9.4f}")
    ratio = many[1]["seconds"] / one[1]["seconds"]
    print(f"fit time ratio (overhead on this machine): {ratio:.2f}x")


if __name__ == "__main__":
    main()
