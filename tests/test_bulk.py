"""Bulk probabilities (``tabnn.inference.bulk``): float64 ``predict_proba``'s own (to the last bit
or so: matrix products of other row blocks round a few rows differently) whatever the
number of workers, float32 within 1e-6 or back to float64, and the reading thread."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import tabnn
from tabnn.errors import TabnnWarning
from tabnn.features.preprocess import EncodedInputs
from tabnn.inference import bulk
from tabnn.inference.bulk import BulkPredictor, prefetched


def fitted(task: str):
    rng = np.random.default_rng(0)
    n = 3000
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
            "c": rng.choice(list("pqrstuvwxyz"), n),
        }
    )
    if task == "binary":
        y = np.where(X["a"] > 0, "yes", "no")
    elif task == "multiclass":
        y = np.digitize(X["a"], [-0.5, 0.5])
    else:
        y = np.column_stack([X["a"] > 0, X["c"].isin(list("pqr"))]).astype(int)
    return tabnn.TabNNClassifier(epochs=2, random_state=0).fit(X, y), X


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_float64_is_predict_proba_and_float32_within_1e_6(task):
    clf, X = fitted(task)
    inputs = clf.encode(X)
    expected = clf.predict_proba(X)
    threads = torch.get_num_threads()
    for workers in (1, 3):
        with BulkPredictor(clf, workers=workers) as predictor:
            assert torch.get_num_threads() == 1
            np.testing.assert_allclose(predictor.proba(inputs), expected, rtol=0, atol=1e-15)
        assert torch.get_num_threads() == threads  # restored
    with warnings.catch_warnings():
        warnings.simplefilter("error", TabnnWarning)  # no fallback to float64 here
        with BulkPredictor(clf, precision="float32", workers=2) as predictor:
            got = predictor.proba(inputs)
    assert got.dtype == np.float64 and got.shape == expected.shape
    difference = np.abs(got - expected).max()
    assert 0 < difference <= 1e-6  # float32 arithmetic, within the tolerance


def test_float32_beyond_the_tolerance_falls_back_to_float64(monkeypatch):
    clf, X = fitted("binary")
    monkeypatch.setattr(bulk, "FLOAT32_TOLERANCE", 0.0)
    warns = pytest.warns(TabnnWarning, match="predicting in float64")
    with warns, BulkPredictor(clf, precision="float32") as predictor:
        got = predictor.proba(clf.encode(X))
    np.testing.assert_allclose(got, clf.predict_proba(X), rtol=0, atol=1e-15)


def test_an_empty_chunk_and_a_bad_precision():
    clf, X = fitted("binary")
    with BulkPredictor(clf, workers=2) as predictor:
        inputs = clf.encode(X)
        empty = EncodedInputs(inputs.numeric[:0], inputs.categorical[:0])
        assert predictor.proba(empty).shape == (0, 2)
    with pytest.raises(tabnn.errors.UsageError, match="float64 or float32; got 'half'"):
        BulkPredictor(clf, precision="half")


def test_prefetched_keeps_order_raises_in_order_and_stops_its_thread():
    with prefetched(iter(range(100))) as items:
        assert list(items) == list(range(100))

    def failing():
        yield 1
        yield 2
        raise ValueError("third")

    seen = []
    with pytest.raises(ValueError, match="third"), prefetched(failing()) as items:
        for item in items:
            seen.append(item)
    assert seen == [1, 2]

    closed = threading.Event()

    def endless():
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    before = threading.active_count()
    with prefetched(endless()) as items:
        assert next(items) == 0
    assert closed.is_set()  # the source was closed, in the reading thread, before the exit
    assert threading.active_count() == before
