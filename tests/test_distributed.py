"""Training across processes with torchrun: two real processes on loopback (gloo), against
the same command in one process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tabnn
from tabnn.data import read_table

DATA = Path(__file__).parent / "data"
SONAR = Path(tabnn.__file__).parent / "datasets" / "sonar.csv"


def tabnn_command(*args) -> list[str]:
    return [sys.executable, "-m", "tabnn", *map(str, args)]


def torchrun_command(*args, processes: int = 2) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc-per-node={processes}", "-m", "tabnn", *map(str, args),
    ]  # fmt: skip


def run(command: list[str], timeout: float = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


def features(path: Path, target: str, header: bool) -> pd.DataFrame:
    frame = read_table(path, header=header)
    return frame.drop(columns=[target])


CASES = {
    # binary, categorical and missing values, the default network (autograd)
    "titanic": (DATA / "titanic" / "train.csv", "Survived", ["--dropout", "0"]),
    # a plain MLP: the hand-written backward pass
    "sonar-mlp": (SONAR, "60", ["--model", "mlp:32", "--dropout", "0"]),
    # multi-class with class weights, an ensemble of two members in one stack
    "iris-weighted": (
        DATA / "iris" / "iris.csv",
        "4",
        ["--dropout", "0", "--class-weight", "balanced", "--ensemble", "2", "--batch-size", "16"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_two_processes_train_the_one_process_model(tmp_path, case):
    """Each rank trains on its half of every batch; the gradients summed over ranks are the
    one-process gradients, so the models agree to float rounding, and so do the epochs early
    stopping chose (agreed across ranks: the summed validation losses are the same)."""
    path, target, extra = CASES[case]
    args = ["train", path, "--target", target, "--epochs", "6", "--no-report", "--quiet", *extra]
    one = run(tabnn_command(*args, "-o", tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    two = run(torchrun_command(*args, "-o", tmp_path / "two"))
    assert two.returncode == 0, two.stderr
    first, second = tabnn.load(tmp_path / "one"), tabnn.load(tmp_path / "two")
    X = features(path, target, header=case == "titanic")
    np.testing.assert_allclose(first.predict_proba(X), second.predict_proba(X), atol=1e-4)
    assert first.history_.best_epoch == second.history_.best_epoch
    assert first.history_.epochs[-1]["val_loss"] == pytest.approx(
        second.history_.epochs[-1]["val_loss"], rel=1e-4
    )


def test_only_rank_zero_prints_and_writes(tmp_path):
    out = tmp_path / "model"
    result = run(torchrun_command("train", SONAR, "--target", "60", "--epochs", "3", "--json",
                                  "-o", out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)  # one JSON document: rank 1 printed nothing
    assert summary["rows"]["train"] > 100
    assert (out / "report.html").is_file()


def test_accuracy_matches_one_process_with_dropout(tmp_path):
    """With dropout each rank draws its own masks, so the runs differ in detail; on a real
    table their test accuracy stays close."""
    path = DATA / "titanic" / "train.csv"
    args = ["train", path, "--target", "Survived", "--epochs", "30", "--json", "--no-report"]
    one = run(tabnn_command(*args, "-o", tmp_path / "one"))
    two = run(torchrun_command(*args, "-o", tmp_path / "two"))
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    scores = [json.loads(r.stdout)["evaluation"]["scores"]["model"] for r in (one, two)]
    accuracy = [s["accuracy"] for s in scores]
    assert accuracy[1] > 0.75
    assert abs(accuracy[0] - accuracy[1]) <= 0.05


def _rank_processes(parent: int) -> dict[int, int]:
    """Rank -> pid of torchrun's workers (children of its children)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        rank = [v for v in environ if v.startswith(b"RANK=")]
        launched = any(v.startswith(b"TORCHELASTIC_RUN_ID") for v in environ)
        if rank and launched and str(parent) in _ancestors(stat):
            found[int(rank[0].split(b"=")[1])] = int(entry.name)
    return found


def _ancestors(stat: str) -> list[str]:
    chain, parent = [], stat.rsplit(")", 1)[1].split()[1]
    while parent not in ("0", "1") and len(chain) < 5:
        chain.append(parent)
        try:
            parent = Path(f"/proc/{parent}/stat").read_text().rsplit(")", 1)[1].split()[1]
        except OSError:
            break
    return chain


def test_a_crashed_rank_ends_the_job_with_a_clear_error_and_no_model(tmp_path):
    out, logs = tmp_path / "model", tmp_path / "tensorboard"
    command = torchrun_command(
        "train", SONAR, "--target", "60", "--epochs", "100000", "--patience", "100000",
        "--no-report", "-o", out, "--tensorboard", logs,
    )  # fmt: skip
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # rank 0 logs its first epoch into a member's folder: training has begun on both
        # ranks (a fixed wait was too short on a busy machine, where imports take longer)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list(logs.glob("*/member_*")):
            time.sleep(0.5)
        ranks = _rank_processes(job.pid)
        assert len(ranks) == 2, "torchrun did not start two workers that began training"
        os.kill(ranks[1], signal.SIGKILL)
        stdout, stderr = job.communicate(timeout=60)
    finally:
        job.kill()
    assert job.returncode != 0
    # rank 0 sees the collective fail (or, if torchrun is quicker, its SIGTERM)
    assert "another process of this torchrun job stopped" in stderr or "terminated" in stderr
    assert "nothing was written" in stderr
    assert "rank      : 1" in stderr  # torchrun's summary names the rank that died
    assert "[rank0]: Traceback" not in stderr  # rank 0 ends with its message, not a trace
    assert not out.exists()
    assert not logs.exists()  # nor the event files of a run that produced no model


def test_a_users_error_is_tabnns_line_then_torchruns_summary_naming_it(tmp_path):
    """What a user sees when every rank refuses the input (README, torchrun): tabnn's one
    line per rank first, no Python traceback from tabnn; then torchrun's own summary,
    which always ends a failed job with a traceback of torchrun's launcher, and whose
    failures show tabnn's line (written to torchrun's error file) rather than a link."""
    out = tmp_path / "model"
    path = DATA / "titanic" / "train.csv"
    result = run(torchrun_command("train", path, "--target", "Nope", "--no-report", "-o", out))
    stderr = result.stderr
    message = "error: Column 'Nope' not found."
    assert result.returncode == 1, stderr  # torchrun's code for a failed job
    assert message in stderr and stderr.index(message) < stderr.index("ChildFailedError")
    frames = re.findall(r'File "([^"]+)"', stderr)
    package = Path(tabnn.__file__).resolve().parent  # the clone's own folder may be "tabnn"
    ours = [f for f in frames if Path(f).resolve().is_relative_to(package)]
    assert frames and not ours  # torchrun's frames only
    assert "exitcode  : 2" in stderr  # a usage error's code, as one process exits
    assert f"traceback : {message}" in stderr and "To enable traceback see" not in stderr
    assert not out.exists()
