"""Tests for tabnn.evaluation: splits, folds, metrics and baselines."""

import json
import math

import numpy as np
import pytest
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold, MultilabelStratifiedShuffleSplit
from scipy import stats
from sklearn import metrics as skm
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit

from tabnn.data.splits import class_counts, split_indices, stratified_folds
from tabnn.errors import DataError, UsageError
from tabnn.evaluation.baselines import baseline_scores
from tabnn.evaluation.metrics import compute_metrics
from tabnn.evaluation.stats import corrected_paired_t_test
from tabnn.tasks import HIGHER_IS_BETTER, PRIMARY_METRIC

# Undefined metrics must give None, never a warning: turn every warning into a failure.
pytestmark = pytest.mark.filterwarnings("error")


def _binary_y(n_neg=80, n_pos=20):
    return np.array([0.0] * n_neg + [1.0] * n_pos)


def _multilabel_y(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 4)) < [0.5, 0.3, 0.1, 0.05]).astype(int)
    y[:3, 3] = 1  # a rare label with a handful of positives
    return y


TARGETS = {
    "binary": _binary_y(),
    "multiclass": np.array([0] * 60 + [1] * 25 + [2] * 15),
    "multilabel": _multilabel_y(),
}


# ---------------------------------------------------------------------------- class_counts


@pytest.mark.parametrize(
    ("y", "task", "kwargs", "expected"),
    [
        ([0, 1, 1, 1], "binary", {}, {0: 1, 1: 3}),
        ([1.0, 1.0], "binary", {}, {0: 0, 1: 2}),
        ([2, 0, 2], "multiclass", {}, {0: 1, 2: 2}),
        ([2, 0, 2], "multiclass", {"n_classes": 4}, {0: 1, 1: 0, 2: 2, 3: 0}),
        ([[1, 0, 0], [1, 1, 0]], "multilabel", {}, {0: 2, 1: 1, 2: 0}),
    ],
    ids=["binary", "binary-one-class", "multiclass-present", "multiclass-all-k", "multilabel"],
)
def test_class_counts(y, task, kwargs, expected):
    counts = class_counts(y, task, **kwargs)
    assert counts == expected
    assert all(type(k) is int and type(v) is int for k, v in counts.items())


@pytest.mark.parametrize(
    ("y", "task", "error", "match"),
    [
        ([0, 1], "regression", UsageError, "task must be one of"),
        ([0, 2], "binary", DataError, "only 0 and 1"),
        ([0.5, 1.0], "binary", DataError, "whole-number"),
        ([0, 1], "multilabel", UsageError, "must be 2-D"),
        ([0, np.nan], "binary", DataError, "missing or infinite"),
        (["a", "b"], "multiclass", DataError, "numeric encoded labels"),
    ],
    ids=["unknown-task", "binary-not-01", "fractional", "multilabel-1d", "nan", "strings"],
)
def test_class_counts_rejects_bad_targets(y, task, error, match):
    with pytest.raises(error, match=match):
        class_counts(y, task)


# ---------------------------------------------------------------------------- split_indices


@pytest.mark.parametrize("task", list(TARGETS), ids=list(TARGETS))
def test_split_indices_partitions_all_rows(task):
    y = TARGETS[task]
    train, val, test = split_indices(y, task, seed=3)
    together = np.concatenate([train, val, test])
    assert np.array_equal(np.sort(together), np.arange(len(y)))
    for part in (train, val, test):
        assert part.dtype.kind == "i"
        assert np.array_equal(part, np.sort(part))
        assert len(part) > 0


def test_split_indices_sizes_are_fractions_of_all_rows():
    train, val, test = split_indices(_binary_y(), "binary", val_size=0.15, test_size=0.15)
    assert (len(train), len(val), len(test)) == (70, 15, 15)


def test_split_indices_ignores_float_noise_in_sizes():
    # 0.1 * 30 is 3.0000000000000004 in floating point: that must still be 3 rows, not 4.
    _, val, test = split_indices(np.arange(30) % 2, "binary", val_size=0.1, test_size=0.1)
    assert (len(val), len(test)) == (3, 3)


