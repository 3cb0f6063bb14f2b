"""preset="fast" / "best": what the parameters left at "auto" mean, explicit parameters
overriding a preset's choice, presets as --models names, and the default design's
patience rule (no budget of steps when there are validation rows to stop on)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification

import tabnn
from tabnn import TabNNClassifier
from tabnn.errors import UsageError
from tabnn.estimator import params
from tabnn.evaluation.compare import cross_validate_designs
from tabnn.nn.designs import design_params

QUICK = {"epochs": 4, "patience": 2}


def table(n=160, seed=0):
    X, y = make_classification(
        n_samples=n, n_features=5, n_informative=3, n_redundant=0, random_state=seed
    )
    return pd.DataFrame(X, columns=[f"x{i}" for i in range(5)]), y


def test_fast_is_one_network_without_encodings():
    clf = TabNNClassifier()
    assert clf.get_params()["preset"] == "fast"
    assert params.bagging_of(clf) is None
    assert params.recipe(clf).numeric_embedding == "none"


def test_best_bags_a_network_on_piecewise_linear_encodings():
    X, y = table()
    clf = TabNNClassifier(preset="best", **QUICK).fit(X, y)
    assert clf.model_config_.n_members == 5  # five fold members
    assert clf.model_config_.numeric_embedding == "ple"
    assert clf.oof_proba_.shape == (len(y), 2)


@pytest.mark.parametrize(
    "explicit, members, embedding",
    [({"bagging": None}, 1, "ple"), ({"numeric_embedding": "none"}, 5, "none"),
     ({"bagging": 3}, 3, "ple")],
)  # fmt: skip
def test_a_parameter_set_explicitly_overrides_the_presets_choice(explicit, members, embedding):
    clf = TabNNClassifier(preset="best", **QUICK, **explicit)
    assert (params.bagging_of(clf) or 1) == members
    assert params.recipe(clf).numeric_embedding == embedding


def test_a_plain_design_takes_the_bag_but_keeps_its_own_inputs():
    clf = TabNNClassifier(preset="best", hidden="wide")
    assert params.bagging_of(clf) == 5
    assert params.recipe(clf).numeric_embedding == "none"


@pytest.mark.parametrize("preset", ["slow", None, "BEST"])
def test_an_unknown_preset_is_named(preset):
    X, y = table()
    with pytest.raises(UsageError, match="'preset' parameter .*'fast', 'best'"):
        TabNNClassifier(preset=preset).fit(X, y)


def test_the_best_presets_bag_with_an_eval_set_says_how_to_leave_it_out():
    X, y = table()
    with pytest.raises(UsageError, match="preset='best'.*bagging=None"):
        TabNNClassifier(preset="best", **QUICK).fit(X, y, eval_set=(X[:20], y[:20]))
    TabNNClassifier(preset="best", bagging=None, **QUICK).fit(X, y, eval_set=(X[:20], y[:20]))


def test_a_best_model_saves_and_loads_with_its_preset(tmp_path):
    X, y = table()
    clf = TabNNClassifier(preset="best", **QUICK).fit(X, y)
    tabnn.save(clf, tmp_path / "model")
    loaded = tabnn.load(tmp_path / "model")
    assert loaded.get_params()["preset"] == "best"
    assert params.bagging_of(loaded) == 5
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_presets_are_designs_to_compare():
    assert design_params("best") == {"hidden": "default", "preset": "best"}
    with pytest.raises(UsageError, match="Or a preset: fast, best"):
        design_params("quick")
    X, y = table(n=150)
    comparison, stacks = cross_validate_designs(X, y, ["fast", "best"], folds=3, params=QUICK)
    assert stacks["fast"].model_config_.n_members == 3  # one member per fold
    assert stacks["best"].model_config_.n_members == 15  # 3 folds x a bag of 5
    assert stacks["best"].model_config_.numeric_embedding == "ple"
    assert set(comparison.ranking) == {"fast", "best"}


def test_the_default_design_stops_on_patience_not_on_a_budget():
    """With validation rows the default design trains at a constant rate until its
    validation loss stops improving; without them it keeps the budget of steps."""
    many_rows = 50_000
    stopped = params.train_config(TabNNClassifier(), many_rows, validated=True)
    assert (stopped.schedule, stopped.epochs) == ("constant", params.MAX_EPOCHS)
    budget = params.train_config(TabNNClassifier(), many_rows, validated=False)
    assert budget.schedule == "cosine" and budget.epochs == params.MIN_EPOCHS
    explicit = params.train_config(TabNNClassifier(epochs=7), many_rows, validated=True)
    assert (explicit.schedule, explicit.epochs) == ("cosine", 7)
    plain = params.train_config(TabNNClassifier(hidden="wide"), many_rows, validated=True)
    assert (plain.schedule, plain.epochs) == ("cosine", params.PLAIN_EPOCHS)


def test_a_fit_without_validation_rows_keeps_the_budget():
    X, y = table()
    stopped = TabNNClassifier(patience=3).fit(X, y)
    assert stopped.train_config_.schedule == "constant"
    assert len(stopped.history_.epochs) < params.MAX_EPOCHS  # patience ended it
    all_rows = TabNNClassifier(validation_fraction=0.0).fit(X, y)
    assert all_rows.train_config_.schedule == "cosine"
    n_train = len(y)
    batch = params.batch_for_rows(n_train, True)
    assert len(all_rows.history_.epochs) == params.epochs_for_rows(n_train, batch, True)
