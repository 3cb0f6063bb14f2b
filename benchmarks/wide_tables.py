"""How long ``tabnn train`` takes on wide tables: 60 rows of 250 to 2,000 numeric columns.

Each table is generated (seeded normal numbers; the label follows the first five columns)
and trained by a fresh ``tabnn train --epochs 2`` process, with ``--no-report`` and with
the report (whose permutation importance is what made wide tables slow: it is now held to
a budget of work and skipped when no page will show it). The table gives the median and
fastest wall-clock seconds of ``--repeats`` runs, and the importance recorded in the
report (columns measured of those available). The baseline, measured in the same run, is
``tabnn train --epochs 2 --no-report`` on a 10-column table of the same 60 rows, so the
other columns show what the extra columns cost on this machine. Plain standard library
(the tables are written with ``random``); run it as

    .venv/bin/python benchmarks/wide_tables.py [--repeats 3] [--columns 250,500,1000,2000]

``--command`` times another tabnn, e.g. an older checkout's, for a before/after figure::

    --command "env PYTHONPATH=/tmp/old/src .venv/bin/python -c \
        'from tabnn.cli import main; main()'"
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROWS = 60
BASELINE_COLUMNS = 10


def tabnn_command() -> list[str]:
    """The installed console script beside this Python, else ``python -m tabnn``."""
    script = Path(sys.executable).with_name("tabnn")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tabnn"]


def write_table(path: Path, columns: int, rows: int = ROWS, seed: int = 0) -> Path:
    """``rows`` rows of ``columns`` normal numbers and a label ``y`` from the first five."""
    rng = random.Random(seed)
    lines = [",".join([*(f"x{i}" for i in range(columns)), "y"])]
    for _ in range(rows):
        values = [rng.gauss(0, 1) for _ in range(columns)]
        label = "yes" if sum(values[:5]) > 0 else "no"
        lines.append(",".join([*(f"{v:.5f}" for v in values), label]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def train_seconds(tabnn: list[str], data: Path, out: Path, report: bool, timeout: float):
    """Wall-clock seconds of one fresh ``tabnn train --epochs 2`` (None past ``timeout``)."""
    command = [*tabnn, "train", str(data), "--target", "y", "--epochs", "2", "-q", "-o", str(out)]
    command += [] if report else ["--no-report"]
    start = time.perf_counter()
    try:
        done = subprocess.run(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return None
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}")
    return seconds


def importance_of(model: Path) -> str:
    """'measured of available' columns of the saved report's importance, or why none."""
    try:
        data = json.loads((model / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "-"
    scope = data.get("importance_scope") or {}
    if scope.get("skipped"):
        return "skipped"
    if "columns" in scope:
        return f"{scope['columns']} of {scope['columns_available']} columns"
    return f"{len(data.get('importance', {}))} columns"


def cell(times: list) -> str:
    done = [t for t in times if t is not None]
    if len(done) < len(times):
        return "timed out"
    return f"{statistics.median(done):7.2f} {min(done):7.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per case")
    parser.add_argument("--columns", default="250,500,1000,2000", help="table widths")
    parser.add_argument("--timeout", type=float, default=300, help="seconds before giving up")
    parser.add_argument("--command", help="the tabnn command line (default: the installed one)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    widths = [int(w) for w in args.columns.split(",")]
    tabnn = shlex.split(args.command) if args.command else tabnn_command()

    with tempfile.TemporaryDirectory(prefix="tabnn-wide-") as name:
        folder = Path(name)

        def timed(columns: int, report: bool) -> tuple[list, str]:
            data = write_table(folder / f"wide{columns}.csv", columns)
            out = folder / f"model{columns}{'r' if report else ''}"
            times = [train_seconds(tabnn, data, out, report, args.timeout)]
            times += [train_seconds(tabnn, data, out, report, args.timeout)
                      for _ in range(args.repeats - 1) if times[-1] is not None]  # fmt: skip
            return times, importance_of(out) if report else "-"

        baseline, _ = timed(BASELINE_COLUMNS, report=False)
        print(f"tabnn train --epochs 2 on {ROWS} rows, {args.repeats} run(s) each, fresh processes")
        print(f"{'columns':>8} {'report':>10} {'median s':>8} {'best s':>7}  importance")
        print(f"{BASELINE_COLUMNS:>8} {'no':>10} {cell(baseline)}  (baseline)")
        for columns in widths:
            for report in (False, True):
                times, measured = timed(columns, report)
                print(f"{columns:>8} {'yes' if report else 'no':>10} {cell(times)}  {measured}")
        base = statistics.median(baseline)
        print(f"baseline: {base:.2f} s for {BASELINE_COLUMNS} columns ({ROWS} rows, --no-report)")


if __name__ == "__main__":
    main()