def test_split_indices_test_part_matches_sklearn_stratified_shuffle_split():
    y = _binary_y()
    _, _, test = split_indices(y, "binary", seed=7)
    sss = StratifiedShuffleSplit(n_splits=1, test_size=15, random_state=7)
    _, expected = next(sss.split(np.zeros(len(y)), y))
    assert np.array_equal(test, np.sort(expected))


@pytest.mark.parametrize(
    ("task", "y", "per_split"),
    [
        ("binary", _binary_y(80, 20), {"train": [56, 14], "val": [12, 3], "test": [12, 3]}),
        (
            "multiclass",
            np.array([0] * 60 + [1] * 20 + [2] * 20),
            {"train": [42, 14, 14], "val": [9, 3, 3], "test": [9, 3, 3]},
        ),
    ],
    ids=["binary", "multiclass"],
)
def test_split_indices_keeps_class_proportions(task, y, per_split):
    parts = dict(zip(["train", "val", "test"], split_indices(y, task, seed=1), strict=True))
    for name, idx in parts.items():
        assert list(np.bincount(y[idx].astype(int))) == per_split[name], name


def test_split_indices_multilabel_matches_iterstrat():
    y = _multilabel_y()
    _, _, test = split_indices(y, "multilabel", seed=5)
    msss = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=30, random_state=5)
    _, expected = next(msss.split(np.zeros(len(y)), y))
    assert np.array_equal(test, np.sort(expected))


def test_split_indices_multilabel_balances_labels():
    y = np.zeros((100, 2), dtype=int)
    y[:40, 0] = 1
    y[30:50, 1] = 1
    _, _, test = split_indices(y, "multilabel", val_size=0.2, test_size=0.2, seed=0)
    assert abs(len(test) - 20) <= 2
    assert abs(y[test, 0].sum() - 8) <= 1
    assert abs(y[test, 1].sum() - 4) <= 1


@pytest.mark.parametrize("task", list(TARGETS), ids=list(TARGETS))
def test_split_indices_is_reproducible(task):
    y = TARGETS[task]
    first, again = split_indices(y, task, seed=11), split_indices(y, task, seed=11)
    other = split_indices(y, task, seed=12)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[2], other[2])


@pytest.mark.parametrize(
    ("val_size", "test_size", "sizes"),
    [(0, 0.2, (80, 0, 20)), (0.2, 0, (80, 20, 0)), (0, 0, (100, 0, 0))],
    ids=["no-val", "no-test", "neither"],
)
def test_split_indices_zero_size_gives_empty_split(val_size, test_size, sizes):
    parts = split_indices(_binary_y(), "binary", val_size=val_size, test_size=test_size)
    assert tuple(len(p) for p in parts) == sizes


@pytest.mark.parametrize(
    ("val_size", "test_size", "match"),
    [
        (0.6, 0.5, r"val_size \+ test_size must be below 1, got 0.6 \+ 0.5"),
        (0.5, 0.5, r"val_size \+ test_size must be below 1, got 0.5 \+ 0.5"),
        (-0.1, 0.2, r"The 'val_size' parameter of split_indices must be a float in the range"),
        (0.1, 1.0, r"The 'test_size' parameter .* Got 1.0 instead"),
        (0.1, "0.2", r"The 'test_size' parameter .* Got '0.2' instead"),
    ],
    ids=["sum-above-1", "sum-equal-1", "negative", "test-is-1", "string"],
)
def test_split_indices_rejects_bad_sizes(val_size, test_size, match):
    with pytest.raises(UsageError, match=match) as info:
        split_indices(_binary_y(), "binary", val_size=val_size, test_size=test_size)
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("n_rows", "kwargs", "match"),
    [
        (2, {}, "cannot split 2 rows .* at least 3 rows are needed"),
        (1, {}, "cannot split 1 row into"),
        (0, {"val_size": 0, "test_size": 0}, "cannot split 0 rows .* at least 1 rows"),
        (4, {"val_size": 0.4, "test_size": 0.4}, "cannot split 4 rows .* at least 5 rows"),
    ],
    ids=["two-rows", "one-row", "empty", "large-fractions"],
)
def test_split_indices_too_few_rows_is_a_data_error(n_rows, kwargs, match):
    with pytest.raises(DataError, match=match):
        split_indices(np.arange(n_rows) % 2, "binary", **kwargs)


