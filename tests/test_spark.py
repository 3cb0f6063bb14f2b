"""``tabnn.scale.spark.predict_spark`` in a real SparkSession (local mode, two cores): the same
probabilities as ``predict_proba`` on the same rows, unseen categories and missing values
included, and the errors raised before any task runs.

Needs pyspark (``pip install -e '.[spark]'``, part of the ``test`` extra) and Java 17+;
without either the tests skip and say how to install it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import time

import numpy as np
import pandas as pd
import pytest

import tabnn
from tabnn.errors import SchemaError, UsageError

if importlib.util.find_spec("pyspark") is None:
    pytest.skip(
        "pyspark is not installed: .venv/bin/pip install -e '.[spark]' (or make test-spark)",
        allow_module_level=True,
    )
if shutil.which("java") is None:
    pytest.skip(
        "Spark needs Java 17 or later: apt-get install openjdk-17-jre-headless",
        allow_module_level=True,
    )

from tabnn.scale import spark as tabnn_spark  # noqa: E402
from tabnn.scale.spark import predict_spark  # noqa: E402

# pyspark 4.3 warns that it does not fully support pandas 3 yet; what these tests use works
pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]


def table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": np.where(rng.random(n) < 0.1, np.nan, rng.normal(40, 10, n)),
            "fare": rng.exponential(20, n),
            "town": rng.choice(["S", "C", "Q"], n),
            "deck": rng.choice([1, 2, 3], n),
        }
    )
    score = (frame["age"].fillna(40) - 40) / 10 + (frame["town"] == "S") - frame["deck"] * 0.3
    frame["label"] = np.where(score > 0, "yes", "no")
    return frame


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable  # the workers import this tabnn
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("tabnn-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    frame = table(400, seed=0)
    y = frame.pop("label")
    clf = tabnn.TabNNClassifier(epochs=3, categorical=["deck"]).fit(frame, y)
    return tabnn.save(clf, tmp_path_factory.mktemp("spark") / "model")


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    frame = table(300, seed=1).drop(columns="label")
    frame.loc[0, "town"] = "Atlantis"  # a category never seen in training
    frame.loc[1, "age"] = np.nan  # a missing value
    frame.loc[2, "town"] = None
    frame.insert(0, "id", np.arange(len(frame)))  # an extra column, kept and ignored
    return frame


def test_spark_gives_predict_probas_probabilities(spark, model, rows):
    start = time.perf_counter()
    df = spark.createDataFrame(rows).repartition(3)  # several tasks, rows out of order
    scored = predict_spark(df, model)
    assert scored.columns == [*rows.columns, "prediction", "proba_no", "proba_yes"]
    assert dict(scored.dtypes)["prediction"] == "string"
    got = scored.toPandas().sort_values("id").reset_index(drop=True)
    clf = tabnn.load(model)
    expected = clf.predict_proba(rows.drop(columns="id"))
    assert len(got) == len(rows)
    np.testing.assert_allclose(got[["proba_no", "proba_yes"]], expected, rtol=0, atol=1e-6)
    assert got["prediction"].tolist() == clf.predict(rows.drop(columns="id")).tolist()
    pd.testing.assert_frame_equal(got[rows.columns], rows, check_dtype=False)
    print(f"spark scoring of {len(rows)} rows: {time.perf_counter() - start:.1f} s")


def test_spark_float32_prefix_and_threshold(spark, model, rows):
    df = spark.createDataFrame(rows)
    scored = predict_spark(df, model, prefix="m_", threshold=0.9, precision="float32")
    got = scored.toPandas().sort_values("id").reset_index(drop=True)
    expected = tabnn.load(model).predict_proba(rows.drop(columns="id"))
    np.testing.assert_allclose(got["m_proba_yes"], expected[:, 1], rtol=0, atol=1e-6)
    assert (got["m_prediction"] == np.where(expected[:, 1] >= 0.9, "yes", "no")).all()


def test_mistakes_are_named_before_any_task_runs(spark, model, rows):
    df = spark.createDataFrame(rows)
    with pytest.raises(SchemaError, match="yet now missing:\n- town"):
        predict_spark(df.drop("town"), model)
    with pytest.raises(UsageError, match="already has column.s. prediction.*prefix='tabnn_'"):
        predict_spark(df.withColumnRenamed("id", "prediction"), model)
    with pytest.raises(UsageError, match="precision must be float64 or float32"):
        predict_spark(df, model, precision="half")
    with pytest.raises(tabnn.errors.InputNotFoundError):
        predict_spark(df, model.parent / "nowhere")


def test_integer_classes_come_back_as_longs(spark, tmp_path, rows):
    frame = table(200, seed=3)
    y = (frame.pop("label") == "yes").astype(int) * 7  # classes 0 and 7
    path = tabnn.save(tabnn.TabNNClassifier(epochs=2).fit(frame, y), tmp_path / "ints")
    scored = predict_spark(spark.createDataFrame(rows), path)
    assert dict(scored.dtypes)["prediction"] == "bigint"
    assert set(scored.toPandas()["prediction"]) <= {0, 7}


def test_a_worker_loads_the_model_once_and_again_when_it_changes(model, rows, tmp_path):
    def score(path, batches):
        return list(
            tabnn_spark.score_batches(
                batches, model_dir=str(path), threshold=0.5, prefix="", precision="float64",
                threads=1,
            )
        )  # fmt: skip

    batch = rows.iloc[:10]
    first = score(model, [batch, batch.iloc[:3]])
    cached = dict(tabnn_spark._WORKER_MODELS)
    score(model, [batch])
    assert len(cached) == 1 and list(cached) == list(tabnn_spark._WORKER_MODELS)
    key = next(iter(cached))
    assert tabnn_spark._WORKER_MODELS[key][0] is cached[key][0]  # not loaded again
    assert [len(b) for b in first] == [10, 3]
    copy = shutil.copytree(model, tmp_path / "copy")
    score(copy, [batch])
    assert list(tabnn_spark._WORKER_MODELS)[0][0] == str(copy)
