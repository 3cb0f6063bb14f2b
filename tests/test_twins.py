"""The twin member: exact duplicates of training rows answered by their labels, at a weight
chosen on held-out rows; saved, loaded, predicted in bulk, exported to ONNX and shown."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from typer.testing import CliRunner

import tabnn
from tabnn import TabNNClassifier
from tabnn.artifact.directory import REQUIRED_KEYS, load_model_dir, save_model_dir
from tabnn.cli import app
from tabnn.errors import ModelError
from tabnn.inference.bulk import BulkPredictor
from tabnn.nn.twins import SMOOTHING, TwinMember, twin_keys
from tabnn.onnx_export import build_onnx, probe_parity, table_parity
from tabnn.report.data import ReportData
from tabnn.report.html import render_html

FAST = dict(epochs=30, patience=5)


def repeated_records(n: int = 700, seed: int = 0, task: str = "multiclass"):
    """Records whose labels are mostly noise on their features, 40 % of them repeated
    2-4 times with the same label: only a row's twins know its label."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, 4)).round(3)
    classes = 2 if task == "binary" else 3
    labels = rng.integers(0, classes, n)
    copies = np.where(rng.random(n) < 0.4, rng.integers(2, 5, n), 1)
    order = np.repeat(np.arange(n), copies)
    rng.shuffle(order)
    X = pd.DataFrame(features[order], columns=["a", "b", "c", "d"])
    X["colour"] = np.array(["red", "green", "blue"])[order % 3]
    X.loc[order % 7 == 0, "a"] = np.nan  # missing values repeat with their rows
    if task == "multilabel":
        y = pd.DataFrame(rng.integers(0, 2, (n, 3))[order], columns=["x", "y", "z"])
    else:
        y = labels[order]
    cut = int(0.8 * len(order))
    return X.iloc[:cut], X.iloc[cut:], (y[:cut], y[cut:]) if task != "multilabel" else (
        y.iloc[:cut], y.iloc[cut:])  # fmt: skip


def test_keys_match_exact_duplicates_only():
    x_num = np.array([[0.0, np.nan], [-0.0, np.nan], [0.0, 1.0], [0.5, np.nan]], np.float32)
    x_cat = np.array([[1], [1], [1], [0]])
    keys, usable = twin_keys(x_num, x_cat)
    assert (keys[0] == keys[1]).all()  # -0.0 is 0.0, NaN is NaN
    assert not (keys[0] == keys[2]).all()
    assert usable.tolist() == [True, True, True, False]  # an unknown category has no twin
    outputs = np.eye(2)[[0, 1, 1, 0]]
    member = TwinMember.of_rows(x_num, x_cat, outputs, weight=0.5)
    assert member.rows == 2  # rows 0 and 1 are one key; row 3 is not stored
    assert member.twin_of(x_num, x_cat)[3] == -1
    answer, has = member.answer(x_num, x_cat)
    assert has.tolist() == [True, True, True, False]
    prior = outputs.mean(0)
    assert np.allclose(answer[0], (np.array([1, 1]) + SMOOTHING * prior) / (2 + SMOOTHING))
    assert np.allclose(answer[3], prior)


def test_twins_earn_weight_where_only_twins_know_the_label():
    X_train, X_test, (y_train, y_test) = repeated_records()
    plain = TabNNClassifier(twins=False, **FAST).fit(X_train, y_train)
    with_twins = TabNNClassifier(**FAST).fit(X_train, y_train)
    assert plain.twins_ is None and plain.twin_choice_ is None
    assert with_twins.twins_ is not None and with_twins.twins_.weight > 0.5
    choice = with_twins.twin_choice_
    assert choice["with_twin"] >= 10 and choice["blend_log_loss"] < choice["network_log_loss"]
    gain = (with_twins.predict(X_test) == y_test).mean() - (plain.predict(X_test) == y_test).mean()
    assert gain > 0.15
    # the network is the same; rows without a twin keep its probabilities exactly
    _, has = with_twins.twins_.answer(*with_twins.encode(X_test))
    assert 0 < has.sum() < len(has)
    p_plain, p_twins = plain.predict_proba(X_test), with_twins.predict_proba(X_test)
    assert np.array_equal(p_plain[~has], p_twins[~has])
    assert np.allclose(p_twins.sum(1), 1)


def test_no_twins_no_weight_and_nothing_stored():
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    y = (X["a"] > 0).astype(int)
    clf = TabNNClassifier(**FAST).fit(X, y)
    assert clf.twins_ is None
    assert clf.twin_choice_["with_twin"] == 0 and clf.twin_choice_["weight"] == 0


def test_a_bag_chooses_on_out_of_fold_rows(tmp_path):
    X_train, X_test, (y_train, y_test) = repeated_records(n=400, task="binary")
    clf = TabNNClassifier(bagging=3, **FAST).fit(X_train, y_train)
    assert clf.twin_choice_["held_out_rows"] == len(X_train)  # every row, out of fold
    assert clf.twins_ is not None
    assert clf.oof_proba_.shape == (len(X_train), 2)
    back = tabnn.load(tabnn.save(clf, tmp_path / "m"))
    assert np.array_equal(back.predict_proba(X_test), clf.predict_proba(X_test))