def test_split_indices_large_fractions_minimum_is_exact():
    # The message above promised 5 rows: 5 must split and leave one training row.
    train, val, test = split_indices(np.arange(5) % 2, "binary", val_size=0.4, test_size=0.4)
    assert (len(train), len(val), len(test)) == (1, 2, 2)


@pytest.mark.parametrize(
    ("task", "y"),
    [
        ("binary", [0, 0, 1]),
        ("binary", [1, 1, 1, 1, 1]),
        ("multiclass", [0, 1, 2]),
        ("multiclass", [0] * 20 + [1] + [2] * 2),
        ("multiclass", list(range(7))),
        ("multilabel", [[1, 0], [0, 1], [0, 0]]),
        ("multilabel", [[0, 0]] * 8),
        ("multilabel", [[1]] * 3 + [[0]] * 9),
    ],
    ids=[
        "binary-3-rows",
        "binary-one-class",
        "multiclass-3-rows",
        "multiclass-singleton-class",
        "multiclass-all-singletons",
        "multilabel-3-rows",
        "multilabel-no-positives",
        "multilabel-one-label",
    ],
)
def test_split_indices_never_crashes_on_tiny_data(task, y):
    y = np.asarray(y)
    train, val, test = split_indices(y, task, seed=0)
    assert len(train) >= 1 and len(val) >= 1 and len(test) >= 1
    assert np.array_equal(np.sort(np.concatenate([train, val, test])), np.arange(len(y)))


def test_split_indices_singleton_class_keeps_the_rest_stratified():
    # One row of class 1 cannot be stratified: it is kept for training, and classes 0 and 2
    # are stratified on the other rows exactly as scikit-learn would.
    y = np.array([0] * 60 + [1] + [2] * 40)
    train, _, test = split_indices(y, "multiclass", val_size=0.2, test_size=0.2, seed=0)
    assert 60 in train
    pool = np.flatnonzero(y != 1)
    sss = StratifiedShuffleSplit(n_splits=1, test_size=21, random_state=0)
    _, expected = next(sss.split(np.zeros(len(pool)), y[pool]))
    assert np.array_equal(test, np.sort(pool[expected]))


# ---------------------------------------------------------------------------- stratified_folds


@pytest.mark.parametrize("task", list(TARGETS), ids=list(TARGETS))
def test_stratified_folds_cover_every_row_once_per_repeat(task):
    y = TARGETS[task]
    folds = stratified_folds(y, task, n_splits=4, repeats=2, seed=0)
    assert len(folds) == 8
    for r in range(2):
        vals = np.concatenate([val for _, val in folds[4 * r : 4 * r + 4]])
        assert np.array_equal(np.sort(vals), np.arange(len(y)))
    for train, val in folds:
        assert np.intersect1d(train, val).size == 0
        assert len(train) + len(val) == len(y)


def test_stratified_folds_match_sklearn_with_seed_plus_repeat():
    y = TARGETS["multiclass"]
    folds = stratified_folds(y, "multiclass", n_splits=5, repeats=2, seed=10)
    expected = [
        pair
        for seed in (10, 11)
        for pair in StratifiedKFold(5, shuffle=True, random_state=seed).split(y, y)
    ]
    for (train, val), (e_train, e_val) in zip(folds, expected, strict=True):
        assert np.array_equal(train, e_train) and np.array_equal(val, e_val)


def test_stratified_folds_multilabel_match_iterstrat():
    y = TARGETS["multilabel"]
    folds = stratified_folds(y, "multilabel", n_splits=3, seed=4)
    splitter = MultilabelStratifiedKFold(n_splits=3, shuffle=True, random_state=4)
    for (_, val), (_, e_val) in zip(folds, splitter.split(y, y), strict=True):
        assert np.array_equal(val, np.sort(e_val))


