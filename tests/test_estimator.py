"""TabNNClassifier: scikit-learn's own estimator checks, then tabnn's contract on top."""

import pickle
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.exceptions import NotFittedError
from sklearn.metrics import recall_score
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import tabnn
from tabnn import TabNNClassifier
from tabnn.errors import DataError, SchemaError, UsageError

# small networks and few epochs keep every fit well under a second
FAST = {"hidden": [32], "epochs": 20, "lr": 0.01, "patience": 5}


# hidden=[64] and 20 epochs pass check_classifiers_train (accuracy > 0.83) and
# check_class_weight_classifiers with a margin; [32] is too slow a learner for the latter.
# The default design (an efficient ensemble) passes every check as it is.
@parametrize_with_checks([TabNNClassifier(hidden=[64], epochs=20, patience=5), TabNNClassifier()])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def blobs(n=150, seed=0):
    X, y = make_classification(
        n_samples=n, n_features=5, n_informative=3, n_redundant=0, class_sep=1.5, random_state=seed
    )
    return X, y


def mixed_frame(n=160, seed=0):
    """Strings, missing values and numbers; the label depends on colour and size."""
    rng = np.random.default_rng(seed)
    color = rng.choice(["red", "green", "blue"], n).astype(object)
    size = rng.normal(size=n)
    y = np.where((color == "red") | (size > 0.8), "yes", "no")
    color[rng.random(n) < 0.1] = None
    size[rng.random(n) < 0.1] = np.nan
    shop = rng.choice(["north", "south"], n)
    X = pd.DataFrame({"color": color, "size": size, "shop": shop, "count": rng.integers(0, 5, n)})
    return X, pd.Series(y, name="bought")


# ------------------------------------------------------------------ scikit-learn tools


def test_pipeline_cross_val_score():
    X, y = blobs()
    pipeline = make_pipeline(StandardScaler(), TabNNClassifier(**FAST))
    scores = cross_val_score(pipeline, X, y, cv=3)
    assert scores.shape == (3,)
    assert scores.mean() > 0.8


@pytest.mark.parametrize(
    ("param", "grid"),
    [("hidden", [[8], [16, 16]]), ("dropout", [0.0, 0.3])],
    ids=["hidden", "dropout"],
)
def test_grid_search(param, grid):
    X, y = blobs(n=120)
    pipeline = make_pipeline(StandardScaler(), TabNNClassifier(**{**FAST, "epochs": 10}))
    search = GridSearchCV(pipeline, {f"tabnnclassifier__{param}": grid}, cv=2).fit(X, y)
    best = search.best_params_[f"tabnnclassifier__{param}"]
    assert best in grid
    assert len(search.cv_results_["params"]) == 2
    assert getattr(search.best_estimator_[-1], param) == best
    assert search.predict(X).shape == (120,)


# ------------------------------------------------------------------ tables


def test_mixed_frame_with_unseen_category():
    X, y = mixed_frame()
    clf = TabNNClassifier(**{**FAST, "epochs": 40, "patience": 10}).fit(X, y)
    assert clf.schema_.categorical == ["color", "shop", "count"]
    assert clf.schema_.numeric == ["size"]
    assert list(clf.classes_) == ["no", "yes"]
    assert (clf.predict(X) == y).mean() > 0.8
    new = pd.DataFrame(
        {
            "color": ["purple", None, "red"],
            "size": [np.nan, np.nan, 2.0],
            "shop": ["east", "east", "north"],
            "count": [9, 9, 1],
        }
    )
    proba = clf.predict_proba(new)
    assert proba.shape == (3, 2)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-6)
    np.testing.assert_array_equal(proba[0], proba[1])  # unseen reads as missing
    predicted = clf.predict(new)
    assert set(predicted) <= {"no", "yes"}
    assert predicted[2] == "yes"


def test_array_rows_for_a_frame_fitted_model():
    X, y = mixed_frame()
    X = X[["size", "count"]]
    clf = TabNNClassifier(**FAST).fit(X, y)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        from_array = clf.predict_proba(X.to_numpy())
    np.testing.assert_array_equal(from_array, clf.predict_proba(X))


def test_number_columns_of_an_array_are_numeric():
    rng = np.random.default_rng(0)
    n = 60
    X = np.c_[rng.permutation(n), rng.integers(0, 3, n)]  # an ID-like and a few-valued column
    y = (X[:, 0] > n / 2).astype(int)
    assert TabNNClassifier(**FAST).fit(X, y).schema_.numeric == ["0", "1"]
    forced = TabNNClassifier(**FAST, categorical=[1]).fit(X, y).schema_
    assert (forced.numeric, forced.categorical) == (["0"], ["1"])


