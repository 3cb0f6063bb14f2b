"""Tests for tabnn.features.dates and date columns in the schema: dates become numeric parts."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_cli import invoke

from tabnn import TabNNClassifier, load, save
from tabnn.features.dates import looks_like_dates, parts
from tabnn.features.schema import Schema, infer_schema


def dated(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    when = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1000, n), unit="D")
    X = pd.DataFrame({"when": when.strftime("%Y-%m-%d"), "x": rng.normal(size=n)})
    return X, np.asarray(when.month >= 6, dtype=int)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["2024-01-05", "2023-12-31 10:00", "1999-02-28T23:59:59Z"], True),
        (["05/03/2021", "12/31/1999", "1/2/2003"], False),  # day and month could swap
        (["1.5", "2.25", "3"], False),
        (["red", "green", "blue"], False),
        (["A/1", "B/2", "C/3"], False),
        (["2024-01-05", "soon", "later", "never"], False),
    ],
    ids=["iso", "us", "numbers", "words", "codes", "mostly-not"],
)
def test_looks_like_dates(values, expected):
    assert looks_like_dates(pd.Series(values)) is expected


def test_parts_of_a_date_and_of_no_date():
    got = pd.DataFrame(parts(pd.Series(["2024-03-01", None, "nonsense"]), "d"))
    assert got.loc[0].tolist() == [2024, 3, 1, 4, 61, 19783]
    assert got.loc[1:].isna().all().all()


def test_a_date_column_becomes_numeric_parts_not_an_id():
    X, y = dated()
    schema = infer_schema(X, pd.Series(y, name="summer"))
    assert schema.dates == ["when"] and "when" not in schema.dropped
    assert schema.numeric[:2] == ["when_year", "when_month"] and schema.features == ["x", "when"]
    assert Schema.from_dict(schema.to_dict()) == schema


def test_dates_are_learned_and_survive_save_and_load(tmp_path: Path):
    X, y = dated()
    clf = TabNNClassifier(epochs=60).fit(X[:200], y[:200])
    assert clf.score(X[200:], y[200:]) > 0.8  # the month decides: only the parts tell it
    rows = X[200:210].copy()
    rows.iloc[0, 0], rows.iloc[1, 0] = "not a date", None  # missing in every part
    proba = clf.predict_proba(rows)
    assert np.isfinite(proba).all()
    np.testing.assert_array_equal(load(save(clf, tmp_path / "m")).predict_proba(rows), proba)


def test_train_keeps_a_date_column(tmp_path: Path):
    X, y = dated(200)
    X.assign(summer=y).to_csv(tmp_path / "d.csv", index=False)
    result = invoke("train", tmp_path / "d.csv", "-t", "summer", "-o", tmp_path / "m",
                    "--epochs", "5", "--no-report")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "dropped column when" not in result.stdout
    assert '"dates": [\n      "when"' in (tmp_path / "m" / "tabnn.json").read_text()