def test_stratified_folds_are_balanced_and_reproducible():
    y = _binary_y(50, 50)
    folds = stratified_folds(y, "binary", n_splits=5, seed=2)
    assert all(list(np.bincount(y[val].astype(int))) == [10, 10] for _, val in folds)
    again = stratified_folds(y, "binary", n_splits=5, seed=2)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again, strict=True))
    repeated = stratified_folds(y, "binary", n_splits=5, repeats=2, seed=2)
    assert not np.array_equal(repeated[0][1], repeated[5][1])


@pytest.mark.parametrize(
    ("y", "task", "kwargs", "match"),
    [
        (
            [0] * 3 + [1] * 40,
            "binary",
            {},
            r"^5 folds need at least 5 rows of every class; too few: 0 \(3 rows\)\. ",
        ),
        ([0] * 10, "binary", {}, r"too few: 1 \(0 rows\)\."),
        ([0] * 9 + [2] * 2, "multiclass", {"n_splits": 3}, r"too few: 2 \(2 rows\)\."),
        ([[0, 1]] * 4, "multilabel", {}, "5 folds need at least 5 rows; got 4"),
        ([0, 1] * 10, "binary", {"n_splits": 1}, "'n_splits' parameter .* Got 1 instead"),
        ([0, 1] * 10, "binary", {"repeats": 0}, "'repeats' parameter .* Got 0 instead"),
    ],
    ids=["rare-class", "binary-one-class", "multiclass", "multilabel-rows", "one-fold", "repeats"],
)
def test_stratified_folds_rejects_impossible_requests(y, task, kwargs, match):
    with pytest.raises(UsageError, match=match):
        stratified_folds(np.asarray(y), task, **kwargs)


def test_short_classes_are_named_and_the_message_stays_short():
    y = np.repeat(np.arange(1000), 3)
    names = [f"class-{i}" for i in range(1000)]
    with pytest.raises(UsageError) as error:
        stratified_folds(y, "multiclass", n_splits=5, class_names=names)
    message = str(error.value)
    assert "too few: 'class-0' (3 rows), 'class-1' (3 rows)" in message
    assert "and 990 more" in message and len(message) < 400


@pytest.mark.parametrize("seed", range(8))
def test_a_tiny_table_of_rare_classes_trains_on_every_class(seed):
    y = np.array([0, 1, 1, 2, 2])  # every class rare: each keeps a training row
    train, val, test = split_indices(y, "multiclass", seed=seed)
    assert set(y[train]) == {0, 1, 2} and len(val) == len(test) == 1


@pytest.mark.parametrize("seed", range(8))
def test_a_class_of_one_or_two_rows_always_trains(seed):
    y = np.array([0] * 40 + [1] * 40 + [2] + [3] * 2)
    train, val, test = split_indices(y, "multiclass", val_size=0.15, test_size=0.15, seed=seed)
    assert set(y[train]) == {0, 1, 2, 3}
    assert np.array_equal(np.sort(np.concatenate([train, val, test])), np.arange(len(y)))


def test_stratified_folds_multilabel_allows_a_rare_label():
    y = np.zeros((20, 2), dtype=int)
    y[:10, 0] = 1
    y[0, 1] = 1  # one positive: it can only be in one fold
    folds = stratified_folds(y, "multilabel", n_splits=5)
    assert sum(y[val, 1].sum() for _, val in folds) == 1


# ---------------------------------------------------------------------------- compute_metrics


def test_binary_metrics_hand_computed():
    m = compute_metrics("binary", [0, 0, 1, 1], [0.1, 0.6, 0.7, 0.9])
    assert m["confusion_matrix"] == [[1, 1], [0, 2]]
    assert m["accuracy"] == 0.75
    assert m["balanced_accuracy"] == 0.75
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == 1.0
    assert m["f1"] == pytest.approx(0.8)
    assert m["mcc"] == pytest.approx(2 / math.sqrt(12))
    assert m["roc_auc"] == 1.0
    assert m["pr_auc"] == 1.0
    assert m["brier"] == pytest.approx((0.01 + 0.36 + 0.09 + 0.01) / 4)
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.4, 0.7, 0.9])))
    assert m["threshold"] == 0.5