# ------------------------------------------------------------------ targets


@pytest.mark.parametrize("as_frame", [False, True], ids=["indicator-array", "dataframe"])
def test_multilabel(as_frame):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    Y = np.c_[X[:, 0] > 0, X[:, 1] > 0, X[:, 0] + X[:, 2] > 0].astype(int)
    y = pd.DataFrame(Y, columns=["jazz", "calm", "loud"]) if as_frame else Y
    clf = TabNNClassifier(**{**FAST, "epochs": 30}).fit(X, y)
    assert clf.task_ == "multilabel"
    np.testing.assert_array_equal(clf.classes_, np.arange(3))
    assert clf.schema_.classes == (["jazz", "calm", "loud"] if as_frame else ["0", "1", "2"])
    proba = clf.predict_proba(X)
    assert proba.shape == (200, 3)
    assert not np.allclose(proba.sum(1), 1)  # per-label probabilities, not a softmax
    predicted = clf.predict(X)
    assert set(np.unique(predicted)) <= {0, 1}
    assert (predicted == Y).mean() > 0.85


def test_missing_labels_are_dropped():
    X, y = blobs(n=60)
    y = y.astype(float)
    y[:3] = np.nan
    clf = TabNNClassifier(**FAST).fit(X, y)
    assert clf.n_dropped_targets_ == 3
    assert list(clf.classes_) == [0, 1]


@pytest.mark.parametrize(
    ("y", "error", "message"),
    [
        (None, UsageError, "requires y to be passed, but the target y is None"),
        (np.zeros(59), DataError, "inconsistent numbers of samples: X has 60 rows but y has 59"),
        (np.r_[np.zeros(59), np.inf], DataError, "y contains infinity"),
        (np.linspace(0, 1, 60), DataError, "Unknown label type: continuous"),
        (np.zeros((60, 2, 2)), DataError, "y should be a 1d array"),
        (np.tile([[0, 1, 2]], (60, 1)), DataError, "0/1 multi-label indicator matrix"),
    ],
    ids=["none", "length", "infinity", "continuous", "3-d", "multi-output"],
)
def test_bad_targets(y, error, message):
    X, _ = blobs(n=60)
    with pytest.raises(error, match=re.escape(message)):
        TabNNClassifier(**FAST).fit(X, y)


def test_failed_fit_leaves_the_model_unfitted():
    X, _ = blobs(n=60)
    clf = TabNNClassifier(**FAST)
    with pytest.raises(DataError, match="single class"):
        clf.fit(X, np.zeros(60))
    with pytest.raises(NotFittedError):
        clf.predict(X)


# ------------------------------------------------------------------ members and seeds


def test_members_are_averaged():
    X, y = blobs()
    single = TabNNClassifier(**FAST).fit(X, y).predict_proba(X)
    clf = TabNNClassifier(**FAST, n_members=3).fit(X, y)
    proba = clf.predict_proba(X)
    members = clf.member_proba(X)
    assert clf.model_.head.weight.shape[0] == 3
    assert members.shape == (3, 150, 1)
    assert not np.allclose(members[0], members[1])
    np.testing.assert_allclose(proba[:, 1], members.mean(0)[:, 0], rtol=1e-6)
    assert proba.shape == single.shape == (150, 2)
    assert not np.allclose(proba, single)


def test_random_state_reproduces_the_model():
    X, y = mixed_frame()

    def proba(seed):
        return TabNNClassifier(**FAST, random_state=seed).fit(X, y).predict_proba(X)

    np.testing.assert_array_equal(proba(1), proba(1))
    assert not np.allclose(proba(1), proba(2))


# ------------------------------------------------------------------ parameters


