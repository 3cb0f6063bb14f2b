"""Tests for tabnn.evaluation.compare and `tabnn compare`: folds as stack members, paired and
reproducible comparisons, leak-free per-fold preprocessing, refits, bad input."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import tabnn
from tabnn.cli import app
from tabnn.data.read import read_table
from tabnn.data.splits import stratified_folds
from tabnn.data.target import split_target
from tabnn.errors import UsageError
from tabnn.estimator.classifier import TabNNClassifier
from tabnn.evaluation.compare import cross_validate_designs, fold_members
from tabnn.evaluation.metrics import check_metric
from tabnn.nn.designs import parse_design

DATA = Path(__file__).resolve().parent / "data"
QUICK = {"epochs": 15, "patience": 5}


def toy(n=120, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "colour": rng.choice(["red", "green", "blue"], size=n),
        }
    )
    y = pd.Series(np.where(frame.a + (frame.colour == "red") > 0.3, "yes", "no"), name="y")
    return frame, y


def test_each_fold_member_gets_statistics_of_its_own_training_rows_only():
    frame, y = toy()
    frame["canary"] = np.arange(len(frame)) ** 2.0  # its mean moves with every fold
    comparison, stacks = cross_validate_designs(frame, y, ["wide"], folds=4, params=QUICK)
    stack = stacks["wide"]
    folds = stratified_folds(stack.schema_.encode_target(y), "binary", n_splits=4, seed=0)
    members = fold_members(stack.schema_.encode_target(y), "binary", folds, 0.15, seed=0)
    column = stack.schema_.numeric.index("canary")
    centers = stack.model_.encoder.centers[:, 0, column].numpy()
    expected = [frame.canary.iloc[train].mean() for train, _ in members]
    np.testing.assert_allclose(centers, expected, rtol=1e-6)
    assert len(set(np.round(centers, 3))) == 4  # four different folds, four statistics
    assert not np.isclose(centers, frame.canary.mean()).any()  # never the whole table's


def test_folds_are_reproducible_and_shared_by_every_design():
    frame, y = toy()
    first, _ = cross_validate_designs(frame, y, ["wide", "deep"], folds=3, seed=4, params=QUICK)
    again, _ = cross_validate_designs(frame, y, ["deep"], folds=3, seed=4, params=QUICK)
    assert first.values("deep") == again.values("deep")  # same seed, same folds, same scores
    assert first.fold_rows == again.fold_rows
    other, _ = cross_validate_designs(frame, y, ["deep"], folds=3, seed=5, params=QUICK)
    assert other.values("deep") != first.values("deep")
    # the baselines are scored on exactly the folds the designs were
    assert len(first.values("logistic_regression")) == len(first.values("wide")) == 3


def test_a_fold_member_equals_the_same_member_trained_alone():
    frame, y = toy()
    params = {**QUICK, "dropout": 0.0}
    _, stacks = cross_validate_designs(frame, y, ["wide"], folds=3, seed=2, params=params)
    stack = stacks["wide"]
    codes = stack.schema_.encode_target(y)
    folds = stratified_folds(codes, "binary", n_splits=3, seed=2)
    members = fold_members(codes, "binary", folds, 0.15, seed=2)
    shared_vocabulary = np.unique(np.concatenate([train for train, _ in members]))
    for k, rows in enumerate(members):
        alone = TabNNClassifier(**params, hidden="wide", random_state=2 + k)
        alone.fit_members(frame, y, [rows], schema=stack.schema_, vocabulary_rows=shared_vocabulary)
        for name, value in alone.model_.state_dict().items():
            if value.dim() and value.shape[0] == 1:
                torch.testing.assert_close(value[0], stack.model_.state_dict()[name][k])


def test_ranking_paired_test_and_baselines():
    frame, y = toy()
    comparison, _ = cross_validate_designs(
        frame, y, ["wide", "mlp:16", "deep"], folds=3, params=QUICK
    )
    means = [comparison.summary[name]["mean"] for name in comparison.ranking]
    assert means == sorted(means, reverse=True)
    assert comparison.winner == comparison.ranking[0]
    paired = comparison.paired
    assert (paired["a"], paired["b"]) == tuple(comparison.ranking[:2])
    diff = np.subtract(comparison.values(paired["a"]), comparison.values(paired["b"]))
    assert paired["difference"] == pytest.approx(diff.mean())
    assert 0 <= paired["p_value"] <= 1
    assert {"most_frequent", "logistic_regression", "lightgbm"} <= set(comparison.scores)
    assert comparison.summary["most_frequent"]["mean"] < comparison.summary["wide"]["mean"]


def test_lower_is_better_metric_ranks_ascending():
    frame, y = toy()
    comparison, _ = cross_validate_designs(
        frame, y, ["wide", "deep"], folds=3, metric="log_loss", params=QUICK
    )
    means = [comparison.summary[name]["mean"] for name in comparison.ranking]
    assert means == sorted(means)


@pytest.mark.parametrize("refit", ["full", "ensemble"])
def test_compare_refits_tests_once_and_saves(tmp_path, refit):
    frame, y = toy(160)
    result = tabnn.compare(frame, y, ["wide", "deep"], folds=3, refit=refit, **QUICK)
    members = result.estimator.model_config_.n_members
    assert members == (1 if refit == "full" else 3)
    assert result.rows == {"train": 136, "test": 24}
    assert set(result.test["scores"]) == {"model", "most_frequent", "logistic_regression"}
    saved = tabnn.save(result.estimator, tmp_path / "m")
    np.testing.assert_array_equal(
        tabnn.load(saved).predict_proba(frame), result.estimator.predict_proba(frame)
    )


def test_multiclass_and_multilabel_compare():
    X, y = split_target(read_table(DATA / "iris" / "iris.csv", header=False), "-1")
    result = tabnn.compare(X, y, ["wide", "deep"], folds=3, **QUICK)
    assert result.comparison.task == "multiclass"
    assert result.comparison.metric == "accuracy"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 4))
    labels = np.column_stack([X[:, 0] > 0, X[:, 1] > 0.5, X[:, 2] + X[:, 3] > 0]).astype(int)
    result = tabnn.compare(X, labels, ["wide"], folds=3, **QUICK)
    assert result.comparison.task == "multilabel"
    assert result.comparison.metric == "f1_micro"
    assert "label_frequency" in result.comparison.scores
    assert result.comparison.paired["b"] != "wide"  # one design: compared with a baseline


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: parse_design("huge"), "Unknown design 'huge'; valid designs: default, wide"),
        (lambda: parse_design("mlp:0-4"), "Unknown design 'mlp:0-4'"),
        (lambda: check_metric("speed", "binary"), "Unknown metric 'speed' for a binary task"),
        (lambda: check_metric("hamming_loss", "binary"), "valid: accuracy, balanced_accuracy"),
    ],
    ids=["design", "bad-sizes", "metric", "metric-of-another-task"],
)
def test_bad_designs_and_metrics(call, message):
    with pytest.raises(UsageError, match=message):
        call()


def test_more_folds_than_the_smallest_class_has_rows():
    frame, y = toy(40)
    y.iloc[:37] = "no"
    y.iloc[37:] = "yes"
    with pytest.raises(UsageError, match=r"5 folds need at least 5 rows of every class"):
        tabnn.compare(frame, y, ["wide"], folds=5, test_size=0.1, **QUICK)


runner = CliRunner()
SONAR = str(DATA / "sonar" / "sonar.csv")


def test_cli_compare_prints_folds_ranking_paired_test_and_saves(tmp_path):
    out = tmp_path / "model"
    result = runner.invoke(
        app,
        [
            "compare", SONAR, "--no-header", "--target", "-1", "--models", "wide,deep",
            "--folds", "3", "--epochs", "10", "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for text in ("Per fold", "Mean +- std", "corrected resampled t", "winner:", "Test rows"):
        assert text in result.output
    meta = json.loads((out / "tabnn.json").read_text())
    assert meta["comparison"]["folds"] == 3
    assert set(meta["comparison"]["per_fold"]) >= {"wide", "deep", "logistic_regression"}


def test_cli_compare_json(tmp_path):
    result = runner.invoke(
        app,
        [
            "compare", SONAR, "--no-header", "--target", "-1", "--models", "wide",
            "--folds", "2", "--epochs", "5", "--json", "--out", str(tmp_path / "m"),
            "--refit", "ensemble",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["refit"] == "ensemble"
    assert len(payload["comparison"]["per_fold"]["wide"]) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--models", "wide,huge"], "Unknown design 'huge'"),
        (["--metric", "speed"], "Unknown metric 'speed'"),
        (["--folds", "150"], "150 folds need at least 150 rows of every class"),
    ],
    ids=["unknown-design", "unknown-metric", "too-many-folds"],
)
def test_cli_compare_bad_input_exits_2_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "model"
    result = runner.invoke(
        app, ["compare", SONAR, "--no-header", "--target", "-1", "--out", str(out), *args]
    )
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_nested_cv_scores_each_outer_fold_once_with_its_own_choice():
    frame, y = toy(150)
    result = tabnn.compare(frame, y, ["wide", "mlp:8"], folds=3, nested=True, **QUICK)
    nested = result.nested
    assert [r["fold"] for r in nested["outer_folds"]] == [1, 2, 3]
    assert {r["chosen"] for r in nested["outer_folds"]} <= {"wide", "mlp:8"}
    scores = [r["score"] for r in nested["outer_folds"]]
    assert nested["mean"] == pytest.approx(np.mean(scores))
    assert 0.5 < nested["mean"] <= 1.0


def test_a_metric_undefined_on_a_fold_is_a_clear_error():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    labels = np.zeros((60, 2), dtype=int)
    labels[0, 0] = labels[1, 1] = 1  # one positive each: some held-out fold has none
    with pytest.raises(tabnn.errors.DataError, match="roc_auc_macro is undefined|rank by"):
        tabnn.compare(X, labels, ["wide"], folds=3, metric="roc_auc_macro", **QUICK)
