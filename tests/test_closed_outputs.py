"""Outputs that cannot be written (issue 20, item 13): a reader that closes stdout early
(``tabnn train ... | head``) does not turn a saved model into a silent failure, and a path
that cannot be written is reported as the path the user gave, never as the hidden
temporary file tabnn writes first."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_cli import assert_fails, invoke

from tabnn import io

QUICK = ["--epochs", "1", "--no-report"]


def table(path: Path) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    frame["y"] = np.where(frame["a"] > 0, "yes", "no")
    frame.to_csv(path, index=False)
    return path


def run_unread(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """``tabnn ARGS`` whose stdout is closed before it writes a byte (``| head -0``)."""
    command = [sys.executable, "-m", "tabnn", *args]
    process = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stdout.close()
    stderr = process.stderr.read().decode()
    return subprocess.CompletedProcess(command, process.wait(timeout=120), "", stderr)


@pytest.mark.parametrize("extra", [[], ["--json"]], ids=["table", "json"])
def test_train_into_a_closed_pipe_saves_the_model_and_exits_0(tmp_path, extra):
    table(tmp_path / "t.csv")
    result = run_unread(tmp_path, "train", "t.csv", "--target", "y", *QUICK, "-o", "m", *extra)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert (tmp_path / "m" / "tabnn.json").is_file()


def test_predict_into_a_closed_pipe_exits_0(tmp_path):
    table(tmp_path / "t.csv")
    assert invoke("train", "t.csv", "-t", "y", *QUICK, "-q", "-o", "m", cwd=tmp_path).exit_code == 0
    result = run_unread(tmp_path, "predict", "m", "t.csv")
    assert (result.returncode, result.stderr) == (0, "")


@pytest.fixture
def unwritable(tmp_path) -> Path:
    """A folder no file can be created in: a read-only one, or for root (who writes
    anywhere) /sys, which refuses new files even to root."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if _creates(folder):
        folder = Path("/sys")
        if not folder.is_dir() or _creates(folder):
            pytest.skip("no folder here refuses new files")
    yield folder
    (tmp_path / "read-only").chmod(0o755)


def _creates(folder: Path) -> bool:
    probe = folder / ".tabnn-probe"
    try:
        probe.touch()
    except OSError:
        return False
    probe.unlink()
    return True


def names_the_users_path(result, path: Path) -> None:
    message = assert_fails(result, 1, f"'{path}'", "cannot write")
    assert ".tmp" not in message


def test_predict_out_names_the_path_given(tmp_path, unwritable):
    table(tmp_path / "t.csv")
    invoke("train", "t.csv", "-t", "y", *QUICK, "-q", "-o", "m", cwd=tmp_path)
    out = unwritable / "p.csv"
    names_the_users_path(invoke("predict", "m", "t.csv", "--out", out, cwd=tmp_path), out)


def test_train_out_names_the_path_given(tmp_path, unwritable):
    table(tmp_path / "t.csv")
    out = unwritable / "model"
    result = invoke("train", "t.csv", "-t", "y", *QUICK, "-q", "-o", out, cwd=tmp_path)
    names_the_users_path(result, out)


def test_export_out_names_the_path_given(tmp_path, unwritable):
    pytest.importorskip("onnxruntime")
    table(tmp_path / "t.csv")
    invoke("train", "t.csv", "-t", "y", *QUICK, "-q", "-o", "m", cwd=tmp_path)
    out = unwritable / "model.onnx"
    names_the_users_path(invoke("export", "m", "--out", out, cwd=tmp_path), out)


def test_every_atomic_writer_names_the_path_given(unwritable):
    for write, path in [
        (lambda p: io.write_file_atomic(p, b"page"), unwritable / "report.html"),
        (lambda p: io.write_dir_atomic(p, {"a.json": b"{}"}, replace=False), unwritable / "m"),
    ]:
        with pytest.raises(OSError) as caught:
            write(path)
        assert caught.value.filename == str(path)
        assert not list(unwritable.glob(f".{path.name}.*"))
