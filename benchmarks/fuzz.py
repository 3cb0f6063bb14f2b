"""The fuzzer of tests/test_fuzz.py, run for longer: many random examples of each property,
every distinct failure listed with its smallest table.

    .venv/bin/python benchmarks/fuzz.py [--examples 500] [--seed S] [--only cli|estimator]
                                        [--shrink-seconds 120]

The properties and the table strategy live in tests/test_fuzz.py (imported from there by
path), so ``make test`` and this script check the same promises. Two phases:

1. explore: ``--examples`` random tables per property, failures recorded instead of
   stopping the run, each under a signature (the property, the exception type and where it
   was raised: the innermost frame in src/tabnn for an exception from tabnn, the failing
   check of the test for a broken promise);
2. shrink: for each signature, the same seeded search again (tables before its first
   failure skipped unchecked) with only that failure counting, so that Hypothesis shrinks
   it to a smallest table (within ``--shrink-seconds``; the smallest table of phase 1
   when it does not recur).

It prints how many examples ran, the outcomes (trained and predicted, or refused with
which message), and every distinct failure: exception type, first line of its message,
the last lines of its traceback and the smallest failing table. Exit status 1 when any
property failed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import random
import sys
import time
import traceback
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"


def load_properties():
    """tests/test_fuzz.py as a module (it imports test_cli, beside it)."""
    sys.path.insert(0, str(TESTS))
    spec = importlib.util.spec_from_file_location("test_fuzz", TESTS / "test_fuzz.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["test_fuzz"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@dataclass
class Failure:
    """One distinct failure: how often it occurred and its smallest example so far."""

    key: tuple
    count: int = 0
    table: object = None
    error: BaseException | None = None
    size: float = float("inf")
    shrunk: bool = False
    first: str = ""  # repr of the first failing table: where phase 2 starts shrinking


@dataclass
class Run:
    name: str
    examples: int = 0
    outcomes: Counter = field(default_factory=Counter)
    refusals: Counter = field(default_factory=Counter)
    failures: dict = field(default_factory=dict)
    seconds: float = 0.0


def root_error(error: BaseException) -> BaseException:
    """The exception that escaped tabnn (a crashed command carries it as its cause)."""
    return error.__cause__ if error.__cause__ is not None else error


def where(error: BaseException) -> str:
    """The innermost frame in src/tabnn, else in the tests, else the innermost of all."""
    frames = traceback.extract_tb(error.__traceback__)
    for marker in ("/src/tabnn/", "/tests/"):
        mine = [f for f in frames if marker in f.filename.replace("\\", "/")]
        if mine:
            frame = mine[-1]
            short = frame.filename.replace("\\", "/").split(marker[:-1] + "/")[-1]
            return f"{marker.strip('/').split('/')[-1]}/{short}:{frame.lineno} in {frame.name}"
    if frames:
        return f"{frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}"
    return "?"


def message_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def signature(name: str, error: BaseException) -> tuple:
    root = root_error(error)
    return (name, type(root).__name__, where(root))


def table_size(table) -> float:
    """Cells of both files: smaller is simpler."""
    return table.n_rows * len(table.columns) + len(table.new_rows) * len(table.new_names)


def settings_for(module, examples: int, phases):
    from hypothesis import HealthCheck, settings

    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        phases=phases,
        print_blob=False,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
    )


def explore(module, name: str, check, examples: int, seed: int) -> Run:
    """Phase 1: ``examples`` tables, failures recorded by signature."""
    from hypothesis import Phase, given
    from hypothesis import seed as seeded

    run = Run(name)
    started = time.monotonic()

    @settings_for(module, examples, [Phase.generate])
    @seeded(seed)
    @given(table=module.tables())
    def one(table):
        run.examples += 1
        try:
            outcome, detail = check(table)
        except Exception as error:  # every failure is recorded, none stops the run
            key = signature(name, error)
            failure = run.failures.setdefault(key, Failure(key, first=repr(table)))
            failure.count += 1
            size = table_size(table)
            if size < failure.size:
                failure.table, failure.error, failure.size = table, error, size
            run.outcomes["FAILED"] += 1
            return
        run.outcomes[outcome] += 1
        if detail:
            run.refusals[f"{outcome}: {detail[:110]}"] += 1

    one()
    run.seconds = time.monotonic() - started
    return run


def shrink(module, name: str, check, failure: Failure, examples: int, seed: int, budget: float):
    """Phase 2: the same seeded search, only this failure failing, shrunk by Hypothesis.

    The search draws the same tables as phase 1 (same seed, and the test draws nothing
    itself), so every table before the recorded first failure is skipped unchecked; from
    there Hypothesis shrinks, for ``budget`` seconds."""
    from hypothesis import Phase, given
    from hypothesis import seed as seeded

    best: dict = {}

    @settings_for(module, examples, [Phase.generate, Phase.shrink])
    @seeded(seed)
    @given(table=module.tables())
    def hunt(table):
        key = repr(table)
        if not best and key != failure.first:
            return  # not yet at the failure phase 1 found
        if best and time.monotonic() > best["deadline"] and key != best["key"]:
            return  # out of time: only the smallest failure so far still fails
        try:
            check(table)
        except Exception as error:
            if signature(name, error) == failure.key:
                best.setdefault("deadline", time.monotonic() + budget)
                best.update(key=key, table=table, error=error)
                raise

    with contextlib.suppress(Exception):  # the failure itself, or Hypothesis's Flaky
        hunt()
    if best:
        failure.table, failure.error = best["table"], best["error"]
        failure.size, failure.shrunk = table_size(best["table"]), True


def tail(error: BaseException, frames: int = 4) -> str:
    """The traceback from the innermost frame in src/tabnn on (at most ``frames`` frames
    after it), and the exception line; Hypothesis's notes left out."""
    root = root_error(error)
    summary = traceback.extract_tb(root.__traceback__)
    ours = [i for i, f in enumerate(summary) if "/src/tabnn/" in f.filename.replace("\\", "/")]
    start = ours[-1] if ours else max(0, len(summary) - frames)
    lines = [
        f'File "{f.filename}", line {f.lineno}, in {f.name}\n  {(f.line or "").strip()}'
        for f in summary[start : start + 1 + frames]
    ]
    if start + 1 + frames < len(summary):
        lines.append(f"... ({len(summary) - start - 1 - frames} more frames)")
    lines.append(f"{type(root).__module__}.{type(root).__qualname__}: {message_line(root)}")
    return "\n".join("    " + line for text in lines for line in text.splitlines())


