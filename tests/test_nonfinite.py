"""Infinite and huge numbers: refused where they are no measurement, harmless where they
are finite, and never a label without finite probabilities behind it."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from test_cli import assert_fails, invoke, snapshot

from tabnn import TabNNClassifier
from tabnn.errors import DataError, SchemaError

FAST = {"hidden": [16], "epochs": 5, "patience": 3}


def table(n: int = 120, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    X, y = make_classification(n_samples=n, n_features=4, n_informative=3, n_redundant=0,
                               random_state=seed)  # fmt: skip
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    frame["colour"] = np.where(X[:, 0] > 0, "red", "blue")
    return frame, y


@pytest.mark.parametrize("bad", [np.inf, -np.inf], ids=["inf", "-inf"])
def test_fit_refuses_an_infinity_naming_its_column_and_row(bad):
    X, y = table()
    X.loc[7, "c"] = bad
    with pytest.raises(SchemaError, match=r"Column 'c' holds infinite values in data rows 7"):
        TabNNClassifier(**FAST).fit(X, y)


def test_predict_refuses_an_infinity_naming_its_column_and_row():
    X, y = table()
    clf = TabNNClassifier(**FAST).fit(X, y)
    rows = X.iloc[:5].copy()
    rows.loc[3, "b"] = np.inf
    with pytest.raises(SchemaError, match=r"Column 'b' holds infinite values in data rows 3"):
        clf.predict_proba(rows)


@pytest.mark.parametrize("scaling", ["standard", "robust", "quantile"])
@pytest.mark.parametrize("huge", [1e300, 1e308, -1e308, 1e-300], ids=str)
def test_huge_finite_numbers_keep_every_probability_finite(scaling, huge):
    X, y = table()
    X.loc[[3, 40], "a"] = huge
    clf = TabNNClassifier(hidden=[32], epochs=40, lr=0.01, scaling=scaling).fit(X, y)
    assert all(np.isfinite(v) for v in clf.preprocessor_.centers + clf.preprocessor_.scales)
    rows = X.iloc[:6].copy()
    rows.loc[1, "b"] = -huge
    proba = clf.predict_proba(rows)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert clf.score(X, y) > 0.75  # two huge values do not ruin the model


def test_a_network_that_cannot_score_a_row_is_an_error_not_a_label():
    X, y = table()
    clf = TabNNClassifier(**FAST).fit(X, y)
    first = next(clf.inference_model_.parameters())
    first.data[:] = np.nan
    with pytest.raises(DataError, match=r"no finite probabilities for 3 row"):
        clf.predict(X.iloc[:3])


def test_training_that_diverges_says_so():
    X, y = table()
    with pytest.raises(DataError, match="Training diverged"):
        # no validation rows: no best epoch to fall back on
        TabNNClassifier(**FAST, lr=1e30, validation_fraction=0).fit(X, y)


def write_table(path: Path, first_a: str) -> Path:
    X, y = table(60)
    X["a"] = X["a"].round(6).astype(str)
    X.loc[4, "a"] = first_a
    X.assign(y=np.where(y == 1, "yes", "no")).to_csv(path, index=False)
    return path


def test_train_names_the_column_and_the_file_row(tmp_path: Path):
    data = write_table(tmp_path / "data.csv", "inf")
    before = snapshot(tmp_path)
    result = invoke("train", data, "-t", "y", "-o", tmp_path / "m", "-q", "--epochs", "2")
    assert_fails(result, 1, "Column 'a' holds infinite values in data rows 4")
    assert snapshot(tmp_path) == before


def test_predict_names_the_row_and_writes_nothing(tmp_path: Path):
    data = write_table(tmp_path / "data.csv", "0.5")
    model = tmp_path / "m"
    assert invoke("train", data, "-t", "y", "-o", model, "-q", "--epochs", "2").exit_code == 0
    rows = write_table(tmp_path / "rows.csv", "-inf")
    before = snapshot(tmp_path)
    result = invoke("predict", model, rows, "-o", tmp_path / "p.csv")
    assert_fails(result, 1, "Column 'a' holds infinite values in data rows 4")
    assert snapshot(tmp_path) == before
    huge = write_table(tmp_path / "huge.csv", "1e308")
    assert invoke("predict", model, huge, "-o", tmp_path / "p.csv").exit_code == 0
    predictions = pd.read_csv(tmp_path / "p.csv")
    probabilities = predictions[["proba_no", "proba_yes"]].to_numpy()
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(1), 1.0)


def test_an_array_with_an_infinity_is_refused_naming_its_column_and_row():
    X, y = table()
    values = X.drop(columns="colour").to_numpy().copy()
    values[9, 2] = -np.inf
    with pytest.raises(SchemaError, match=r"Column '2' holds infinite values in data rows 9"):
        TabNNClassifier(**FAST).fit(values, y)
