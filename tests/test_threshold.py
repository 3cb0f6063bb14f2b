"""Decision-threshold tuning: the rule (evaluation.threshold.tune_threshold), where the
estimator takes its rows from (validation only), how an ensemble and fold stacks score them,
the artifact and the command line."""

import json
import re
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.metrics import (
    balanced_accuracy_score,
    f1_score,
    matthews_corrcoef,
    precision_score,
    recall_score,
)
from typer.testing import CliRunner

from tabnn import TabNNClassifier
from tabnn.artifact import directory as artifact
from tabnn.cli import app
from tabnn.errors import DataError, UsageError
from tabnn.estimator.threshold import parse_threshold_metric, tune_threshold
from tabnn.workflows.runs import ReadOptions, train_workflow

FAST = {"hidden": [16], "epochs": 15, "lr": 0.01, "patience": 5}
AUTO = ["--threshold", "auto"]
DATA = Path(__file__).resolve().parent / "data"
SONAR = DATA / "sonar" / "sonar.csv"
IRIS = DATA / "iris" / "iris.csv"


def noisy(n=300, seed=0):
    """A binary problem hard enough that the best threshold is not obvious."""
    X, y = make_classification(
        n_samples=n, n_features=6, n_informative=3, flip_y=0.15, weights=[0.7], random_state=seed
    )
    return X, y


# --------------------------------------------------------------------------- the rule

SKLEARN = {
    "f1": f1_score,
    "balanced_accuracy": balanced_accuracy_score,
    "mcc": matthews_corrcoef,
}


def every_cut(p: np.ndarray) -> np.ndarray:
    """Thresholds giving every way of cutting the rows (p >= t) that predicts a positive."""
    return np.unique(p)


@pytest.mark.parametrize("metric", list(SKLEARN))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tuned_threshold_is_the_best_cut_by_sklearn(metric, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 60)
    p = np.clip(0.3 * y + rng.random(60) * 0.7, 0, 1).round(3)  # ties between rows too
    tuned = tune_threshold(y, p, metric)
    best = max(SKLEARN[metric](y, (p >= t).astype(int)) for t in every_cut(p))
    assert SKLEARN[metric](y, (p >= tuned["threshold"]).astype(int)) == pytest.approx(best)
    assert tuned["score"] == pytest.approx(best)
    assert tuned["rows"] == 60 and tuned["metric"] == metric


