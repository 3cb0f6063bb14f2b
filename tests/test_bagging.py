"""bagging=k: one stack of k fold members, each stopped on its own held-out fold, and the
out-of-fold probabilities of every training row."""

import numpy as np
import pytest
from sklearn.datasets import make_classification

import tabnn
from tabnn import TabNNClassifier
from tabnn.errors import UsageError

FAST = {"hidden": [32], "epochs": 15, "lr": 0.01, "patience": 4}


def table(n=200, classes=2, seed=0):
    return make_classification(
        n_samples=n, n_features=6, n_informative=4, n_redundant=0, n_classes=classes,
        class_sep=1.2, random_state=seed,
    )  # fmt: skip


@pytest.mark.parametrize("classes", [2, 3])
def test_every_row_trains_and_is_scored_only_by_the_member_that_held_it_out(classes):
    X, y = table(classes=classes)
    clf = TabNNClassifier(bagging=4, **FAST).fit(X, y)
    assert clf.model_config_.n_members == 4
    folds = clf.bagging_rows(clf.schema_.encode_target(y), clf.schema_)
    held = np.sort(np.concatenate([val for _, val in folds]))
    assert np.array_equal(held, np.arange(len(y)))  # the folds cover every row once
    assert clf.oof_proba_.shape == (len(y), classes)
    members = clf.member_proba(X)  # (members, rows, outputs)
    for k, (train, val) in enumerate(folds):
        assert len(np.intersect1d(train, val)) == 0
        own = members[k, val]
        expected = np.column_stack([1 - own[:, 0], own[:, 0]]) if classes == 2 else own
        np.testing.assert_allclose(clf.oof_proba_[val], expected, rtol=1e-12, atol=1e-12)
    # the prediction is the mean of the fold members, which no single member equals
    np.testing.assert_allclose(clf.predict_proba(X)[:, -1], members[..., -1].mean(0), atol=1e-12)
    assert (clf.oof_proba_.argmax(1) == y).mean() > 0.7  # out of fold, still learned


def test_threshold_and_temperature_are_fitted_on_every_rows_out_of_fold_prediction():
    X, y = table(n=240)
    clf = TabNNClassifier(bagging=3, threshold="auto", calibrate=True, **FAST).fit(X, y)
    assert clf.threshold_tuning_["members"] == 3
    assert clf.threshold_tuning_["members_per_row"] == 1.0  # each row: its own fold member
    assert 0 < clf.threshold_ < 1
    assert clf.temperature_ is not None
    # the stored out-of-fold probabilities are the calibrated ones predict applies
    assert np.all(np.isfinite(clf.oof_proba_))
    np.testing.assert_allclose(clf.oof_proba_.sum(1), 1.0)


def test_seeds_per_fold_multiply_the_members():
    X, y = table()
    clf = TabNNClassifier(bagging=3, n_members=2, **FAST).fit(X, y)
    assert clf.model_config_.n_members == 6
    members = clf.member_proba(X)
    assert not np.allclose(members[0], members[1])  # the same fold, another seed


def test_a_bagged_model_saves_and_loads_whole(tmp_path):
    X, y = table()
    clf = TabNNClassifier(bagging=3, **FAST).fit(X, y)
    tabnn.save(clf, tmp_path / "model")
    loaded = tabnn.load(tmp_path / "model")
    assert loaded.get_params()["bagging"] == 3
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_bagging_with_an_eval_set_is_refused():
    X, y = table()
    with pytest.raises(UsageError, match="bagging=3 .*eval_set"):
        TabNNClassifier(bagging=3, **FAST).fit(X, y, eval_set=(X[:20], y[:20]))


@pytest.mark.parametrize("value", [1, 0, 2.5, "5"])
def test_bagging_needs_two_folds_or_more(value):
    X, y = table()
    with pytest.raises(UsageError, match="bagging"):
        TabNNClassifier(bagging=value, **FAST).fit(X, y)


def test_a_class_with_fewer_rows_than_folds_is_named():
    X, y = table(n=60)
    y = y.copy()
    y[:2] = 2  # a third class of two rows
    with pytest.raises(UsageError, match="fewer rows than folds|folds"):
        TabNNClassifier(bagging=5, **FAST).fit(X, y)


def test_compare_nests_the_bags_inside_each_outer_fold():
    """cross-validation of a bagged design: outer folds x bags in one stack; each outer
    fold is scored by the mean of its own bag, whose members never saw its rows."""
    import pandas as pd

    from tabnn.data.splits import stratified_folds
    from tabnn.evaluation.compare import cross_validate_designs
    from tabnn.evaluation.metrics import compute_metrics

    X, y = table(n=180)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    params = {**FAST, "bagging": 2}
    comparison, stacks = cross_validate_designs(frame, y, ["wide"], folds=3, params=params)
    stack = stacks["wide"]
    assert stack.model_config_.n_members == 6  # 3 outer folds x 2 bags
    outer = stratified_folds(y, "binary", n_splits=3, seed=0)
    proba = stack.member_proba(frame)[..., 0]
    for k, (_, held_out) in enumerate(outer):
        bag = proba[2 * k : 2 * k + 2, held_out].mean(0)
        expected = compute_metrics("binary", y[held_out], bag)[comparison.metric]
        assert comparison.scores["wide"][k][comparison.metric] == pytest.approx(expected)