@pytest.mark.parametrize(
    ("param", "value", "constraint"),
    [
        ("lr", -1, "'auto' or a float in the range (0, inf)"),
        ("lr", "fast", "'auto' or a float in the range (0, inf)"),
        ("epochs", 0, "'auto' or an int in the range [1, inf)"),
        ("epochs", 2.0, "'auto' or an int in the range [1, inf)"),
        (
            "hidden",
            "huge",
            "one of ['default', 'wide', 'deep'] or a non-empty list of positive ints",
        ),
        (
            "hidden",
            [16, 0],
            "one of ['default', 'wide', 'deep'] or a non-empty list of positive ints",
        ),
        (
            "activation",
            ["relu"],
            "one of ['gelu', 'identity', 'leaky_relu', 'relu', 'selu', 'silu', 'tanh']",
        ),
        ("dropout", 1.0, "'auto' or a float in the range [0, 1)"),
        ("class_weight", {0: -1}, "None, 'balanced' or a dict {class: weight >= 0}"),
        ("pos_weight", 0, "None or a float in the range (0, inf)"),
        ("random_state", -1, "None or an int in the range [0, 4294967295]"),
        ("device", "tpu", "'auto', 'cpu', 'cuda' or 'cuda:<index>'"),
        ("categorical", 3, "None or a list of column names"),
    ],
    ids=[
        "lr",
        "lr-text",
        "epochs",
        "float-epochs",
        "preset",
        "layer-size",
        "unhashable",
        "dropout",
        "class-weight",
        "pos-weight",
        "random-state",
        "device",
        "columns",
    ],
)
def test_parameter_validation(param, value, constraint):
    X, y = blobs(n=60)
    clf = TabNNClassifier(**{param: value})
    message = f"The {param!r} parameter of TabNNClassifier must be {constraint}. Got {value!r}"
    with pytest.raises(UsageError, match=re.escape(message)) as raised:
        clf.fit(X, y)
    assert isinstance(raised.value, ValueError)
    with pytest.raises(NotFittedError):
        clf.predict(X)


def test_parameter_message_shape():
    with pytest.raises(ValueError) as raised:
        TabNNClassifier(lr=-1).fit(*blobs(n=60))
    assert str(raised.value) == (
        "The 'lr' parameter of TabNNClassifier must be 'auto' or a float in the range "
        "(0, inf). "
        "Got -1 instead."
    )


# ------------------------------------------------------------------ class weights


# a learner that, unweighted, settles on the majority class within its epochs
SLOW_LEARNER = {"hidden": [16], "epochs": 15, "validation_fraction": 0.0}


@pytest.fixture(scope="module")
def imbalanced():
    """An overlapping 9:1 problem where an unweighted network never predicts 'yes'."""
    X, y = make_classification(
        n_samples=400,
        n_features=4,
        n_informative=2,
        n_redundant=0,
        weights=[0.9, 0.1],
        class_sep=0.5,
        flip_y=0,
        random_state=0,
    )
    y = np.where(y == 1, "yes", "no")
    plain = TabNNClassifier(**SLOW_LEARNER).fit(X, y)
    return X, y, recall_score(y, plain.predict(X), pos_label="yes")


@pytest.mark.parametrize(
    "weighting",
    [{"class_weight": "balanced"}, {"class_weight": {"no": 1.0, "yes": 9.0}}, {"pos_weight": 9.0}],
    ids=["balanced", "dict", "pos-weight"],
)
def test_weights_raise_minority_recall(imbalanced, weighting):
    X, y, plain_recall = imbalanced
    clf = TabNNClassifier(**SLOW_LEARNER, **weighting).fit(X, y)
    assert recall_score(y, clf.predict(X), pos_label="yes") > plain_recall + 0.3


def test_class_weight_names_unknown_class():
    X, y = mixed_frame()
    with pytest.raises(UsageError, match=r"class_weight names unknown classes \['maybe'\]"):
        TabNNClassifier(**FAST, class_weight={"maybe": 2.0}).fit(X, y)


# ------------------------------------------------------------------ artifacts


def test_save_load_round_trip(tmp_path):
    X, y = mixed_frame()
    clf = TabNNClassifier(**FAST).fit(X, y)
    loaded = tabnn.load(tabnn.save(clf, tmp_path / "model"))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    np.testing.assert_array_equal(loaded.feature_names_in_, X.columns)
    assert loaded.get_params() == clf.get_params()


# ------------------------------------------------------------------ inference


def test_the_float64_network_is_made_once_per_fit_and_load(tmp_path):
    X, y = blobs()
    clf = TabNNClassifier(**FAST).fit(X, y)
    network = clf.inference_model_
    assert next(network.parameters()).dtype == torch.float64
    clf.predict_proba(X[:1])
    clf.predict_proba(X)
    assert clf.inference_model_ is network  # no copy per call
    for ours, theirs in zip(clf.model_.parameters(), network.parameters()):
        np.testing.assert_array_equal(ours.detach().double().numpy(), theirs.detach().numpy())
    loaded = tabnn.load(tabnn.save(clf, tmp_path / "model"))
    assert next(loaded.inference_model_.parameters()).dtype == torch.float64
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    refit = clf.fit(X[:100], y[:100])
    assert refit.inference_model_ is not network


