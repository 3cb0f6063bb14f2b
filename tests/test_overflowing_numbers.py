"""Numbers beyond float64's range (issue 20, item 4): one rule for train and predict. A
number too large for float64 (a 401-digit integer, 1e400, negative or not) is an
infinity, which training refuses as it refuses ``inf``, naming the column and the row,
and which predicting refuses alike; it no longer turns its column into text that is
then dropped. Parquet decimal columns are numbers too."""

import decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_cli import assert_fails, invoke

from tabnn.data import read_table

HUGE = "9" * 401  # beyond float64's 1.8e308
BEYOND = [HUGE, "-" + HUGE, "+" + HUGE, "1e400", "-1e400"]
QUICK = ["--epochs", "1", "--no-report", "-q"]


def table(floats: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.integers(-3, 4, 60), "b": rng.normal(size=60)})
    if floats:
        frame["a"] = frame["a"] + 0.5
    frame["y"] = np.where(frame["b"] > 0, "yes", "no")
    return frame


def with_value(frame: pd.DataFrame, value: str, row: int = 5) -> pd.DataFrame:
    frame = frame.astype({"a": object})
    frame.loc[row, "a"] = value
    return frame


def refusal(result) -> str:
    return assert_fails(result, 1, "Column 'a' holds infinite values", "data rows 5 (0-based)")


@pytest.mark.parametrize("floats", [False, True], ids=["integers", "floats"])
@pytest.mark.parametrize("value", BEYOND)
def test_train_refuses_a_number_beyond_float64_as_it_refuses_inf(tmp_path, value, floats):
    with_value(table(floats), value).to_csv(tmp_path / "t.csv", index=False)
    message = refusal(invoke("train", "t.csv", "--target", "y", *QUICK, cwd=tmp_path))
    with_value(table(floats), "inf").to_csv(tmp_path / "inf.csv", index=False)
    same = refusal(invoke("train", "inf.csv", "--target", "y", *QUICK, cwd=tmp_path))
    assert message == same  # one rule, one message
    assert not (tmp_path / "tabnn-models").exists()


@pytest.mark.parametrize("value", [HUGE, "-" + HUGE, "1e400"])
def test_predict_refuses_it_with_the_same_message(tmp_path, value):
    table(floats=True).to_csv(tmp_path / "t.csv", index=False)  # a: numeric
    trained = invoke("train", "t.csv", "--target", "y", *QUICK, "-o", "m", cwd=tmp_path)
    assert trained.exit_code == 0, trained.stderr
    with_value(table(floats=True), value).to_csv(tmp_path / "new.csv", index=False)
    refusal(invoke("predict", "m", "new.csv", cwd=tmp_path))


def test_the_value_reads_as_an_infinity_in_a_numeric_column(tmp_path):
    with_value(table(), "-" + HUGE).to_csv(tmp_path / "t.csv", index=False)
    column = read_table(tmp_path / "t.csv")["a"]
    assert column.dtype == np.float64 and column[5] == -np.inf


def test_digit_codes_stay_text_even_beside_a_number_beyond_float64(tmp_path):
    ids = pd.DataFrame({"account": [str(10**20 + i) for i in range(60)]})
    ids.loc[7, "account"] = HUGE
    ids.to_csv(tmp_path / "ids.csv", index=False)
    assert read_table(tmp_path / "ids.csv")["account"].dtype != np.float64


def write_parquet(path: Path, column: pa.Array, frame: pd.DataFrame) -> Path:
    table = pa.table({"a": column, "b": frame["b"], "y": frame["y"]})
    pq.write_table(table, path)
    return path


def test_a_parquet_decimal_column_is_numeric(tmp_path):
    frame = table()
    exact = [decimal.Decimal(int(v)) for v in frame["a"]]
    exact[5] = decimal.Decimal("9" * 76)  # the widest decimal Parquet holds: still finite
    path = write_parquet(tmp_path / "t.parquet", pa.array(exact, pa.decimal256(76, 0)), frame)
    column = read_table(path)["a"]
    assert column.dtype == np.float64 and column[5] == 1e76
    result = invoke("train", path, "--target", "y", *QUICK, "-o", tmp_path / "m")
    assert result.exit_code == 0, result.stderr
    assert "numeric (2): a, b" in invoke("info", tmp_path / "m").stdout


def test_a_parquet_infinity_is_refused_at_train_and_at_predict(tmp_path):
    frame = table(floats=True)
    values = frame["a"].to_numpy().copy()
    values[5] = np.inf
    path = write_parquet(tmp_path / "inf.parquet", pa.array(values), frame)
    refusal(invoke("train", path, "--target", "y", *QUICK))
    frame.to_csv(tmp_path / "t.csv", index=False)
    invoke("train", "t.csv", "--target", "y", *QUICK, "-o", "m", cwd=tmp_path)
    text = [str(v) for v in frame["a"]]
    text[5] = HUGE  # a text column: Parquet holds no number this large
    path = write_parquet(tmp_path / "huge.parquet", pa.array(text), frame)
    refusal(invoke("predict", "m", path, cwd=tmp_path))
