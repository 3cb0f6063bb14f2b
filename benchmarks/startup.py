"""How fast the ``tabnn`` command line starts: --help, --version and a one-row predict.

Each command runs as a fresh process ``--repeats`` times (after ``--warmup`` untimed runs,
so that every command meets warm file-system caches); the table gives the median and the
fastest wall-clock seconds. Two baselines are measured in the same run: ``python -c pass``
(the interpreter alone) and ``python -c "import torch"`` (what any prediction has to load),
and the last line is the ratio of the one-row predict to ``import torch``.

The model for the predict is trained first, into a temporary directory, on the bundled
Sonar data with 5 epochs. Plain standard library; run it as

    .venv/bin/python benchmarks/startup.py [--repeats 5] [--command "tabnn"]

``--command`` times another tabnn, e.g. an older checkout's, for a before/after figure::

    --command "env PYTHONPATH=/tmp/old/src .venv/bin/python -c \
        'from tabnn.cli import main; main()'"
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SONAR = ROOT / "src" / "tabnn" / "datasets" / "sonar.csv"


def tabnn_command() -> list[str]:
    """The installed console script beside this Python, else ``python -m tabnn``."""
    script = Path(sys.executable).with_name("tabnn")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tabnn"]


def run(command: list[str]) -> float:
    """Wall-clock seconds of one run of ``command``; stops the benchmark if it fails."""
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}")
    return seconds


def measure(command: list[str], repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        run(command)
    return [run(command) for _ in range(repeats)]


def train_tiny_model(tabnn: list[str], folder: Path) -> tuple[Path, Path]:
    """A 5-epoch Sonar model and a CSV with one of its rows (header-less, as the file)."""
    model = folder / "sonar-model"
    train = [*tabnn, "train", str(SONAR), "--no-header", "-t", "-1", "--epochs", "5"]
    run([*train, "--no-report", "-q", "-o", str(model)])
    row = folder / "one-row.csv"
    row.write_text(SONAR.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    return model, row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per command")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per command first")
    parser.add_argument(
        "--command", help="the tabnn command line to time (default: the installed tabnn)"
    )
    args = parser.parse_args()
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be >= 1 and --warmup >= 0")

    tabnn = shlex.split(args.command) if args.command else tabnn_command()
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="tabnn-startup-") as folder:
        model, row = train_tiny_model(tabnn, Path(folder))
        commands = {
            "python -c pass": [python, "-c", "pass"],
            "python -c 'import torch'": [python, "-c", "import torch"],
            "tabnn --help": [*tabnn, "--help"],
            "tabnn --version": [*tabnn, "--version"],
            "tabnn predict (1 row)": [*tabnn, "predict", str(model), str(row)],
        }
        times = {name: measure(cmd, args.repeats, args.warmup) for name, cmd in commands.items()}

    print(f"tabnn command: {' '.join(tabnn)}")
    print(f"{args.repeats} timed runs per command after {args.warmup} warm-up run(s)\n")
    width = max(map(len, times))
    print(f"{'command':<{width}}  {'median s':>9}  {'min s':>7}")
    for name, seconds in times.items():
        print(f"{name:<{width}}  {statistics.median(seconds):>9.3f}  {min(seconds):>7.3f}")
    predict = statistics.median(times["tabnn predict (1 row)"])
    torch = statistics.median(times["python -c 'import torch'"])
    print(f"\npredict / import torch (medians): {predict / torch:.2f}")


if __name__ == "__main__":
    main()