def test_saved_and_loaded_whole(tmp_path):
    X_train, X_test, (y_train, _) = repeated_records()
    clf = TabNNClassifier(**FAST).fit(X_train, y_train)
    path = tabnn.save(clf, tmp_path / "m")
    back = tabnn.load(path)
    assert np.array_equal(back.predict_proba(X_test), clf.predict_proba(X_test))
    assert back.twins_.rows == clf.twins_.rows and back.twin_choice_ == clf.twin_choice_
    with BulkPredictor(back, workers=2) as bulk:
        assert np.array_equal(bulk.proba(back.encode(X_test)), clf.predict_proba(X_test))
    meta = json.loads((path / "tabnn.json").read_text())
    assert meta["twins"]["weight"] == clf.twins_.weight


def test_no_rows_stored_with_twins_off(tmp_path):
    X_train, _, (y_train, _) = repeated_records(n=300)
    clf = TabNNClassifier(twins=False, **FAST).fit(X_train, y_train)
    path = tabnn.save(clf, tmp_path / "m")
    tensors = load_model_dir(path)[1]
    assert not [name for name in tensors if name.startswith("twins.")]
    assert json.loads((path / "tabnn.json").read_text())["twins"] is None


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda meta, t: meta["twins"].update(weight=2.0), "twins.weight = a number \\(2.0\\)"),
        (lambda meta, t: t.pop("twins.counts"), "do not fit the model"),
        (lambda meta, t: t.update({"twins.counts": t["twins.counts"] * 0.5}), "whole numbers"),
        (lambda meta, t: t["twins.label_sums"].__setitem__((0, 0), float("nan")), "not finite"),
        (lambda meta, t: t["twins.label_sums"].__setitem__((0, 0), -1.0), "do not fit"),
        (lambda meta, t: t["twins.prior"].mul_(2), "not a share"),
        (lambda meta, t: t["twins.keys"].__setitem__(1, t["twins.keys"][0]), "a stored row twice"),
        (
            lambda meta, t: [
                t.update({f"twins.{k}": t[f"twins.{k}"][:0]})
                for k in ("keys", "label_sums", "counts")
            ],
            "no stored rows",
        ),
        (lambda meta, t: t["twins.keys"].__setitem__((0, 4), 0.5), "missing flags"),
        (lambda meta, t: t["twins.keys"].__setitem__((0, -1), 1000.0), "category codes"),
        (lambda meta, t: meta.update(twins=None), "no twins entry"),
        (lambda meta, t: meta["twins"].update(choice=None), "twins.choice = null"),
        (lambda meta, t: meta["twins"]["choice"].pop("stored_rows"), "twins.choice = "),
        (lambda meta, t: meta["twins"]["choice"].update(stored_rows="9"), "choice.stored_rows"),
    ],
)
def test_an_edited_twin_member_is_refused(tmp_path, edit, words):
    X_train, _, (y_train, _) = repeated_records(n=300)
    clf = TabNNClassifier(**FAST).fit(X_train, y_train)
    assert clf.twins_ is not None
    meta, tensors = load_model_dir(tabnn.save(clf, tmp_path / "m"))
    edit(meta, tensors)
    meta = {k: v for k, v in meta.items() if k not in REQUIRED_KEYS}
    edited = save_model_dir(tmp_path / "edited", meta, tensors)
    with pytest.raises(ModelError, match=words):
        tabnn.load(edited)


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_onnx_parity_on_rows_with_twins(task):
    X_train, X_test, (y_train, _) = repeated_records(n=300, task=task)
    clf = TabNNClassifier(**FAST).fit(X_train, y_train)
    assert clf.twins_ is not None
    session = ort.InferenceSession(build_onnx(clf).SerializeToString())
    parity = table_parity(session, clf, X_test)
    assert parity.holds(1e-10), parity
    assert probe_parity(session, clf).holds(1e-10)


def test_cli_shows_the_twins_and_leaves_them_out(tmp_path):
    X_train, _, (y_train, _) = repeated_records(n=300)
    data = tmp_path / "records.csv"
    X_train.assign(label=y_train).to_csv(data, index=False)
    runner = CliRunner()
    common = ["train", str(data), "--target", "label", "--epochs", "30", "--no-report"]
    result = runner.invoke(app, [*common, "--out", str(tmp_path / "with")])
    assert result.exit_code == 0, result.output
    assert "twin rows: weight" in result.output
    info = runner.invoke(app, ["info", str(tmp_path / "with")])
    assert "twin rows: weight" in info.output and "stored rows" in info.output
    result = runner.invoke(app, [*common, "--no-twins", "--out", str(tmp_path / "without")])
    assert result.exit_code == 0, result.output
    off = "twin rows: none stored (trained with --no-twins)"
    assert off in result.output
    assert off in runner.invoke(app, ["info", str(tmp_path / "without")]).output


