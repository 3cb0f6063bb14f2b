"""A streamed table's schema is the whole table's: what its first file holds (one class, a
column missing or constant there, few of a column's values, few labels) decides nothing on
its own. And a directory's file that differs or fails is named in the error."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tabnn
from tabnn.data import ReadOptions
from tabnn.features.column_kinds import ColumnFacts
from tabnn.features.table_profile import ColumnProfile
from tabnn.scale.streaming import TableStream, survey

pytest.importorskip("pyarrow")

TITANIC = Path(__file__).parent / "data" / "titanic" / "train.csv"


def titanic() -> pd.DataFrame:
    return pd.read_csv(TITANIC)


def write_parts(frames: list[pd.DataFrame], folder: Path) -> Path:
    folder.mkdir()
    for i, frame in enumerate(frames):
        frame.to_parquet(folder / f"part-{i}.parquet", index=False)
    return folder


def thirds(frame: pd.DataFrame) -> list[pd.DataFrame]:
    return [frame.iloc[:300], frame.iloc[300:600], frame.iloc[600:]]


def surveyed(folder: Path, target: str = "Survived", **read):
    options = ReadOptions(target=target, **read)
    return survey(TableStream(folder, options, True), tabnn.TabNNClassifier(), 0, 0.15, 0.15)


def in_memory_schema(frames: list[pd.DataFrame], target: str = "Survived"):
    whole = pd.concat(frames, ignore_index=True)  # as pandas joins the files' columns
    return tabnn.TabNNClassifier().infer_schema(whole.drop(columns=target), whole[target])


def first_file_one_class(t):
    died = t[t["Survived"] == 0].head(300)
    rest = t.drop(died.index)
    return [died, rest.iloc[:300], rest.iloc[300:]]


def numbers_missing_then_present(t):
    parts = thirds(t)
    parts[0] = parts[0].assign(Age=np.nan)
    return parts


def constant_then_varied(t):
    parts = thirds(t)
    parts[0] = parts[0].assign(Fare=7.25, Embarked="S")  # a category's other values later
    return parts


def a_class_only_in_the_last_file(t):
    parts = thirds(t)
    parts[2] = parts[2].assign(Survived=np.where(parts[2]["Pclass"] == 1, 2, parts[2]["Survived"]))
    return parts


LAYOUTS = {
    "first file of one class": first_file_one_class,
    "a numeric column missing in the first file": numbers_missing_then_present,
    "columns constant in the first file": constant_then_varied,
    "a class only in the last file": a_class_only_in_the_last_file,
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_the_streamed_schema_is_the_in_memory_schema_of_the_whole_table(tmp_path, layout):
    frames = LAYOUTS[layout](titanic())
    found = surveyed(write_parts(frames, tmp_path / "table"))
    assert found.schema == in_memory_schema(frames)
    prep = found.statistics.preprocessor("standard", "auto")
    assert prep.numeric == found.schema.numeric and prep.categorical == found.schema.categorical


def test_a_category_seen_only_in_later_files_is_in_the_vocabulary(tmp_path):
    frames = constant_then_varied(titanic())
    found = surveyed(write_parts(frames, tmp_path / "table"))
    assert "Embarked" in found.schema.categorical
    prep = found.statistics.preprocessor("standard", "auto")
    assert {"S", "C", "Q"} <= set(prep.vocabularies[prep.categorical.index("Embarked")])
    assert found.schema.numeric[:2] == ["Age", "Fare"]


def test_a_first_file_of_one_class_trains_and_a_later_class_is_predicted(tmp_path):
    """The probe's directory: its first file holds one class of two (and, here, a third
    class appears only in the last file): it trains, and the model knows every class."""
    frames = first_file_one_class(titanic())
    frames[-1] = frames[-1].assign(Survived=np.where(frames[-1]["Pclass"] == 1, 2, 1))
    folder = write_parts(frames, tmp_path / "table")
    out = tmp_path / "model"
    result = run_tabnn("train", folder, "--target", "Survived", "--stream", "--epochs", "2",
                       "--json", "--no-report", "-o", out)  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["classes"] == [0, 1, 2] and summary["task"] == "multiclass"
    assert sum(summary["rows"].values()) == 891
    model = tabnn.load(out)
    proba = model.predict_proba(frames[-1].drop(columns="Survived"))
    assert proba.shape == (len(frames[-1]), 3) and np.isfinite(proba).all()


def test_labels_only_in_later_files_are_labels(tmp_path):
    """--label-sep: a label first seen in the last file is one of the model's labels (it
    was dropped from the model without a word), and a file with no label at all is fine."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "tags"
    folder.mkdir()
    for i in range(3):
        x = rng.normal(size=(400, 2))
        tags = [
            "|".join(t for t, on in (("a", u > 0), ("late", i == 2 and v > 0)) if on) or ""
            for u, v in x
        ]
        if i == 1:
            tags = [""] * len(tags)  # a file of rows without labels
        frame = pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "tags": tags})
        frame.to_parquet(folder / f"part-{i}.parquet", index=False)
    found = surveyed(folder, target="tags", label_sep="|")
    assert found.schema.task == "multilabel" and found.schema.classes == ["a", "late"]
    out = tmp_path / "model"
    result = run_tabnn("train", folder, "--target", "tags", "--label-sep", "|", "--stream",
                       "--epochs", "2", "--no-report", "-o", out)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert list(tabnn.load(out).schema_.classes) == ["a", "late"]


