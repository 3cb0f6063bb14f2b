"""The pandas-free encoding of a few rows (``fast_encode``) gives exactly what the estimator's
own path gives, and declines what only that path may read or word."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tabnn import TabNNClassifier
from tabnn.errors import SchemaError
from tabnn.features.fast_encode import FAST_ROWS, checked_columns, checked_frame


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    n = 120
    X = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n).round(),
            "income": np.where(rng.random(n) < 0.1, np.nan, rng.exponential(1000, n)),
            "city": rng.choice(["Oslo", "Lima", "Pune", "3"], n),
            "grade": rng.integers(1, 4, n),  # few-valued integers: categorical
        }
    )
    y = (X.age > 40).astype(int)
    return TabNNClassifier(epochs=1, random_state=0, categorical=["grade"]).fit(X, y)


numbers = st.one_of(st.none(), st.integers(-(10**6), 10**6), st.floats(allow_infinity=False))
categories = st.one_of(
    st.none(),
    st.sampled_from(["Oslo", " Lima ", "Pune", "3", "3.0", "?", "", "NA", "Rome"]),
    st.integers(0, 5),
    st.floats(allow_infinity=False, allow_nan=True),
    st.booleans(),
)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 6).flatmap(lambda n: st.tuples(
    st.lists(numbers, min_size=n, max_size=n), st.lists(numbers, min_size=n, max_size=n),
    st.lists(categories, min_size=n, max_size=n), st.lists(categories, min_size=n, max_size=n),
)))  # fmt: skip
def test_same_arrays_as_the_pandas_path(model, columns):
    age, income, city, grade = columns
    table = {"age": age, "income": income, "city": city, "grade": grade, "extra": ["x"] * len(age)}
    checked = checked_columns(model, table)
    assert checked is not None
    fast = checked.inputs
    slow = model.encode(pd.DataFrame(table)[["age", "income", "city", "grade"]])
    np.testing.assert_array_equal(fast.numeric, slow.numeric)
    np.testing.assert_array_equal(fast.categorical, slow.categorical)
    proba = model.predict_proba(fast)
    np.testing.assert_array_equal(proba, model.predict_proba(slow))


@pytest.mark.parametrize(
    "change",
    [
        {"age": ["41"]},  # text in a numeric column: pandas' rules read it
        {"age": [math.inf]},  # refused by the schema, with the row named
        {"age": []},  # columns of different lengths
        {"age": [True]},  # a boolean is no number: refused by the schema
        {"age": [10**400]},  # beyond float64: an infinity, refused by the schema
        {"city": [{"a": 1}]},  # JSON's object or list: pandas' path reads its JSON text
        {"city": [[1, 2]]},
    ],
    ids=["text-in-numeric", "infinity", "ragged", "boolean", "huge-integer", "object", "list"],
)
def test_declines_what_only_the_pandas_path_reads(model, change):
    table = {"age": [40.0], "income": [None], "city": ["Oslo"], "grade": [2], **change}
    assert checked_columns(model, table) is None


@pytest.mark.parametrize(
    ("value", "phrase"),
    [(True, "not a number"), (np.False_, "not a number"), (10**400, "infinite"),
     (-(10**400), "infinite")],
    ids=["true", "numpy-false", "huge", "huge-negative"],
)  # fmt: skip
def test_booleans_and_huge_integers_are_refused_in_a_numeric_column(model, value, phrase):
    frame = pd.DataFrame({"age": pd.Series([value], dtype=object), "income": [1.0],
                          "city": ["Oslo"], "grade": [2]})  # fmt: skip
    with pytest.raises(SchemaError, match=phrase):
        checked_frame(model, frame)
    with pytest.raises(SchemaError, match=phrase):
        model.predict_proba(frame)


def test_declines_a_missing_column_and_many_rows(model):
    assert checked_columns(model, {"age": [1.0], "income": [1.0], "city": ["Oslo"]}) is None
    n = FAST_ROWS + 1
    many = {"age": [1.0] * n, "income": [1.0] * n, "city": ["Oslo"] * n, "grade": [1] * n}
    assert checked_columns(model, many) is None
