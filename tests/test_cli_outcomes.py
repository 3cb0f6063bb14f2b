"""Command-line outcomes users reported: a class of one row trains whatever the seed, short
messages name the classes, and --quiet prints nothing but errors."""

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