def test_the_facts_of_a_streamed_column_are_the_whole_columns():
    """Chunk by chunk, the same facts as the whole column, but for a count of distinct
    values beyond the exact range, which is estimated (within 1.6 % or so)."""
    rng = np.random.default_rng(1)
    n = 20_000
    columns = {
        "ids": pd.Series(np.arange(n)),
        "few": pd.Series(rng.integers(0, 5, n)),
        "missing later": pd.Series(np.where(np.arange(n) > 15_000, np.nan, rng.normal(size=n))),
        "words": pd.Series(rng.choice(["a b", "cc", "ddd d"], n).astype(object)),
        "dates": pd.Series(pd.date_range("2020-01-01", periods=n, freq="h").astype(str)),
        "varied": pd.Series(rng.integers(0, 15_000, n).astype(str)),
        "text ids": pd.Series(np.arange(n).astype(str)),
    }
    for name, column in columns.items():
        profile = ColumnProfile()
        for start in range(0, n, 3_000):
            profile.add(column.iloc[start : start + 3_000])
        streamed, whole = asdict(profile.facts()), asdict(ColumnFacts.of(column))
        if streamed.pop("estimated"):
            assert streamed.pop("distinct") == pytest.approx(whole.pop("distinct"), rel=0.05)
        whole.pop("estimated")
        for fact, value in whole.items():  # lengths are means: equal up to rounding
            expected = pytest.approx(value) if isinstance(value, float) else value
            assert streamed[fact] == expected, (name, fact)


# --------------------------------------------------------------------------- named files


def run_tabnn(*args) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "tabnn", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def train(folder: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    return run_tabnn("train", folder, "--target", "Survived", "--stream", "--epochs", "1",
                     "--no-report", "-o", tmp_path / "model")  # fmt: skip


def test_a_file_without_a_column_is_named_with_the_column(tmp_path):
    parts = thirds(titanic())
    parts[1] = parts[1].drop(columns="Fare")
    folder = write_parts(parts, tmp_path / "table")
    result = train(folder, tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "'part-1.parquet' lacks column 'Fare', unlike 'part-0.parquet'" in result.stderr
    model = tmp_path / "fitted"
    fitted = run_tabnn("train", TITANIC, "--target", "Survived", "--epochs", "1", "--no-report",
                       "-o", model)  # fmt: skip
    assert fitted.returncode == 0, fitted.stderr
    predicted = run_tabnn("predict", model, folder, "-o", tmp_path / "p.csv")
    assert predicted.returncode == 1 and "Traceback" not in predicted.stderr
    assert "error: part-1.parquet: Columns seen at fit time, yet now missing" in predicted.stderr


def test_a_file_whose_column_holds_another_type_is_named(tmp_path):
    parts = thirds(titanic())
    parts[2] = parts[2].assign(Age=parts[2]["Age"].astype(str))
    result = train(write_parts(parts, tmp_path / "table"), tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        "'part-2.parquet': column 'Age' holds text, but in 'part-0.parquet' it holds numbers"
        in (result.stderr)
    )
    assert not (tmp_path / "model").exists()


def test_a_bad_value_in_one_file_names_the_file_and_its_row_there(tmp_path):
    parts = thirds(titanic())
    parts[1] = parts[1].assign(Age=parts[1]["Age"].astype(object))
    parts[1].iloc[7, parts[1].columns.get_loc("Age")] = np.inf
    result = train(write_parts(parts, tmp_path / "table"), tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "error: part-1.parquet: Column 'Age' holds infinite values" in result.stderr
    assert "in data rows 7 (0-based)" in result.stderr


@pytest.mark.parametrize("damage", [b"", b"not parquet at all"])
def test_an_unreadable_file_among_many_is_named(tmp_path, damage):
    folder = write_parts(thirds(titanic()), tmp_path / "table")
    (folder / "part-1.parquet").write_bytes(damage)
    result = train(folder, tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Could not read part-1.parquet as Parquet" in result.stderr