def test_binary_metrics_reproduce_the_textbook_confusion_matrix():
    # W5: confusion matrix [[71 1] [2 40]] -> precision 0.976, recall 0.952, F1 0.964, MCC 0.943.
    y = np.array([0] * 72 + [1] * 42)
    pred = np.array([0] * 71 + [1] + [0] * 2 + [1] * 40)
    m = compute_metrics("binary", y, np.where(pred == 1, 0.9, 0.1))
    assert m["confusion_matrix"] == [[71, 1], [2, 40]]
    got = [round(m[k], 3) for k in ("precision", "recall", "f1", "mcc")]
    assert got == [0.976, 0.952, 0.964, 0.943]


@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.8], ids=["t0.5", "t0.3", "t0.8"])
def test_binary_metrics_agree_with_sklearn(threshold):
    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.3).astype(float)
    p = np.clip(0.3 * y + 0.7 * rng.random(300), 0, 1)
    pred = (p >= threshold).astype(int)
    m = compute_metrics("binary", y, p, threshold=threshold)
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred),
        "recall": skm.recall_score(y, pred),
        "f1": skm.f1_score(y, pred),
        "mcc": skm.matthews_corrcoef(y, pred),
        "roc_auc": skm.roc_auc_score(y, p),
        "pr_auc": skm.average_precision_score(y, p),
        "log_loss": skm.log_loss(y, p),
        "brier": skm.brier_score_loss(y, p),
    }
    for name, value in expected.items():
        assert m[name] == pytest.approx(value), name
    assert m["confusion_matrix"] == skm.confusion_matrix(y, pred).tolist()


def test_binary_metrics_with_one_class_are_none_not_warnings():
    m = compute_metrics("binary", [0, 0, 0], [0.2, 0.7, 0.0])
    assert m["roc_auc"] is None and m["pr_auc"] is None
    assert m["confusion_matrix"] == [[2, 1], [0, 0]]
    assert (m["precision"], m["recall"], m["f1"], m["mcc"]) == (0.0, 0.0, 0.0, 0.0)
    assert m["balanced_accuracy"] == pytest.approx(2 / 3)
    # p = 0 on a true 0 and clipping keeps the loss finite
    assert math.isfinite(m["log_loss"])


def test_binary_metrics_clip_confident_mistakes():
    m = compute_metrics("binary", [1, 0], [0.0, 1.0])
    assert m["log_loss"] == pytest.approx(-math.log(1e-15), rel=1e-6)


def test_binary_metrics_accept_sklearn_two_column_proba():
    p = np.array([0.1, 0.6, 0.7, 0.9])
    two = compute_metrics("binary", [0, 0, 1, 1], np.column_stack([1 - p, p]))
    assert two == compute_metrics("binary", [0, 0, 1, 1], p)


def _multiclass_case(seed=0, n=200, k=4):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba


def test_multiclass_metrics_agree_with_sklearn():
    y, proba = _multiclass_case()
    pred = proba.argmax(axis=1)
    m = compute_metrics("multiclass", y, proba)
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "f1_macro": skm.f1_score(y, pred, average="macro"),
        "f1_weighted": skm.f1_score(y, pred, average="weighted"),
        "mcc": skm.matthews_corrcoef(y, pred),
        "roc_auc_ovr_macro": skm.roc_auc_score(y, proba, multi_class="ovr"),
        "log_loss": skm.log_loss(y, proba),
    }
    for name, value in expected.items():
        assert m[name] == pytest.approx(value), name
    assert m["confusion_matrix"] == skm.confusion_matrix(y, pred).tolist()