@pytest.mark.parametrize("floor", [0.5, 0.8, 0.9, 1.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_recall_floor_is_the_most_precise_threshold_reaching_it(floor, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 80)
    p = np.clip(0.35 * y + rng.random(80) * 0.65, 0, 1)
    tuned = tune_threshold(y, p, f"recall>={floor}")
    pred = (p >= tuned["threshold"]).astype(int)
    assert recall_score(y, pred) >= floor
    reaching = [t for t in every_cut(p) if recall_score(y, (p >= t).astype(int)) >= floor]
    best = max(precision_score(y, (p >= t).astype(int)) for t in reaching)
    assert precision_score(y, pred) == pytest.approx(best)
    assert tuned["score"] == tuned["precision"] == pytest.approx(best)
    assert tuned["recall"] == pytest.approx(recall_score(y, pred))


def test_precision_floor_is_the_widest_threshold_reaching_it():
    y = np.array([0, 0, 1, 0, 1, 1, 1, 0, 1, 1])
    p = np.linspace(0.05, 0.95, 10)
    tuned = tune_threshold(y, p, "precision>=0.8")
    pred = (p >= tuned["threshold"]).astype(int)
    assert precision_score(y, pred) >= 0.8
    assert tuned["recall"] == recall_score(y, pred) == pytest.approx(5 / 6)


def test_unreachable_precision_floor_is_a_data_error():
    with pytest.raises(DataError, match=r"No threshold reaches precision>=0.99 .* highest"):
        tune_threshold([0, 1, 1, 0], [0.9, 0.8, 0.3, 0.1], "precision>=0.99")


def test_threshold_lies_midway_between_rows():
    # the perfect cut lies anywhere in (0.2, 0.7]: the middle keeps the widest margin
    assert tune_threshold([0, 1], [0.2, 0.7])["threshold"] == pytest.approx(0.45)


def test_ties_go_to_the_threshold_nearest_half():
    # balanced accuracy 0.5 both at p >= 0.7 (threshold 0.5) and p >= 0.1 (threshold 0.05)
    tuned = tune_threshold([1, 0, 1, 0], [0.1, 0.3, 0.7, 0.9], "balanced_accuracy")
    assert tuned["threshold"] == pytest.approx(0.5)
    assert tuned["score"] == 0.5


def test_single_class_rows_are_a_data_error():
    with pytest.raises(DataError, match="hold a single class"):
        tune_threshold([1, 1, 1], [0.2, 0.5, 0.9])


@pytest.mark.parametrize(
    "metric, parsed",
    [("f1", ("f1", None)), ("recall>=0.9", ("recall", 0.9)), ("precision >= 1", ("precision", 1))],
)
def test_parse_threshold_metric(metric, parsed):
    assert parse_threshold_metric(metric) == parsed


@pytest.mark.parametrize("metric", ["auc", "recall>=0", "recall>=1.5", "recall<=0.9", "", 0.9])
def test_bad_threshold_metric(metric):
    with pytest.raises(UsageError, match="A threshold metric is one of f1, balanced_accuracy"):
        parse_threshold_metric(metric)


# --------------------------------------------------------------------------- the estimator


def test_auto_threshold_is_chosen_on_the_eval_set_rows():
    X, y = noisy()
    X_val, y_val = X[200:], y[200:]
    clf = TabNNClassifier(**FAST, threshold="auto").fit(X[:200], y[:200], eval_set=(X_val, y_val))
    expected = tune_threshold(y_val, clf.predict_proba(X_val)[:, 1], "f1")
    assert clf.threshold_ == expected["threshold"]
    assert clf.threshold_tuning_["rows"] == 100
    assert clf.threshold_tuning_["members"] == 1
    assert clf.threshold_tuning_["score"] == expected["score"]
    # other validation labels, same training rows: another threshold
    flipped = TabNNClassifier(**FAST, threshold="auto").fit(
        X[:200], y[:200], eval_set=(X_val, 1 - y_val)
    )
    assert flipped.threshold_ != clf.threshold_


def test_auto_threshold_uses_the_validation_fraction_split():
    X, y = noisy()
    clf = TabNNClassifier(**FAST, threshold="auto", validation_fraction=0.2).fit(X, y)
    _, val = clf.validation_rows(clf.schema_.encode_target(pd.Series(y)))
    expected = tune_threshold(y[val], clf.predict_proba(X[val])[:, 1])
    assert clf.threshold_ == expected["threshold"]
    assert clf.threshold_tuning_["rows"] == len(val) == 60


def test_predict_applies_the_tuned_threshold():
    X, y = noisy()
    clf = TabNNClassifier(**FAST, threshold="auto", threshold_metric="recall>=0.95").fit(X, y)
    assert clf.threshold != clf.threshold_
    expected = clf.classes_[(clf.predict_proba(X)[:, 1] >= clf.threshold_).astype(int)]
    np.testing.assert_array_equal(clf.predict(X), expected)


def test_fixed_threshold_is_kept_and_not_tuned():
    X, y = noisy(n=120)
    clf = TabNNClassifier(**FAST, threshold=0.3).fit(X, y)
    assert clf.threshold_ == 0.3 and clf.threshold_tuning_ is None


def test_ensemble_tunes_on_the_members_mean_probability():
    X, y = noisy()
    clf = TabNNClassifier(**FAST, threshold="auto", n_members=3)
    clf.fit(X[:200], y[:200], eval_set=(X[200:], y[200:]))
    expected = tune_threshold(y[200:], clf.predict_proba(X[200:])[:, 1])  # the mean of 3
    assert clf.threshold_ == expected["threshold"]
    assert clf.threshold_tuning_["members"] == 3
    assert clf.threshold_tuning_["members_per_row"] == 3


def test_fold_members_score_only_their_own_validation_rows():
    """Members with different validation rows (compare's fold stacks): each row is scored
    by the member that validated on it, never by one that trained on it."""
    X, y = noisy(n=120)
    clf = TabNNClassifier(**FAST, threshold="auto")
    frame, target = clf.as_frames(X, y)
    rows = np.arange(120)
    members = [(rows[rows % 2 == 0], rows[1::4]), (rows[rows % 2 == 1], rows[0::4])]
    clf.fit_members(frame, target, members)
    proba = clf.member_proba(frame)[..., 0]  # (members, rows)
    val = np.sort(np.concatenate([rows[1::4], rows[0::4]]))
    own = np.where(val % 4 == 1, proba[0][val], proba[1][val])
    assert clf.threshold_ == tune_threshold(y[val], own)["threshold"]
    assert clf.threshold_tuning_["members_per_row"] == 1
    assert clf.threshold_tuning_["rows"] == 60


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"threshold": "best"}, UsageError, "The 'threshold' parameter of TabNNClassifier must "
         "be 'auto' or a float in the range (0, 1). Got 'best' instead."),
        ({"threshold": 1.0}, UsageError, "'auto' or a float in the range (0, 1). Got 1.0"),
        ({"threshold_metric": "auc"}, UsageError, "The 'threshold_metric' parameter"),
        ({"threshold": "auto", "validation_fraction": 0}, UsageError, "has none"),
    ],
    ids=["word", "one", "metric", "no-validation"],
)  # fmt: skip
def test_bad_threshold_parameters_fail_in_fit(params, error, match):
    X, y = noisy(n=60)
    clf = TabNNClassifier(**FAST, **params)
    with pytest.raises(error, match=re.escape(match)):
        clf.fit(X, y)
    assert not hasattr(clf, "model_")  # refused before training


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_auto_threshold_is_refused_for_other_tasks(task):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = rng.integers(0, 3, 60) if task == "multiclass" else rng.integers(0, 2, (60, 3))
    clf = TabNNClassifier(**FAST, threshold="auto")
    with pytest.raises(UsageError, match=f"binary target; this target is {task}"):
        clf.fit(X, y)
    assert not hasattr(clf, "model_")


