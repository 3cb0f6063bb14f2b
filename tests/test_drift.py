"""Inputs outside what training saw (``drift``): named per row by ``tabnn predict
--outside-training`` and by the server, never for inputs like training's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import tabnn
from tabnn import TabNNClassifier
from tabnn.cli import app
from tabnn.features.drift import KINDS, available_checks, describe, outside_training
from tabnn.features.fast_encode import checked_columns, checked_frame


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    n = 80
    X = pd.DataFrame(
        {
            "age": rng.uniform(20, 60, n).round(1),
            "income": np.where(np.arange(n) % 10 == 0, np.nan, rng.uniform(1, 9, n)),
            "city": rng.choice(["Oslo", "Lima"], n),
            "pet": np.where(np.arange(n) % 7 == 0, None, rng.choice(["cat", "dog"], n)),
        }
    )
    # no validation split: every row is a training row (the split's rows are not ones)
    model = TabNNClassifier(epochs=1, random_state=0, validation_fraction=0.0)
    return model.fit(X, (X.age > 40).astype(int)), X


def findings(model, table: dict) -> list[str]:
    estimator = model[0]
    rows = checked_frame(estimator, pd.DataFrame(table))
    fast = checked_columns(estimator, table)
    slow = [describe(p) for p in outside_training(estimator.preprocessor_, *rows)]
    if fast is not None:  # both paths find the same
        assert [describe(p) for p in outside_training(estimator.preprocessor_, *fast)] == slow
    return slow


def test_training_rows_are_never_outside(model):
    estimator, X = model
    table = {c: X[c].tolist() for c in X}
    table = {c: [None if pd.isna(v) else v for v in vs] for c, vs in table.items()}
    assert findings(model, table) == [""] * len(X)


def test_each_kind_is_named(model):
    _, X = model
    table = {
        "age": [X.age.max() + 1, X.age.min() - 1, None, 30.0],
        "income": [5.0, None, 5.0, 5.0],  # missing seen in training: fine
        "city": ["Oslo", "Rome", None, "Lima"],
        "pet": [None, "cat", "dog", "fish"],  # missing seen in training: fine
    }
    assert findings(model, table) == [
        "age:above_range",
        "age:below_range;city:unseen_category",
        "age:unseen_missing;city:unseen_missing",
        "pet:unseen_category",
    ]


def test_a_model_saved_before_ranges_reports_nothing(model):
    estimator, X = model
    prep = estimator.preprocessor_
    old = type(prep)(**{**prep.to_dict(), "ranges": [], "missing_seen": []})
    rows = checked_frame(estimator, pd.DataFrame({"age": [1e9], "income": [None],
                                                 "city": ["Oslo"], "pet": ["cat"]}))  # fmt: skip
    assert outside_training(old, *rows) == [[]]
    assert available_checks(old) == ["unseen_category"]
    assert available_checks(prep) == list(KINDS)


def test_predict_adds_the_column(model, tmp_path):
    estimator, X = model
    model_dir = tabnn.save(estimator, tmp_path / "m")
    rows = X.head(3).copy()
    rows.loc[0, "city"] = "Rome"
    rows.to_csv(tmp_path / "rows.csv", index=False)
    result = CliRunner().invoke(
        app, ["predict", str(model_dir), str(tmp_path / "rows.csv"), "--outside-training"]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].endswith(",outside_training")
    assert lines[1].endswith(",city:unseen_category") and lines[2].endswith(",")