def test_multiclass_metrics_with_an_absent_class():
    y = np.array([0, 0, 2, 2])
    proba = np.array([[0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [0.2, 0.1, 0.7], [0.5, 0.1, 0.4]])
    m = compute_metrics("multiclass", y, proba)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 0, 0], [1, 0, 1]]
    # AUC over the classes present: class 0 scores (.7,.3 | .2,.5) -> 0.75; class 2 -> 1.0.
    assert m["roc_auc_ovr_macro"] == pytest.approx((0.75 + 1.0) / 2)
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.7, 0.3, 0.7, 0.4])))
    assert m["balanced_accuracy"] == 0.5


def test_multiclass_metrics_with_one_class_present():
    m = compute_metrics("multiclass", [1, 1], [[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]])
    assert m["roc_auc_ovr_macro"] is None
    assert m["accuracy"] == 0.5


def test_multilabel_metrics_agree_with_sklearn():
    rng = np.random.default_rng(1)
    y = (rng.random((100, 3)) < 0.4).astype(int)
    y[:, 2] = 0  # a label with no positives: its AUC is undefined
    proba = np.clip(0.4 * y + 0.6 * rng.random((100, 3)), 0, 1)
    pred = (proba >= 0.5).astype(int)
    m = compute_metrics("multilabel", y, proba)
    assert m["hamming_loss"] == pytest.approx(skm.hamming_loss(y, pred))
    assert m["subset_accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["f1_micro"] == pytest.approx(skm.f1_score(y, pred, average="micro"))
    expected_macro = skm.f1_score(y, pred, average="macro", zero_division=0)
    assert m["f1_macro"] == pytest.approx(expected_macro)
    per_label = [skm.roc_auc_score(y[:, j], proba[:, j]) for j in range(2)]
    assert m["roc_auc_per_label"][:2] == pytest.approx(per_label)
    assert m["roc_auc_per_label"][2] is None
    assert m["roc_auc_macro"] == pytest.approx(np.mean(per_label))


def test_multilabel_metrics_without_any_defined_auc():
    m = compute_metrics("multilabel", [[1, 0], [1, 0]], [[0.9, 0.2], [0.4, 0.1]])
    assert m["roc_auc_per_label"] == [None, None]
    assert m["roc_auc_macro"] is None
    assert m["hamming_loss"] == 0.25


@pytest.mark.parametrize(
    ("task", "y", "proba"),
    [
        ("binary", [0, 1, 1, 0], [0.2, 0.8, 0.4, 0.6]),
        ("multiclass", [0, 2, 1], np.eye(3)[[0, 1, 1]] * 0.8 + 0.2 / 3),
        ("multilabel", [[1, 0], [0, 1]], [[0.8, 0.3], [0.4, 0.6]]),
    ],
    ids=["binary", "multiclass", "multilabel"],
)
def test_metrics_are_json_plain_and_listed(task, y, proba):
    m = compute_metrics(task, np.asarray(y), np.asarray(proba), class_names=None)
    json.dumps(m)
    scalars = {k for k, v in m.items() if not isinstance(v, list) and k != "threshold"}
    assert scalars <= set(HIGHER_IS_BETTER)
    assert PRIMARY_METRIC[task] in m
    for value in m.values():
        assert value is None or type(value) in (float, list)


def test_higher_is_better_marks_the_losses():
    losses = {k for k, higher in HIGHER_IS_BETTER.items() if not higher}
    assert losses == {"log_loss", "brier", "hamming_loss"}


def test_compute_metrics_keeps_class_names():
    m = compute_metrics("binary", [0, 1], [0.2, 0.9], class_names=["R", "M"])
    assert m["class_names"] == ["R", "M"]


@pytest.mark.parametrize(
    ("task", "y", "proba", "kwargs", "error", "match"),
    [
        ("binary", [0, 1], [0.2, 0.9, 0.5], {}, UsageError, r"must have shape \(n,\)"),
        ("multiclass", [0, 1], [0.2, 0.9], {}, UsageError, r"shape \(n, K\)"),
        ("multiclass", [0, 3], [[0.5, 0.5], [0.5, 0.5]], {}, DataError, "class index 3"),
        ("multilabel", [[0, 1]], [[0.2, 0.9, 0.1]], {}, UsageError, "2 labels but proba has 3"),
        ("binary", [0, 1], [0.2, np.nan], {}, DataError, "proba contains missing"),
        ("binary", [], [], {}, DataError, "0 rows"),
        ("binary", [0, 1], [0.2, 0.9], {"threshold": 1.5}, UsageError, "threshold must be"),
        ("binary", [0, 1], [0.2, 0.9], {"class_names": ["a"]}, UsageError, "1 names but there"),
    ],
    ids=[
        "length",
        "multiclass-1d",
        "class-out-of-range",
        "label-count",
        "nan",
        "empty",
        "threshold",
        "class-names",
    ],
)
def test_compute_metrics_rejects_bad_input(task, y, proba, kwargs, error, match):
    with pytest.raises(error, match=match):
        compute_metrics(task, np.asarray(y), np.asarray(proba), **kwargs)


# ---------------------------------------------------------------------------- baseline_scores


def _design(n, seed, n_features=3):
    return np.random.default_rng(seed).normal(size=(n, n_features))


def test_binary_baselines_match_dummy_and_logistic_regression():
    X_tr, X_ev = _design(60, 0), _design(40, 1)
    y_tr = (X_tr[:, 0] + 0.5 > 0).astype(float)
    y_ev = (X_ev[:, 0] + 0.5 > 0).astype(float)
    scores = baseline_scores("binary", X_tr, y_tr, X_ev, y_ev, threshold=0.4)
    dummy = DummyClassifier(strategy="prior").fit(X_tr, y_tr)
    assert scores["most_frequent"] == compute_metrics(
        "binary", y_ev, dummy.predict_proba(X_ev)[:, 1]
    )
    assert scores["most_frequent"]["accuracy"] == skm.accuracy_score(y_ev, dummy.predict(X_ev))
    lr = LogisticRegression(max_iter=1000).fit(X_tr, y_tr)
    expected = compute_metrics("binary", y_ev, lr.predict_proba(X_ev)[:, 1], threshold=0.4)
    assert scores["logistic_regression"] == expected
    assert set(scores) == {"most_frequent", "logistic_regression"}


def test_most_frequent_ignores_the_tuned_threshold():
    # Prior 0.3: with threshold 0.2 a thresholded prior would predict the minority class.
    X = _design(10, 0)
    y = np.array([1.0] * 3 + [0.0] * 7)
    scores = baseline_scores("binary", X, y, X, y, threshold=0.2)
    assert scores["most_frequent"]["accuracy"] == 0.7


def test_multiclass_baselines_keep_k_columns_when_training_misses_a_class():
    X_tr, X_ev = _design(30, 0), _design(12, 1)
    y_tr = np.array([0, 2] * 15)
    y_ev = np.array([0, 1, 2] * 4)
    scores = baseline_scores("multiclass", X_tr, y_tr, X_ev, y_ev, n_classes=4)
    assert np.array(scores["most_frequent"]["confusion_matrix"]).shape == (4, 4)
    # The prior puts 1/2 on classes 0 and 2, nothing on 1 (clipped) and 3.
    expected_loss = (8 * -math.log(0.5) + 4 * -math.log(1e-15 / (1 + 2e-15))) / 12
    assert scores["most_frequent"]["log_loss"] == pytest.approx(expected_loss, rel=1e-6)
    lr = LogisticRegression(max_iter=1000).fit(X_tr, y_tr)
    proba = np.zeros((12, 4))
    proba[:, [0, 2]] = lr.predict_proba(X_ev)
    expected = compute_metrics("multiclass", y_ev, proba)
    assert scores["logistic_regression"] == expected


def test_multiclass_baselines_infer_k_from_both_targets():
    X = _design(9, 0)
    scores = baseline_scores("multiclass", X, [0, 1] * 4 + [0], X[:3], [0, 1, 2])
    assert len(scores["logistic_regression"]["confusion_matrix"]) == 3


def test_multilabel_baselines_handle_a_constant_label():
    X_tr, X_ev = _design(40, 0), _design(20, 1)
    y_tr = np.column_stack([(X_tr[:, 0] > 0), np.zeros(40), np.ones(40)]).astype(int)
    y_ev = np.column_stack([(X_ev[:, 0] > 0), np.zeros(20), np.ones(20)]).astype(int)
    scores = baseline_scores("multilabel", X_tr, y_tr, X_ev, y_ev)
    assert set(scores) == {"most_frequent", "logistic_regression", "label_frequency"}
    lr = LogisticRegression(max_iter=1000).fit(X_tr, y_tr[:, 0])
    proba = np.column_stack([lr.predict_proba(X_ev)[:, 1], np.zeros(20), np.ones(20)])
    assert scores["logistic_regression"] == compute_metrics("multilabel", y_ev, proba)


def test_label_frequency_baseline_has_the_expected_micro_f1():
    # Drawing label j with probability q_j on rows with the same frequencies gives, in
    # expectation, precision = recall = sum(q^2) / sum(q).
    q = np.array([0.5, 0.2, 0.1])
    y_tr = (np.arange(100)[:, None] < q * 100).astype(int)
    y_ev = (np.arange(20000)[:, None] % 100 < q * 100).astype(int)
    X_tr, X_ev = _design(100, 0, 1), np.zeros((20000, 1))
    scores = baseline_scores("multilabel", X_tr, y_tr, X_ev, y_ev, seed=3)
    assert scores["label_frequency"]["f1_micro"] == pytest.approx((q**2).sum() / q.sum(), abs=0.01)
    again = baseline_scores("multilabel", X_tr, y_tr, X_ev, y_ev, seed=3)
    assert again["label_frequency"] == scores["label_frequency"]


@pytest.mark.parametrize(
    ("X_train", "X_eval", "error", "match"),
    [
        ([[0.0], [np.nan]], [[1.0]], DataError, "X_train contains missing"),
        ([[0.0], [1.0]], [[1.0, 2.0]], UsageError, "X_train has 1 columns but X_eval has 2"),
        ([[0.0], [1.0], [2.0]], [[1.0]], UsageError, r"X_train must have shape \(2,"),
        ([["a"], ["b"]], [[1.0]], DataError, "must be a numeric matrix"),
    ],
    ids=["nan", "columns", "rows", "strings"],
)
def test_baseline_scores_rejects_bad_design_matrices(X_train, X_eval, error, match):
    with pytest.raises(error, match=match):
        baseline_scores("binary", X_train, [0, 1], X_eval, [1])


# --------------------------------------------------------------------------- comparison


def test_corrected_t_test_shrinks_the_plain_paired_t_statistic():
    a, b = [0.8, 0.9, 0.85, 0.88, 0.81], [0.7, 0.8, 0.8, 0.86, 0.8]
    plain = stats.ttest_rel(a, b)
    result = corrected_paired_t_test(a, b, n_train=80, n_test=20)
    # corrected variance (1/J + n_test/n_train) var instead of var / J
    shrink = np.sqrt((1 / 5) / (1 / 5 + 20 / 80))
    assert result["t"] == pytest.approx(plain.statistic * shrink)
    assert result["p_value"] == pytest.approx(2 * stats.t.sf(plain.statistic * shrink, 4))
    assert result["p_value"] > plain.pvalue
    assert result["difference"] == pytest.approx(np.mean(np.subtract(a, b)))


@pytest.mark.parametrize(
    ("a", "b", "t", "p"),
    [([0.8, 0.8], [0.8, 0.8], 0.0, 1.0), ([0.9, 0.9], [0.8, 0.8], np.inf, 0.0)],
    ids=["identical", "constant-difference"],
)
def test_corrected_t_test_without_spread(a, b, t, p):
    result = corrected_paired_t_test(a, b, n_train=8, n_test=2)
    assert (result["t"], result["p_value"]) == (t, p)


def test_corrected_t_test_needs_two_folds():
    with pytest.raises(UsageError, match="two or more folds; got 1"):
        corrected_paired_t_test([0.8], [0.7], n_train=8, n_test=2)
