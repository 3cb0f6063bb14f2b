"""Greedy ensemble selection with replacement (Caruana et al. 2004) on out-of-fold rows."""

import numpy as np
import pytest

from tabnn.errors import UsageError
from tabnn.estimator.selection import accuracy, blend, log_loss, select_ensemble


def noisy(y, classes, noise, seed):
    """Probabilities that put 1 - noise on the true class, spread the rest at random."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(classes), size=len(y)) * noise
    p[np.arange(len(y)), y] += 1 - noise
    return p


def test_the_one_good_model_takes_all_the_weight():
    y = np.random.default_rng(0).integers(0, 3, 300)
    models = [noisy(y, 3, 0.95, 1), noisy(y, 3, 0.2, 2), noisy(y, 3, 0.9, 3)]
    weights = select_ensemble(models, y, "multiclass")
    assert weights.tolist() == [0.0, 1.0, 0.0]


def test_complementary_models_share_the_weight_and_the_blend_beats_each():
    """Model a is right on the first half only, model b on the second: together better."""
    y = np.random.default_rng(1).integers(0, 2, 400)
    a, b = noisy(y, 2, 0.3, 4), noisy(y, 2, 0.3, 5)
    a[200:] = noisy(y[200:], 2, 0.9, 6)
    b[:200] = noisy(y[:200], 2, 0.9, 7)
    weights = select_ensemble([a, b], y, "binary", steps=30)
    assert weights.sum() == pytest.approx(1.0)
    assert 0.3 < weights[0] < 0.7
    blended = log_loss(y, blend([a, b], weights), "binary")
    assert blended < min(log_loss(y, a, "binary"), log_loss(y, b, "binary"))


@pytest.mark.parametrize("metric", ["log_loss", "accuracy"])
def test_the_blend_never_scores_worse_than_the_best_single_model(metric):
    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, 250)
    models = [noisy(y, 4, noise, seed) for seed, noise in enumerate([0.7, 0.75, 0.8, 0.9])]
    weights = select_ensemble(models, y, "multiclass", metric=metric)
    ours = blend(models, weights)
    if metric == "log_loss":
        assert log_loss(y, ours, "multiclass") <= min(log_loss(y, m, "multiclass") for m in models)
    else:
        assert accuracy(y, ours, "multiclass") >= max(accuracy(y, m, "multiclass") for m in models)
    assert weights.sum() == pytest.approx(1.0) and (weights >= 0).all()


def test_multilabel_probabilities_are_scored_per_label():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, (200, 3))
    good = np.clip(y * 0.8 + 0.1 + rng.normal(0, 0.05, y.shape), 0, 1)
    bad = rng.uniform(size=y.shape)
    assert select_ensemble([bad, good], y, "multilabel").tolist() == [0.0, 1.0]


def test_equal_models_tie_to_the_first():
    y = np.array([0, 1, 1, 0])
    p = np.array([[0.6, 0.4], [0.3, 0.7], [0.4, 0.6], [0.8, 0.2]])
    assert select_ensemble([p, p.copy()], y, "binary").tolist() == [1.0, 0.0]


def test_bad_calls_are_named():
    y = np.array([0, 1])
    p = np.array([[0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(UsageError, match="metric must be one of"):
        select_ensemble([p], y, "binary", metric="auc")
    with pytest.raises(UsageError, match="steps >= 1"):
        select_ensemble([p], y, "binary", steps=0)
    with pytest.raises(UsageError, match="one shape"):
        select_ensemble([p, p[:1]], y, "binary")
