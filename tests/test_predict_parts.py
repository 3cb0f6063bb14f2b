"""Prediction at scale: ``tabnn predict MODEL DIR -o OUT`` over a directory of Parquet (or
CSV) files, written as a directory of Parquet parts that appears whole or not at all.

One small model (numeric columns with missing values, text and integer categories) is
trained once for the module; the tables are a few hundred rows cut into several files.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console
from typer.testing import CliRunner

import tabnn
from tabnn.cli import app, render
from tabnn.data.read import ReadOptions
from tabnn.inference import parts
from tabnn.inference.predict import predict_file

runner = CliRunner()
BAR = "━"
MANIFEST = parts.MANIFEST


def table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n) * 10),
            "n": rng.integers(0, 100, n),
            "colour": rng.choice(["red", "green", "blue", " red"], n),
            "size": rng.choice([1, 2, 3], n),
        }
    )
    frame["y"] = np.where(frame["a"] + (frame["colour"] == "red") > 0.5, "yes", "no")
    return frame


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    frame = table(300, seed=0)
    y = frame.pop("y")
    clf = tabnn.TabNNClassifier(epochs=3, categorical=["size"]).fit(frame, y)
    return tabnn.save(clf, tmp_path_factory.mktemp("m") / "model")


@pytest.fixture
def rows() -> pd.DataFrame:
    frame = table(230, seed=1).drop(columns="y")
    frame.loc[5, "colour"] = "violet"  # unseen
    frame.loc[6, "b"] = np.nan
    return frame


def write_parts(directory: Path, frame: pd.DataFrame, sizes, suffix=".parquet") -> Path:
    """``frame`` cut into files of ``sizes`` rows (names sort in row order), plus what
    Spark leaves beside its parts: ``_SUCCESS`` and hidden checksums."""
    directory.mkdir(parents=True, exist_ok=True)
    start = 0
    for i, size in enumerate(sizes):
        piece = frame.iloc[start : start + size]
        path = directory / f"part-{i:05d}{suffix}"
        if suffix == ".parquet":
            pq.write_table(pa.Table.from_pandas(piece, preserve_index=False), path)
        else:
            piece.to_csv(path, index=False)
        (directory / f".{path.name}.crc").write_bytes(b"\x00\x01")
        start += size
    (directory / "_SUCCESS").write_bytes(b"")
    return directory


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    escaped = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not escaped, f"unexpected {result.exception!r}\n{result.stderr}"
    return result


def read_parts(out: Path) -> pd.DataFrame:
    manifest = json.loads((out / MANIFEST).read_text())
    names = sorted(p.name for p in out.glob("part-*.parquet"))
    assert names == [part["name"] for part in manifest["parts"]]
    frames = [pq.read_table(out / name).to_pandas() for name in names]
    assert [len(f) for f in frames] == [part["rows"] for part in manifest["parts"]]
    return pd.concat(frames, ignore_index=True)


def snapshot(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*")}


def test_a_directory_predicts_as_its_files_in_one_file(model, rows, tmp_path):
    data = write_parts(tmp_path / "data", rows, [37, 0, 120, 73])
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), tmp_path / "all.parquet")
    done = invoke("predict", model, data, "-o", tmp_path / "out", "--chunk-size", "16")
    assert done.exit_code == 0, done.stderr
    assert f"wrote {len(rows)} predictions" in done.stderr
    one = invoke("predict", model, tmp_path / "all.parquet", "-o", tmp_path / "one.parquet")
    assert one.exit_code == 0, one.stderr
    got = read_parts(tmp_path / "out")
    expected = pd.read_parquet(tmp_path / "one.parquet")
    pd.testing.assert_frame_equal(got, expected)  # same columns, types, rows and values
    assert got["row"].tolist() == list(range(len(rows)))
    proba = tabnn.load(model).predict_proba(rows)
    np.testing.assert_allclose(got[["proba_no", "proba_yes"]], proba, rtol=0, atol=1e-15)
    assert pq.read_table(tmp_path / "out" / "part-00000.parquet").num_rows == len(rows)
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert manifest["format"] == "tabnn-predictions" and manifest["rows"] == len(rows)
    assert manifest["data"] == str(data.resolve()) and manifest["model"] == str(model.resolve())
    # what a reader of the directory sees: Spark, pyarrow and pandas skip _tabnn_*.json
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out"), expected)


def test_parts_hold_up_to_a_million_rows_each(model, rows, tmp_path, monkeypatch):
    monkeypatch.setattr(parts, "PART_ROWS", 50)
    data = write_parts(tmp_path / "data", rows, [100, 130])
    count = predict_file(model, data, ReadOptions(), out=tmp_path / "out", chunksize=20)
    assert count == len(rows)
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    # chunks of 20 (a chunk never spans two files): 60, 60, then 60, 50 = 230
    assert [p["rows"] for p in manifest["parts"]] == [60, 60, 60, 50]
    got = read_parts(tmp_path / "out")
    assert got["row"].tolist() == list(range(len(rows)))
    proba = tabnn.load(model).predict_proba(rows)
    np.testing.assert_allclose(got["proba_yes"], proba[:, 1], rtol=0, atol=1e-15)


def test_a_directory_of_csv_files(model, rows, tmp_path):
    data = write_parts(tmp_path / "data", rows, [100, 130], suffix=".csv")
    rows.to_csv(tmp_path / "all.csv", index=False)
    assert invoke("predict", model, data, "-o", tmp_path / "out").exit_code == 0
    assert invoke("predict", model, tmp_path / "all.csv", "-o", tmp_path / "one.csv").exit_code == 0
    expected = pd.read_csv(tmp_path / "one.csv")
    got = read_parts(tmp_path / "out")
    assert got["row"].tolist() == expected["row"].tolist()
    np.testing.assert_allclose(got["proba_yes"], expected["proba_yes"], rtol=0, atol=1e-15)
    assert got["prediction"].tolist() == expected["prediction"].tolist()


def test_a_single_file_goes_to_parts_too(model, rows, tmp_path):
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), tmp_path / "all.parquet")
    result = invoke("predict", model, tmp_path / "all.parquet", "-o", tmp_path / "preds")
    assert result.exit_code == 0, result.stderr
    assert len(read_parts(tmp_path / "preds")) == len(rows)


def test_an_earlier_output_is_replaced_whole(model, rows, tmp_path, monkeypatch):
    monkeypatch.setattr(parts, "PART_ROWS", 50)
    data = write_parts(tmp_path / "data", rows, [230])
    out = tmp_path / "out"
    predict_file(model, data, ReadOptions(), out=out, chunksize=50)
    assert len(list(out.glob("part-*"))) == 5
    (tmp_path / ".out.tmp-0123abcd").mkdir()  # what a kill -9 of an earlier run leaves
    small = write_parts(tmp_path / "small", rows.iloc[:30], [30])
    assert predict_file(model, small, ReadOptions(), out=out, chunksize=50) == 30
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "part-00000.parquet"]
    assert len(read_parts(out)) == 30
    assert not (tmp_path / ".out.tmp-0123abcd").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert predict_file(model, small, ReadOptions(), out=empty) == 30


@pytest.mark.parametrize(
    "make, phrases",
    [
        (lambda out: out.write_text("mine"), ["is a file"]),
        (
            lambda out: (out.mkdir(), (out / "notes.txt").write_text("mine")),
            ["is not an earlier output of tabnn predict", "found notes.txt"],
        ),
        (
            lambda out: (
                out.mkdir(),
                (out / MANIFEST).write_text('{"format": "tabnn-predictions", "parts": []}'),
                (out / "part-00000.parquet").write_text("not listed"),
            ),
            ["found part-00000.parquet"],
        ),
        (
            lambda out: (out.mkdir(), (out / MANIFEST).write_text("{}"), (out / "x").mkdir()),
            [f"found {MANIFEST}, x/"],
        ),
        (lambda out: out.symlink_to(out.parent), ["is a link"]),
    ],
    ids=["file", "foreign-file", "unlisted-part", "not-a-manifest", "link"],
)
def test_an_output_in_the_way_is_refused(model, rows, tmp_path, make, phrases):
    data = write_parts(tmp_path / "data", rows, [230])
    out = tmp_path / "out"
    make(out)
    before = snapshot(tmp_path)
    result = invoke("predict", model, data, "-o", out)
    assert result.exit_code == 2, result.stderr
    message = " ".join(result.stderr.replace("│", " ").split())
    assert all(phrase in message for phrase in phrases), message
    assert "Traceback" not in result.stderr
    assert snapshot(tmp_path) == before


def test_an_error_midway_leaves_nothing(model, rows, tmp_path):
    bad = rows.astype({"a": str})  # numbers as text: read through pandas, as any text
    bad.loc[150, "a"] = "twenty"  # in the second file
    data = write_parts(tmp_path / "data", bad, [100, 130])
    before = snapshot(tmp_path)
    result = invoke("predict", model, data, "-o", tmp_path / "new" / "deeper" / "out")
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert (  # the second file, and the row in it
        "part-00001.parquet: Column 'a' was numeric at fit time, but data row 50 (0-based) "
        "holds 'twenty'" in message
    )
    assert snapshot(tmp_path) == before  # no parts, no staging directory, no new folders


def test_ctrl_c_leaves_nothing(model, rows, tmp_path):
    data = write_parts(tmp_path / "data", rows, [100, 130])
    before = snapshot(tmp_path)

    def interrupt(count: int) -> None:
        if count > 50:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        predict_file(
            model, data, ReadOptions(), out=tmp_path / "out", chunksize=40, on_chunk=interrupt
        )
    assert snapshot(tmp_path) == before


def test_sigterm_leaves_nothing(model, rows, tmp_path):
    big = pd.concat([rows] * 200, ignore_index=True)  # 46,000 rows in 10-row chunks
    data = write_parts(tmp_path / "data", big, [23_000, 23_000])
    out = tmp_path / "out"
    command = [sys.executable, "-m", "tabnn", "predict", model, data, "-o", out]
    process = subprocess.Popen(
        [*map(str, command), "--chunk-size", "10"], stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".out.tmp-*/part-00000.parquet")):
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "terminated; nothing was written" in stderr and "Traceback" not in stderr
    assert sorted(os.listdir(tmp_path)) == ["data"]


def test_a_directory_that_mixes_kinds_or_holds_no_table_is_refused(model, rows, tmp_path):
    data = write_parts(tmp_path / "data", rows, [100], suffix=".csv")
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), data / "z.parquet")
    result = invoke("predict", model, data, "-o", tmp_path / "out")
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "mixes Parquet files (z.parquet) with text files (part-00000.csv)" in message
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "_SUCCESS").write_bytes(b"")
    result = invoke("predict", model, empty, "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert "is a directory without table files" in " ".join(result.stderr.split())
    assert not (tmp_path / "out").exists()


def test_a_missing_column_is_named_with_the_files_columns(model, rows, tmp_path):
    data = write_parts(tmp_path / "data", rows.drop(columns="colour"), [230])
    result = invoke("predict", model, data, "-o", tmp_path / "out")
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert "yet now missing: - colour" in message and "The table has: a, b, n, size" in message


def test_the_progress_bar_counts_rows_of_a_known_total(model, rows, tmp_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(render, "err_console", Console(stderr=True, force_terminal=True))
    data = write_parts(tmp_path / "data", rows, [100, 130])
    result = invoke("predict", model, data, "-o", tmp_path / "out", "--chunk-size", "50")
    assert result.exit_code == 0, result.stderr
    assert BAR in result.stderr and "/230 rows" in result.stderr and "rows/s" in result.stderr
    quiet = invoke("predict", model, data, "-o", tmp_path / "out", "-q")
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_float32_predictions_are_within_1e_6(model, rows, tmp_path):
    data = write_parts(tmp_path / "data", rows, [100, 130])
    result = invoke("predict", model, data, "-o", tmp_path / "out", "--precision", "float32")
    assert result.exit_code == 0, result.stderr
    got = read_parts(tmp_path / "out")
    proba = tabnn.load(model).predict_proba(rows)
    np.testing.assert_allclose(got[["proba_no", "proba_yes"]], proba, rtol=0, atol=1e-6)
    wrong = invoke("predict", model, data, "-o", tmp_path / "x", "--precision", "half")
    assert wrong.exit_code == 2 and "float64" in wrong.stderr


def test_outside_training_goes_to_the_parts_too(model, rows, tmp_path):
    data = write_parts(tmp_path / "data", rows, [100, 130])
    result = invoke("predict", model, data, "-o", tmp_path / "out", "--outside-training")
    assert result.exit_code == 0, result.stderr
    got = read_parts(tmp_path / "out")
    assert "colour:unseen_category" in got.loc[5, "outside_training"]
    assert list(got.columns) == ["row", "prediction", "proba_no", "proba_yes", "outside_training"]