def test_concurrent_predictions_on_one_model_are_those_of_one_caller():
    X, y = make_classification(n_samples=400, n_features=8, random_state=1)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(8)])
    frame["colour"] = np.where(y == 1, "red", "blue")
    clf = TabNNClassifier(**FAST, n_members=2).fit(frame, y)
    chunks = [frame.iloc[i : i + 7 + i % 13] for i in range(0, 400, 20)]
    expected = [clf.predict_proba(chunk) for chunk in chunks]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            got = list(pool.map(clf.predict_proba, chunks))
            for want, have in zip(expected, got):
                np.testing.assert_array_equal(have, want)


# ------------------------------------------------------------------ member-level API


def test_member_api_is_fit_in_steps():
    X, y = blobs()
    fitted = TabNNClassifier(**FAST).fit(X, y)
    clf = TabNNClassifier(**FAST)
    schema = clf.infer_schema(X, y)
    assert schema.to_dict() == fitted.schema_.to_dict()
    rows = clf.validation_rows(schema.encode_target(pd.Series(y)), schema.task)
    clf.fit_members(X, y, [rows], schema=schema)
    np.testing.assert_array_equal(clf.predict_proba(X), fitted.predict_proba(X))
    inputs = clf.encode(X)
    np.testing.assert_array_equal(clf.member_proba(inputs), clf.member_proba(X))
    assert clf.design_matrix(inputs, member=0).shape == (150, 5)


def test_fit_members_needs_every_label():
    X, y = blobs()
    labels = y.astype(float)
    labels[3] = np.nan
    with pytest.raises(DataError, match="needs a label for every row"):
        TabNNClassifier(**FAST).fit_members(X, labels, [(np.arange(100), np.arange(100, 150))])


def test_as_frames_and_infer_schema_leave_a_fitted_model_alone():
    X, y = blobs()
    frame = pd.DataFrame(X, columns=[f"c{j}" for j in range(5)])
    clf = TabNNClassifier(**FAST).fit(frame, y)
    before = clf.predict_proba(frame)
    clf.as_frames(X[:, :3], y)
    clf.infer_schema(X, y)
    assert list(clf.feature_names_in_) == list(frame.columns) and clf.n_features_in_ == 5
    np.testing.assert_array_equal(clf.predict_proba(frame), before)


def test_validation_rows_reads_the_task_from_unfitted_labels():
    codes = np.arange(60) % 3
    train, val = TabNNClassifier().validation_rows(codes)
    assert sorted(np.bincount(codes[val])) == [3, 3, 3]  # stratified over three classes
    assert len(np.intersect1d(train, val)) == 0


def test_pickles_leave_out_the_float64_copy_and_rebuild_it():
    X, y = blobs()
    clf = TabNNClassifier(**FAST).fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    assert "inference_model_" not in clf.__getstate__()
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))


# ------------------------------------------------------------------ odd inputs (issue 9)


def test_cells_holding_lists_or_dicts_are_text():
    X = pd.DataFrame({"x": np.arange(40.0) % 7, "f": [{"a": i % 3} for i in range(40)]})
    X["l"] = [[i % 2, "b"] for i in range(40)]
    clf = TabNNClassifier(**FAST).fit(X, np.arange(40) % 2)
    assert clf.schema_.categorical == ["f", "l"]
    rows = X.iloc[:3].copy()
    rows.at[0, "f"] = {"never": "seen"}
    assert np.isfinite(clf.predict_proba(rows)).all()


def test_repeated_column_names_are_a_data_error():
    X = pd.DataFrame([[1.0, 2.0]] * 20, columns=["x", "x"])
    with pytest.raises(DataError, match="Column names must be unique; 'x' appear"):
        TabNNClassifier(**FAST).fit(X, np.arange(20) % 2)


def test_columns_that_do_not_fit_are_a_schema_error():
    X, y = blobs()
    frame = pd.DataFrame(X, columns=[f"c{j}" for j in range(5)])
    clf = TabNNClassifier(**FAST).fit(frame, y)
    with pytest.raises(SchemaError, match="feature names should match"):
        clf.predict_proba(frame.rename(columns={"c0": "other"}))
    with pytest.raises(SchemaError, match="X has 3 features"):
        TabNNClassifier(**FAST).fit(X, y).predict_proba(X[:, :3])


def test_a_table_of_embedded_columns_only_trains():
    codes = np.random.default_rng(0).integers(0, 17, 60)  # 17 values: embedded, not one-hot
    X = pd.DataFrame({"c": codes})
    clf = TabNNClassifier(**FAST, categorical=["c"]).fit(X, codes % 2)
    assert clf.model_config_.embedding_dims and np.isfinite(clf.predict_proba(X)).all()