def test_the_report_shows_the_members():
    choice = {"held_out_rows": 483, "with_twin": 238, "weight": 0.75, "stored_rows": 1531}
    choice.update(network_log_loss=0.5487, blend_log_loss=0.2782)
    classes = ["a", "b", "c"]
    page = render_html(
        ReportData("t", "train", "multiclass", classes, twins={"weight": 0.75, "choice": choice})
    )
    assert 'id="members"' in page and "0.25 x the network + 0.75 x its twins" in page
    assert "0.5487" in page and "0.2782" in page and "1531 distinct training rows" in page
    unearned = {**choice, "weight": 0.0}
    twins = {"weight": 0.0, "choice": unearned}
    page = render_html(ReportData("t", "train", "multiclass", classes, twins=twins))
    assert "earned no weight, so the model stores no rows" in page
    assert 'id="members"' not in render_html(ReportData("t", "train", "binary", ["a", "b"]))


def test_compare_scores_each_fold_with_the_twins_fit_would_choose():
    from tabnn.evaluation.compare import cross_validate_designs

    X, _, (y, _) = repeated_records(n=400)
    accuracy = {}
    for twins in (False, True):
        result, _ = cross_validate_designs(
            X, y, ["default"], folds=3, params={**FAST, "twins": twins}
        )
        accuracy[twins] = np.mean(result.values("default"))
    assert accuracy[True] > accuracy[False] + 0.1


def test_compare_refit_ensemble_keeps_a_twin_member_that_never_scores_the_folds():
    """The ensemble refit is the fold stack itself: it chooses a twin member over every
    training row, on the members' validation rows, as a bag's fit does; the fold scores
    stay those of each fold's own twins (the stack's would remember the held-out rows)."""
    from tabnn import compare
    from tabnn.evaluation.compare import cross_validate_designs

    X, _, (y, _) = repeated_records(n=400)
    kept, _ = cross_validate_designs(X, y, ["default"], folds=3, params=FAST, keep_twins=True)
    plain, _ = cross_validate_designs(X, y, ["default"], folds=3, params=FAST)
    assert kept.values("default") == plain.values("default")
    results = {
        twins: compare(X, y, ["default"], folds=3, refit="ensemble", **{**FAST, "twins": twins})
        for twins in (False, True)
    }
    assert results[True].estimator.twins_ is not None
    assert results[True].estimator.twins_.rows > 0
    accuracy = {twins: r.test["scores"]["model"]["accuracy"] for twins, r in results.items()}
    assert accuracy[True] > accuracy[False] + 0.1


def test_the_threshold_is_tuned_on_what_predict_gives():
    from sklearn.metrics import f1_score

    X_train, _, (y_train, _) = repeated_records(n=400, task="binary")
    clf = TabNNClassifier(bagging=3, threshold="auto", **FAST).fit(X_train, y_train)
    assert clf.twins_ is not None  # the out-of-fold probabilities have the twins in them
    chosen = (clf.oof_proba_[:, 1] >= clf.threshold_).astype(int)
    assert f1_score(y_train, chosen) == pytest.approx(clf.threshold_tuning_["score"])


def test_a_table_of_categories_alone_finds_its_twins_in_onnx_too():
    rng = np.random.default_rng(3)
    records = pd.DataFrame(rng.choice(list("abcdefgh"), (150, 3)), columns=["p", "q", "r"])
    labels = rng.integers(0, 2, 150)
    order = np.repeat(np.arange(150), 3)
    rng.shuffle(order)
    X, y = records.iloc[order].reset_index(drop=True), labels[order]
    clf = TabNNClassifier(**FAST).fit(X[:350], y[:350])
    assert clf.twins_ is not None and clf.twins_.keys.shape[1] == 3  # the codes alone
    session = ort.InferenceSession(build_onnx(clf).SerializeToString())
    assert table_parity(session, clf, X[350:]).holds(1e-10)


def test_before_temperature_scaling_means_with_the_twins():
    from tabnn.estimator.calibration import uncalibrated_proba

    X_train, X_test, (y_train, _) = repeated_records(n=300)
    plain = TabNNClassifier(**FAST).fit(X_train, y_train)
    assert plain.twins_ is not None
    assert np.array_equal(uncalibrated_proba(plain, X_test), plain.predict_proba(X_test))
    calibrated = TabNNClassifier(calibrate=True, **FAST).fit(X_train, y_train)
    if calibrated.twins_ is not None:  # the same blend, the temperature's effect alone
        encoded = calibrated.encode(X_test)
        _, has = calibrated.twins_.answer(*encoded)
        before = uncalibrated_proba(calibrated, encoded)
        network = plain.predict_proba(encoded)  # the same network, no temperature
        assert np.array_equal(before[~has], network[~has])
