"""The nearest-neighbour member: torch's matrix product and topk, as scikit-learn's
brute-force neighbours compute them, and twins answered by their twins alone."""

import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from tabnn.nn.neighbours import NeighbourMember


def one_hot(y, classes):
    return torch.nn.functional.one_hot(torch.as_tensor(y), classes).double()


@pytest.mark.parametrize("k", [1, 5, 15])
def test_without_twins_or_smoothing_it_is_scikit_learns_k_nearest_neighbours(k):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 6)), rng.integers(0, 3, 300)
    queries = rng.normal(size=(80, 6))
    member = NeighbourMember(torch.as_tensor(x), one_hot(y, 3), k=k, smoothing=0.0)
    ours = member(torch.as_tensor(queries)).numpy()
    theirs = KNeighborsClassifier(k, algorithm="brute").fit(x, y).predict_proba(queries)
    np.testing.assert_allclose(ours, theirs, atol=1e-12)


def test_a_row_with_a_twin_takes_its_twins_label():
    """Nine neighbours say class 0; the one stored row equal to the query says 1."""
    rng = np.random.default_rng(1)
    query = np.zeros((1, 4))
    near = rng.normal(scale=0.01, size=(9, 4)) + 0.05
    x = np.vstack([near, query])
    y = np.array([0] * 9 + [1])
    member = NeighbourMember(torch.as_tensor(x), one_hot(y, 2), k=10, smoothing=0.0)
    assert member(torch.as_tensor(query)).numpy().tolist() == [[0.0, 1.0]]
    off = member(torch.as_tensor(query + 0.5)).numpy()  # no twin: the neighbours vote
    assert off[0, 0] == pytest.approx(0.9)


def test_smoothing_keeps_every_probability_inside_zero_and_one():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(50, 3)), np.array([0] * 45 + [1, 2, 2, 2, 2])
    member = NeighbourMember(torch.as_tensor(x), one_hot(y, 3), k=3, smoothing=1.0)
    proba = member(torch.as_tensor(x)).numpy()  # every row is its own twin
    assert (proba > 0).all() and (proba < 1).all()
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert (proba.argmax(1) == y).all()  # the twin still decides


def test_multilabel_targets_give_each_labels_share():
    x = torch.tensor([[0.0], [1.0], [2.0], [10.0]])
    labels = torch.tensor([[1, 0], [1, 1], [0, 1], [0, 0]]).double()
    member = NeighbourMember(x, labels, k=2, smoothing=0.0)
    np.testing.assert_allclose(member(torch.tensor([[0.4]])).numpy(), [[1.0, 0.5]])


def test_k_above_the_stored_rows_uses_them_all():
    x, y = torch.randn(4, 2), one_hot([0, 1, 1, 1], 2)
    member = NeighbourMember(x, y, k=50, smoothing=0.0)
    np.testing.assert_allclose(member(torch.randn(3, 2) * 100).numpy(), [[0.25, 0.75]] * 3)