# --------------------------------------------------------------------------- artifact


def test_tuned_threshold_is_saved_and_reloaded(tmp_path):
    X, y = noisy()
    clf = TabNNClassifier(**FAST, threshold="auto", threshold_metric="mcc").fit(X, y)
    restored = artifact.load(artifact.save(clf, tmp_path / "m"))
    assert restored.threshold_ == clf.threshold_
    assert restored.threshold_tuning_ == clf.threshold_tuning_
    np.testing.assert_array_equal(restored.predict(X), clf.predict(X))
    meta = json.loads((tmp_path / "m" / artifact.META_FILE).read_text())
    assert meta["threshold"]["value"] == clf.threshold_
    assert meta["threshold"]["tuning"]["metric"] == "mcc"
    assert meta["params"]["threshold"] == "auto"


def test_model_saved_before_tuning_existed_applies_its_parameter(tmp_path):
    X, y = noisy(n=120)
    path = artifact.save(TabNNClassifier(**FAST, threshold=0.3).fit(X, y), tmp_path / "m")
    meta, tensors = artifact.load_model_dir(path)
    del meta["threshold"]
    artifact.save_model_dir(path, meta, tensors)
    restored = artifact.load(path)
    assert restored.threshold_ == 0.3 and restored.threshold_tuning_ is None


# --------------------------------------------------------------------------- workflows and CLI


def test_train_workflow_never_looks_at_test_rows(tmp_path):
    """Scrambling the test rows' features changes the test scores, not the threshold."""
    frame = pd.read_csv(SONAR, header=None)
    options = ReadOptions(header=False, target="60")
    first = train_workflow(SONAR, options, TabNNClassifier(**FAST, threshold="auto"), out=None)
    scrambled = frame.copy()
    test = first.test_rows
    scrambled.iloc[test, :60] = scrambled.iloc[test, :60].to_numpy()[::-1, ::-1]
    path = tmp_path / "scrambled.csv"
    scrambled.to_csv(path, header=False, index=False)
    second = train_workflow(path, options, TabNNClassifier(**FAST, threshold="auto"), out=None)
    assert second.test_rows == test
    assert second.threshold == first.threshold
    assert second.evaluation["scores"]["model"] != first.evaluation["scores"]["model"]


runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    escaped = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not escaped, repr(result.exception)
    return result


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "sonar"
    result = invoke("train", SONAR, "-t", "-1", "--epochs", "5", *AUTO, "-o", out, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout), out


