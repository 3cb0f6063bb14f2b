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
    trained = invoke("train", data, "-t", "t", "-o", model, "-q", "--no-report", "--epochs", "1")
    assert trained.exit_code == 0, trained.stderr
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


def test_a_target_that_is_a_name_and_a_position_says_which_rule_applied(tmp_path: Path):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"-1": rng.integers(0, 2, 80), "x": rng.normal(size=80)})
    frame["z"] = rng.normal(size=80)
    frame.to_csv(tmp_path / "d.csv", index=False)
    args = ("-t", "-1", "-o", tmp_path / "m", "--no-report", "--epochs", "2")
    result = invoke("train", tmp_path / "d.csv", *args)
    assert result.exit_code == 0, result.stderr
    message = " ".join(result.stderr.split())
    assert "note: --target: '-1' is taken as the column named '-1', not as position -1" in message
    assert "(column 'z')" in message
    assert "binary task" in result.stdout  # the 0/1 column named -1, not z (continuous)
    quiet = invoke("train", tmp_path / "d.csv", *args, "-q")
    assert quiet.stderr == ""


def test_a_label_never_positive_is_noted(tmp_path: Path):
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"x": rng.normal(size=90), "v": rng.normal(size=90)})
    frame["a"] = (frame["x"] > 0).astype(int)
    frame["b"] = (frame["v"] > 0).astype(int)
    frame["never"] = 0
    frame.to_csv(tmp_path / "d.csv", index=False)
    result = invoke(
        "train", tmp_path / "d.csv", "-t", "a,b,never", "-o", tmp_path / "m", "--no-report",
        "--epochs", "2",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "note: Label(s) 'never' are never positive (all 0)" in " ".join(result.stderr.split())
    assert result.stderr.count("never positive") == 1  # once, though two checks see it


def test_long_digit_ids_are_ids_not_a_constant(tmp_path: Path):
    rng = np.random.default_rng(3)
    ids = [f"1234567890123456789012345{i:06d}" for i in range(80)]  # 31 digits
    frame = pd.DataFrame({"id": ids, "x": rng.normal(size=80), "y": rng.integers(0, 2, 80)})
    frame.to_csv(tmp_path / "d.csv", index=False)
    args = ("-t", "y", "-o", tmp_path / "m", "--no-report", "--epochs", "2")
    result = invoke("train", tmp_path / "d.csv", *args)
    assert result.exit_code == 0, result.stderr
    assert "dropped column id: unique per row: looks like an ID" in " ".join(result.stdout.split())


def test_parquet_with_a_repeated_nested_column_name_is_named(tmp_path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = [pa.array([1, 0] * 10), pa.array(["a", "b"] * 10), pa.array([{"a": 1}] * 20)]
    pq.write_table(pa.Table.from_arrays(columns, names=["t", "Age", "Age"]), tmp_path / "d.pq")
    result = invoke("train", tmp_path / "d.pq", "-t", "t", "-o", tmp_path / "m", "-q")
    assert_fails(result, 1, "duplicate column names: Age")  # found by benchmarks/fuzz.py


def test_an_unverified_tabnn_json_cannot_vouch_for_the_users_files(tmp_path: Path):
    data = rare_table(tmp_path / "rare.csv")
    out = tmp_path / "m"
    out.mkdir()
    (out / "tabnn.json").write_text('{"format_version": 1, "checksums": {"thesis.txt": "0"}}')
    (out / "thesis.txt").write_text("precious")
    result = invoke("train", data, "-t", "t", "-o", out, "-q", "--epochs", "1")
    assert_fails(result, 2, "thesis.txt")
    assert (out / "thesis.txt").read_text() == "precious"


def test_report_restores_a_model_a_killed_save_moved_aside(tmp_path: Path):
    data = rare_table(tmp_path / "rare.csv")
    model = tmp_path / "m"
    trained = invoke("train", data, "-t", "t", "-o", model, "-q", "--epochs", "1")
    assert trained.exit_code == 0, trained.stderr
    model.rename(tmp_path / ".m.old-0123abcd")  # the state a kill between the renames leaves
    result = invoke("report", model)
    assert result.exit_code == 0, result.stderr
    assert (model / "report.html").is_file() and not (tmp_path / ".m.old-0123abcd").exists()
    assert invoke("report", tmp_path / "absent").exit_code == 2  # nothing to restore
