"""The Arrow encoder gives exactly the inputs of the pandas path (``TabNNClassifier.encode``
on the frame the reader would give), or declines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tabnn
from tabnn.data.read import batch_frame
from tabnn.features.arrow_encode import ArrowEncoder
from tabnn.features.encoding import encoding_of
from tabnn.features.frames import aligned

NUMERIC = ["n_int", "n_float", "n_null"]
CATEGORICAL = ["c_text", "c_int", "c_float", "c_bool", "c_dict"]


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame(
        {
            "n_int": rng.integers(-5, 5, n),
            "n_float": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
            "n_null": np.where(rng.random(n) < 0.5, np.nan, 1.0),
            "c_text": rng.choice(["a", "b", "3", "4.5", "x y"], n),
            "c_int": rng.choice([1, 2, 3, 7, 2**53], n),  # 2**53 + 1 with nulls reads 2**53
            "c_float": rng.choice([0.5, 1.0, 2.0], n),
            "c_bool": rng.random(n) < 0.3,
            "c_dict": rng.choice(["p", "q"], n),
        }
    )
    y = np.where(frame["n_float"].fillna(0) > 0, "yes", "no")
    clf = tabnn.TabNNClassifier(epochs=1, numeric=NUMERIC, categorical=CATEGORICAL)
    return clf.fit(frame, y)


texts = st.sampled_from(["a", " b ", "3", "3.0", "4.5", "x y", "?", "", "NA", "unseen", "03"])
floats = st.floats(allow_infinity=False, width=64) | st.sampled_from([0.5, 1.0, 2.0, 1e40])


def column(kind: str, values: list):
    return {
        "int": lambda: pa.array(values, type=pa.int64()),
        "float": lambda: pa.array(values, type=pa.float64()),
        "text": lambda: pa.array(values, type=pa.string()),
        "bool": lambda: pa.array(values, type=pa.bool_()),
        "dict": lambda: pa.array(values, type=pa.string()).dictionary_encode(),
        "large": lambda: pa.array(values, type=pa.large_string()),
    }[kind]()


@st.composite
def batches(draw):
    n = draw(st.integers(1, 12))

    def values(strategy, nulls=True):
        element = st.none() | strategy if nulls else strategy
        return draw(st.lists(element, min_size=n, max_size=n))

    ints = st.integers(-(2**60), 2**60) | st.sampled_from([1, 2, 3, 7, 2**53 + 1])
    arrays = {
        "n_int": column("int", values(ints)),
        "n_float": column("float", values(floats)),
        "n_null": pa.nulls(n) if draw(st.booleans()) else column("float", values(floats)),
        "c_text": column(draw(st.sampled_from(["text", "dict", "large"])), values(texts)),
        "c_int": column("int", values(ints)),
        "c_float": column("float", values(floats | st.just(float("nan")))),
        "c_bool": column("bool", values(st.booleans())),
        "c_dict": column(draw(st.sampled_from(["dict", "text"])), values(texts)),
        "extra": column("text", values(texts)),
    }
    names = list(arrays)
    order = draw(st.permutations(names))
    return pa.RecordBatch.from_arrays([arrays[k] for k in order], names=order)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches())
def test_the_arrow_path_gives_the_pandas_paths_inputs(model, batch):
    encoded = ArrowEncoder(encoding_of(model)).encode(batch)
    assert encoded is not None
    # what predict does: the frame the reader gives, its model's columns in fit order
    expected = model.encode(aligned(model, batch_frame(batch, "x.parquet")))
    np.testing.assert_array_equal(encoded.numeric, expected.numeric)  # NaN where NaN
    np.testing.assert_array_equal(encoded.categorical, expected.categorical)
    assert encoded.numeric.dtype == expected.numeric.dtype == np.float32
    assert encoded.categorical.dtype == expected.categorical.dtype == np.int64


def a_batch(**changes):
    arrays = {
        "n_int": pa.array([1, 2]),
        "n_float": pa.array([0.5, None]),
        "n_null": pa.array([1.0, None]),
        "c_text": pa.array(["a", "unseen"]),
        "c_int": pa.array([1, None]),
        "c_float": pa.array([0.5, 2.0]),
        "c_bool": pa.array([True, None]),
        "c_dict": pa.array(["p", "q"]),
    }
    arrays.update(changes)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    return pa.RecordBatch.from_arrays(list(arrays.values()), names=list(arrays))


def test_a_plain_batch_is_encoded(model):
    encoded = ArrowEncoder(encoding_of(model)).encode(a_batch())
    assert encoded is not None
    assert encoded.categorical[1, CATEGORICAL.index("c_text")] == 0  # unseen
    assert encoded.categorical[1, CATEGORICAL.index("c_int")] == 0  # missing


@pytest.mark.parametrize(
    "change",
    [
        {"n_float": None},  # a missing column: the pandas path names it
        {"n_float": pa.array(["0.5", "x"])},  # text in a numeric column
        {"n_float": pa.array([float("inf"), 1.0])},  # refused, with its rows, by pandas' path
        {"n_int": pa.array([True, False])},  # booleans: refused in a numeric column
        {"n_int": pa.array([1, 2]).cast(pa.decimal128(19, 0))},
        {"c_text": pa.array([[1], [2]])},  # nested: JSON text in pandas' path
        {"c_text": pa.array([pd.Timestamp("2024-01-01")] * 2)},
    ],
    ids=["missing", "text", "infinity", "bool", "decimal", "nested", "timestamp"],
)
def test_what_pandas_may_read_differently_is_declined(model, change):
    assert ArrowEncoder(encoding_of(model)).encode(a_batch(**change)) is None


def test_a_model_with_dates_is_declined():
    frame = pd.DataFrame(
        {"when": pd.date_range("2024-01-01", periods=60).astype(str), "x": np.arange(60.0)}
    )
    clf = tabnn.TabNNClassifier(epochs=1).fit(frame, np.arange(60) % 2)
    assert clf.schema_.dates == ["when"]
    batch = pa.RecordBatch.from_pandas(frame, preserve_index=False)
    assert ArrowEncoder(encoding_of(clf)).encode(batch) is None
