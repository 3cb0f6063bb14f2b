"""Command-line outcomes users reported: a class of one row trains whatever the seed, short
messages name the classes, and --quiet prints nothing but errors."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_cli import assert_fails, invoke


def rare_table(path: Path) -> Path:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = np.where(X[:, 0] > 0, "a", "b").astype(object)
    y[17] = "rare"
    pd.DataFrame(X, columns=["x", "v", "z"]).assign(t=y).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("seed", range(4))
def test_a_single_row_class_trains_whatever_the_seed(tmp_path: Path, seed: int):
    data = rare_table(tmp_path / "rare.csv")
    args = ("-t", "t", "-q", "--no-report", "--epochs", "2", "--seed", seed)
    result = invoke("train", data, "-o", tmp_path / "m", *args)
    assert result.exit_code == 0, result.stderr


def test_compare_names_the_short_classes(tmp_path: Path):
    data = rare_table(tmp_path / "rare.csv")
    result = invoke("compare", data, "-t", "t", "--models", "wide", "--epochs", "2", "-q")
    assert_fails(result, 2, "too few: 'rare' (1 row)")


def test_quiet_prints_nothing_but_json_still_does(tmp_path: Path):
    data = rare_table(tmp_path / "rare.csv")
    args = ("-t", "t", "--no-report", "--epochs", "2")
    quiet = invoke("train", data, "-o", tmp_path / "m", "-q", *args)
    assert quiet.exit_code == 0 and quiet.stdout == "" and quiet.stderr == ""
    both = invoke("train", data, "-o", tmp_path / "m", "-q", "--json", *args)
    assert both.exit_code == 0 and '"task": "multiclass"' in both.stdout


def test_sigterm_during_predict_leaves_no_partial_file(tmp_path: Path):
    data = rare_table(tmp_path / "rare.csv")
    model = tmp_path / "m"
    assert invoke("train", data, "-t", "t", "-o", model, "-q", "--no-report", "--epochs", "1")
    rows = pd.read_csv(data).drop(columns="t")
    big = tmp_path / "big.csv"
    pd.concat([rows] * 1000, ignore_index=True).to_csv(big, index=False)  # 120,000 rows
    out = tmp_path / "out" / "pred.csv"
    command = [
        sys.executable,
        "-m",
        "tabnn",
        "predict",
        model,
        big,
        "-o",
        out,
        "--chunk-size",
        "500",
    ]
    process = subprocess.Popen(list(map(str, command)), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(out.parent.glob(".pred.csv.*.tmp")) and time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "terminated; nothing was written" in stderr and "Traceback" not in stderr
    assert not out.parent.exists()  # neither the file, its temporary nor the folder it made
