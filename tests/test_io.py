"""Tests for tabnn.io: files written whole or not at all, and strict JSON."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tabnn.io import atomic_output, dump_json, to_jsonable, write_file_atomic


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path):
    target = tmp_path / "preds.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError, match="crash"), atomic_output(target) as temp:
        temp.write_text("half")
        raise RuntimeError("crash")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["preds.csv"]


def test_a_finished_write_replaces_the_file_and_makes_its_folders(tmp_path: Path):
    target = tmp_path / "a" / "b" / "report.html"
    write_file_atomic(target, b"<html>")
    write_file_atomic(target, b"<html>new")
    assert target.read_bytes() == b"<html>new"
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]


def test_keys_are_strict_unless_any_key_is_asked_for():
    with pytest.raises(TypeError, match="keys must be strings"):
        to_jsonable({1.5: "x"})
    assert to_jsonable({1.5: np.float32(2.0), True: [np.nan]}, any_key=True) == {
        "1.5": 2.0,
        "True": [None],
    }


def test_dump_json_is_strict_sorted_and_readable():
    text = dump_json({"b": float("inf"), "a": (1, 2)}).decode()
    assert json.loads(text) == {"a": [1, 2], "b": None}
    assert text.index('"a"') < text.index('"b"') and text.endswith("\n")


def test_the_next_write_removes_a_killed_writers_temporary_file(tmp_path: Path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    orphan = tmp_path / f".preds.csv.{dead.stdout.strip()}.0123abcd.tmp"
    alive = tmp_path / f".preds.csv.{os.getppid()}.89abcdef.tmp"  # a live writer's
    mine = tmp_path / ".preds.csv.notes.tmp"  # not a name tabnn makes
    for path in (orphan, alive, mine):
        path.write_text("partial")
    write_file_atomic(tmp_path / "preds.csv", b"row\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [alive.name, mine.name, "preds.csv"]
    )