def report(run: Run, seed: int) -> None:
    print(f"\n=== {run.name}: {run.examples} examples in {run.seconds:.0f} s (seed {seed})")
    for outcome, count in run.outcomes.most_common():
        print(f"  {count:5d}  {outcome}")
    if run.refusals:
        print("  most frequent refusals:")
        for text, count in run.refusals.most_common(12):
            print(f"  {count:5d}  {text}")
    if not run.failures:
        print("  no failures")
        return
    print(f"  {len(run.failures)} distinct failure(s):")
    for i, failure in enumerate(run.failures.values(), 1):
        _, kind, place = failure.key
        root = root_error(failure.error)
        print(f"\n  --- failure {i} of {run.name}: {kind} at {place}")
        print(f"  seen in {failure.count} of {run.examples} examples")
        print(f"  message: {message_line(root)}")
        if root is not failure.error:
            print(f"  (through: {message_line(failure.error)})")
        print("  traceback, last lines:")
        print(tail(failure.error))
        how = "shrunk by Hypothesis" if failure.shrunk else "smallest seen, not shrunk"
        print(f"  smallest failing table ({how}):")
        print("\n".join("    " + line for line in failure.table.describe().splitlines()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=500, help="examples per property")
    parser.add_argument("--seed", type=int, default=None, help="default: a random one")
    parser.add_argument("--only", choices=["cli", "estimator"], default=None)
    parser.add_argument(
        "--shrink-seconds", type=float, default=120.0, help="shrinking time per failure"
    )
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)

    import torch

    torch.set_num_threads(1)  # tiny networks: extra threads only wait (as in tests/conftest)
    warnings.simplefilter("ignore")
    module = load_properties()
    checks = {"cli": module.check_cli, "estimator": module.check_estimator}
    started = time.monotonic()
    failed = False
    for name, check in checks.items():
        if args.only not in (None, name):
            continue
        print(f"fuzzing {name}: {args.examples} examples, seed {seed} ...", flush=True)
        run = explore(module, name, check, args.examples, seed)
        for failure in run.failures.values():
            print(f"  shrinking {failure.key[1]} at {failure.key[2]} ...", flush=True)
            shrink(module, name, check, failure, args.examples, seed, args.shrink_seconds)
        report(run, seed)
        failed = failed or bool(run.failures)
    print(f"\ntotal {time.monotonic() - started:.0f} s; reproduce with --seed {seed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