def test_train_reports_and_saves_the_tuned_threshold(tuned, tmp_path):
    payload, out = tuned
    threshold = payload["threshold"]
    assert threshold["tuning"]["rows"] == payload["rows"]["validation"] == 32
    assert threshold["tuning"]["metric"] == "f1"
    assert payload["evaluation"]["scores"]["model"]["threshold"] == threshold["value"]
    text = invoke("train", SONAR, "-t", "-1", "--epochs", "5", *AUTO, "-o", tmp_path / "m").stdout
    assert f"threshold {threshold['value']:.4g} chosen on 32 validation rows, maximising F1" in text
    assert "decision threshold" in invoke("info", out).stdout
    meta = json.loads((out / artifact.META_FILE).read_text())
    assert meta["threshold"] == threshold


def test_predict_and_evaluate_use_the_tuned_threshold(tuned):
    payload, out = tuned
    value = payload["threshold"]["value"]
    predictions = pd.read_csv(StringIO(invoke("predict", out, SONAR).stdout))
    expected = np.where(predictions["proba_R"] >= value, "R", "M")
    assert predictions["prediction"].tolist() == expected.tolist()
    scores = json.loads(invoke("evaluate", out, SONAR, "--json").stdout)["scores"]["model"]
    assert scores["threshold"] == value
    override = pd.read_csv(StringIO(invoke("predict", out, SONAR, "--threshold", "0.9").stdout))
    assert (
        override["prediction"].tolist() == np.where(override["proba_R"] >= 0.9, "R", "M").tolist()
    )


def test_train_recall_floor_from_the_command_line(tmp_path):
    options = [*AUTO, "--threshold-metric", "recall>=0.9", "--json"]
    result = invoke("train", SONAR, "-t", "-1", "--epochs", "5", *options, "-o", tmp_path / "m")
    tuning = json.loads(result.stdout)["threshold"]["tuning"]
    assert tuning["metric"] == "recall>=0.9" and tuning["recall"] >= 0.9


@pytest.fixture(scope="module")
def same_rows(tmp_path_factory) -> Path:
    """Every row alike but two negatives: the model scores them all the same, so no
    threshold has a precision of 1 on any validation rows."""
    lines = ["x,y"] + [f"1,{i % 2}" for i in range(98)] + ["0,0", "0,0"]
    path = tmp_path_factory.mktemp("data") / "same.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_unreachable_floor_exits_1_and_writes_nothing(same_rows, tmp_path):
    options = [*AUTO, "--threshold-metric", "precision>=1", "-o", tmp_path / "m"]
    result = invoke("train", same_rows, "-t", "y", "--epochs", "2", *options)
    assert result.exit_code == 1, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    expected = "validation rows: No threshold reaches precision>=1 on the 15 rows: the highest"
    assert expected in message
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    "args, code, message",
    [
        ([SONAR, "-t", "-1", "--threshold-metric", "mcc"], 2,
         "--threshold-metric mcc chooses how --threshold auto tunes the threshold"),
        ([SONAR, "-t", "-1", "--threshold", "auto", "--threshold-metric", "recall>0.9"], 2,
         "Invalid value for '--threshold-metric'"),
        ([SONAR, "-t", "-1", "--threshold", "0"], 2, "expected a number in (0, 1) or auto"),
        ([IRIS, "-t", "-1", "--threshold", "auto"], 2,
         "threshold='auto' tunes the decision threshold of a binary target; this target is "
         "multiclass"),
    ],
    ids=["metric-without-auto", "bad-metric", "zero", "multiclass"],
)  # fmt: skip
def test_bad_threshold_options_exit_with_a_message_and_write_nothing(tmp_path, args, code, message):
    result = invoke("train", *args, "-o", tmp_path / "m")
    assert result.exit_code == code, result.stdout + result.stderr
    assert message in " ".join(result.stderr.replace("│", " ").split())
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "m").exists()


def test_compare_passes_the_threshold_to_the_refit(tmp_path):
    options = ["--models", "wide", "--folds", "2", "--epochs", "3", "--refit", "ensemble"]
    result = invoke("compare", SONAR, "-t", "-1", *options, *AUTO, "-o", tmp_path / "m", "--json")
    assert result.exit_code == 0, result.stderr
    tuning = json.loads(result.stdout)["threshold"]["tuning"]
    assert tuning["members"] == 2
    meta = json.loads((tmp_path / "m" / artifact.META_FILE).read_text())
    assert meta["threshold"]["tuning"] == tuning
