"""Piecewise-linear encodings of numeric columns (numeric_embedding="ple"): bins at each
member's own training quantiles, values encoded as how far they fill each bin."""

import numpy as np
import pytest
import torch

import tabnn
from tabnn import TabNNClassifier
from tabnn.nn.ensemble import PiecewiseLinearEmbedding

QUICK = {"epochs": 3, "random_state": 0}


def encoding(values, queries, bins=4):
    """The fill of each bin for ``queries`` of one column whose training values are
    ``values`` (the embedding's own, before its linear map)."""
    embedding = PiecewiseLinearEmbedding(1, 1, bins, 1)
    embedding.fit_bins(0, torch.tensor(values, dtype=torch.float64)[:, None])
    x = torch.tensor(queries, dtype=torch.float32)[None, :, None]
    fill = (x[..., None] - embedding.left[:, None]) / embedding.span[:, None]
    fill = torch.minimum(torch.maximum(fill, embedding.lower[:, None]), embedding.upper[:, None])
    return (fill * embedding.used[:, None])[0, :, 0].numpy()


def test_a_value_fills_the_bins_below_it_and_part_of_its_own():
    values = np.arange(9.0)  # quantile edges 0, 2, 4, 6, 8
    np.testing.assert_allclose(encoding(values, [3.0]), [[1.0, 0.5, 0.0, 0.0]])
    np.testing.assert_allclose(encoding(values, [8.0]), [[1.0, 1.0, 1.0, 1.0]])
    # the outer bins are open: below the first edge and above the last keep going
    np.testing.assert_allclose(encoding(values, [-2.0]), [[-1.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(encoding(values, [12.0]), [[1.0, 1.0, 1.0, 3.0]])


def used_bins(values, bins=8) -> int:
    embedding = PiecewiseLinearEmbedding(1, 1, bins, 1)
    embedding.fit_bins(0, torch.tensor(values, dtype=torch.float64)[:, None])
    return int(embedding.used.sum())


def test_a_column_of_few_values_gets_few_bins_and_a_constant_one_none():
    assert used_bins([0.0] * 5 + [1.0] * 5) == 2  # edges 0, 0.5 (the median), 1
    assert used_bins([0.0, 1.0, 2.0] * 10) == 2
    assert used_bins(np.arange(100.0)) == 8
    assert used_bins([7.0] * 10) == 0
    assert encoding([7.0] * 10, [100.0]).tolist() == [[0.0, 0.0, 0.0, 0.0]]


def table(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, (X[:, 0] > 0.3).astype(int)  # a sharp cut of one column


def test_each_member_cuts_its_own_training_rows():
    """Two fold members see different rows, so their bins differ; an estimator's ple
    network has 16 bins of 8 units per numeric column."""
    X, y = table()
    folds = [(np.arange(100), np.arange(100, 200)), (np.arange(100, 200), np.arange(100))]
    clf = TabNNClassifier(numeric_embedding="ple", **QUICK).fit_members(X, y, folds)
    embedding = clf.model_.numeric_embedding
    assert clf.model_config_.bins == 16 and clf.model_config_.embedding_width == 8
    assert embedding.weight.shape == (2, 3, 16, 8)
    assert not torch.equal(embedding.left[0], embedding.left[1])
    scaled = clf.model_.encoder.numeric(torch.as_tensor(X[:100], dtype=torch.float32)[None])
    first_edges = torch.quantile(scaled[0, :, 0].double(), torch.tensor([0.0, 1 / 16]).double())
    torch.testing.assert_close(embedding.left[0, 0, :2].double(), first_edges, rtol=1e-5, atol=1e-5)


def test_a_ple_model_saves_loads_and_predicts_the_same(tmp_path):
    X, y = table()
    clf = TabNNClassifier(numeric_embedding="ple", **QUICK).fit(X, y)
    tabnn.save(clf, tmp_path / "m")
    np.testing.assert_array_equal(tabnn.load(tmp_path / "m").predict_proba(X), clf.predict_proba(X))


def test_a_stream_refuses_ple_before_reading_anything():
    from tabnn.errors import UsageError
    from tabnn.scale.streaming import check_stream_options
    from tabnn.workflows.runs import ReadOptions

    options = ReadOptions(sep=None, header=None, target=["y"], label_sep=None)
    with pytest.raises(UsageError, match="numeric_embedding='ple' .* --stream"):
        check_stream_options(options, TabNNClassifier(numeric_embedding="ple"))
