"""Temperature scaling (``calibrate=True``, ``tabnn train --calibrate``) and the expected
calibration error: the fit recovers a known miscalibration, the ECE matches hand-computed
values, and every path that predicts (``predict_proba``, the bulk predictor of ``tabnn
predict``, a saved and loaded model, the ONNX graph, the server) applies the temperatures.
Models train for a few epochs on small data."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from typer.testing import CliRunner

import tabnn
from tabnn import TabNNClassifier
from tabnn.artifact.directory import DIGEST_KEY, META_FILE, meta_digest
from tabnn.cli import app
from tabnn.errors import ModelError, UsageError
from tabnn.estimator.calibration import (
    expected_calibration_error,
    fit_temperature,
    reliability,
    uncalibrated_proba,
)
from tabnn.estimator.threshold import tune_threshold
from tabnn.evaluation.metrics import log_loss
from tabnn.inference.predict import predict_file
from tabnn.io import dump_json
from tabnn.report.data import ReportData
from tabnn.report.html import render_html
from tabnn.workflows.runs import ReadOptions

SONAR = Path(tabnn.__file__).resolve().parent / "datasets" / "sonar.csv"
QUICK = {"epochs": 8, "patience": 3, "random_state": 0}
runner = CliRunner()


# --------------------------------------------------------------------------- the fit


def bernoulli(z: np.ndarray, rng) -> np.ndarray:
    return (rng.random(z.shape) < 1 / (1 + np.exp(-z))).astype(int)


def test_a_known_over_confidence_is_recovered():
    rng = np.random.default_rng(0)
    z = rng.normal(scale=2.0, size=20_000)
    y = bernoulli(z, rng)
    assert fit_temperature(3 * z[None, :, None], y, "binary") == pytest.approx([3.0], rel=0.05)
    assert fit_temperature(z[None, :, None] / 2, y, "binary") == pytest.approx([0.5], rel=0.05)


def test_multiclass_and_per_label_temperatures():
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=2.0, size=(20_000, 4))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = (p.cumsum(1) < rng.random((20_000, 1))).sum(1)  # a class drawn from each row's p
    assert fit_temperature(2.5 * logits[None], y, "multiclass") == pytest.approx([2.5], rel=0.05)
    labels = bernoulli(logits[:, :2], rng)
    scaled = logits[None, :, :2] * np.array([2.0, 0.5])
    assert fit_temperature(scaled, labels, "multilabel") == pytest.approx([2.0, 0.5], rel=0.05)


def test_each_row_is_scored_by_the_members_that_held_it_out():
    """Fold stacks: member k's logits count on its own rows only; elsewhere they are noise."""
    rng = np.random.default_rng(2)
    z = rng.normal(scale=2.0, size=(2, 10_000))
    y = bernoulli(z.ravel(), rng)
    own = 3 * z.ravel()
    logits = np.stack([own, own])[..., None]
    logits[0, 10_000:, 0] = logits[1, :10_000, 0] = 50 * rng.normal(size=10_000)  # not held out
    held_out = np.zeros((2, 20_000), bool)
    held_out[0, :10_000] = held_out[1, 10_000:] = True
    assert fit_temperature(logits, y, "binary", held_out) == pytest.approx([3.0], rel=0.05)


def test_an_output_with_one_outcome_keeps_temperature_one():
    rng = np.random.default_rng(3)
    z = rng.normal(scale=2.0, size=2000)
    labels = np.column_stack([bernoulli(z, rng), np.zeros(2000, int)])
    temperature = fit_temperature(np.stack([z, z], 1)[None], labels, "multilabel")
    assert temperature[1] == 1.0 and temperature[0] != 1.0


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_validation_rows_all_predicted_right_keep_temperature_one(task):
    """No minimum inside the bounds: the log loss falls as T goes to 0 (the fit would make
    the model certain of everything)."""
    rng = np.random.default_rng(4)
    if task == "binary":
        z = rng.normal(scale=2.0, size=(1, 11, 1))
        y = (z[0, :, 0] > 0).astype(int)  # every row on the side its logit says
    else:
        z = rng.normal(size=(1, 11, 3))
        y = z[0].argmax(1)
    assert fit_temperature(z, y, task).tolist() == [1.0]
    flipped = 1 - y if task == "binary" else (y + 1) % 3  # all wrong: T would grow unbounded
    assert fit_temperature(z, flipped, task).tolist() == [1.0]


# --------------------------------------------------------------------------- the measure


def test_expected_calibration_error_by_hand():
    # bins of 0.1: {0.9: right} gap 0.1; {0.8: wrong} gap 0.8; {0.7, 0.7 (1 - 0.3): one
    # right} mean 0.7, accuracy 0.5, gap 0.2 -> (0.1 + 0.8 + 2 x 0.2) / 4
    y, p = [1, 0, 1, 1], [0.9, 0.8, 0.7, 0.3]
    assert expected_calibration_error(y, p, "binary", bins=10) == pytest.approx(0.325)
    two_columns = np.column_stack([1 - np.array(p), p])
    assert expected_calibration_error(y, two_columns, "binary", bins=10) == pytest.approx(0.325)
    # multi-class: confidences 0.6 (right), 0.5 (wrong) in bins 9 and 7 of 15
    proba = [[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]]
    assert expected_calibration_error([0, 2], proba, "multiclass") == pytest.approx((0.4 + 0.5) / 2)
    # multi-label: the mean of each label's binary ECE
    labels = np.array([[1, 0], [0, 0]])
    per_label = np.array([[0.9, 0.2], [0.4, 0.6]])
    first = (0.1 + 0.4) / 2  # 0.9 right, 0.6 (1 - 0.4) right
    second = (0.2 + 0.6) / 2  # 0.8 (1 - 0.2) right, 0.6 wrong
    assert expected_calibration_error(labels, per_label, "multilabel") == pytest.approx(
        (first + second) / 2
    )


def test_reliability_points_are_the_ece_bins():
    points = reliability([1, 0, 1, 1], [0.9, 0.8, 0.7, 0.3], "binary", bins=10)
    assert points["count"] == [0] * 7 + [2, 1, 1]
    assert points["confidence"][7:] == pytest.approx([0.7, 0.8, 0.9])
    assert points["accuracy"][7:] == [0.5, 0.0, 1.0] and points["accuracy"][0] is None


def test_no_rows_is_refused():
    with pytest.raises(UsageError, match="at least one row"):
        expected_calibration_error([], np.empty(0), "binary")


# --------------------------------------------------------------------------- the estimator


def table(task: str, n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(list("xyz"), n)}
    )
    signal = X.a + 0.5 * X.b + (X.c == "x") + rng.normal(scale=0.7, size=n)
    if task == "binary":
        return X, pd.Series(np.where(signal > 0.3, "yes", "no"), name="t")
    if task == "multiclass":
        return X, pd.Series(np.digitize(signal, [-0.5, 0.5, 1.5]), name="t")
    noisy = X.b + rng.normal(scale=0.7, size=n)
    return X, pd.DataFrame({"p": (signal > 0.3).astype(int), "q": (noisy > 0).astype(int)})


@pytest.fixture(scope="module")
def models():
    """task -> (X, y, calibrated, the same fit uncalibrated): a plain MLP of two members for
    multi-class, the default efficient ensemble otherwise."""
    fitted = {}
    for task, extra in (
        ("binary", {}),
        ("multiclass", {"hidden": [16], "n_members": 2, "lr": 0.01}),
        ("multilabel", {}),
    ):
        X, y = table(task)
        calibrated = TabNNClassifier(**QUICK, **extra, calibrate=True).fit(X, y)
        plain = TabNNClassifier(**QUICK, **extra).fit(X, y)
        fitted[task] = (X, y, calibrated, plain)
    return fitted


def confidence(proba: np.ndarray, task: str) -> np.ndarray:
    return proba.max(1) if task == "multiclass" else np.maximum(proba, 1 - proba)


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_calibrated_probabilities_move_the_expected_way(models, task):
    X, y, calibrated, plain = models[task]
    temperature = calibrated.temperature_
    assert plain.temperature_ is None
    assert temperature.shape == ((2,) if task == "multilabel" else (1,))
    before, after = uncalibrated_proba(calibrated, X), calibrated.predict_proba(X)
    np.testing.assert_array_equal(before, plain.predict_proba(X))  # training is untouched
    assert not np.allclose(before, after)
    # T > 1 softens every confidence, T < 1 sharpens it (per label for multi-label)
    direction = np.sign(temperature - 1) if task == "multilabel" else np.sign(temperature[0] - 1)
    moved = confidence(after, task) - confidence(before, task)
    assert np.all(moved * -direction >= -1e-12)
    np.testing.assert_array_equal(calibrated.predict(X), plain.predict(X))  # at 0.5, argmax
    # the fit minimised the validation rows' log loss
    codes = calibrated.schema_.encode_target(y)
    _, val = calibrated.validation_rows(codes)
    p_before, p_after = (p[val, 1] if task == "binary" else p[val] for p in (before, after))
    assert log_loss(codes[val], p_after, task) <= log_loss(codes[val], p_before, task) + 1e-12


def test_an_automatic_threshold_is_tuned_on_calibrated_probabilities():
    X, y = table("binary", seed=3)
    clf = TabNNClassifier(**QUICK, calibrate=True, threshold="auto").fit(X, y)
    codes = clf.schema_.encode_target(y)
    _, val = clf.validation_rows(codes)
    tuned = tune_threshold(codes[val], clf.predict_proba(X.iloc[val])[:, 1], "f1")
    assert clf.threshold_ == pytest.approx(tuned["threshold"])
    assert clf.temperature_[0] != 1.0


@pytest.mark.parametrize("params, rows", [({"validation_fraction": 0.0}, 60), ({}, 8)])
def test_no_validation_rows_is_refused_before_training(params, rows):
    X, y = table("binary", n=rows)
    clf = TabNNClassifier(**QUICK, **params, calibrate=True)
    with pytest.raises(UsageError, match="calibrate=True .* validation rows"):
        clf.fit(X, y)
    assert not hasattr(clf, "model_")


def test_calibrate_must_be_a_bool():
    with pytest.raises(UsageError, match="'calibrate' parameter .* must be a bool"):
        TabNNClassifier(calibrate="yes").fit(*table("binary", n=40))


# --------------------------------------------------------------------------- where it applies


def test_save_and_load_keep_the_temperatures(models, tmp_path):
    X, _, calibrated, _ = models["multilabel"]
    path = tabnn.save(calibrated, tmp_path / "m")
    meta = json.loads((path / META_FILE).read_text())
    assert meta["temperature"] == calibrated.temperature_.tolist()
    loaded = tabnn.load(path)
    np.testing.assert_array_equal(loaded.temperature_, calibrated.temperature_)
    np.testing.assert_array_equal(loaded.predict_proba(X), calibrated.predict_proba(X))


def rewrite_meta(path: Path, change) -> None:
    meta = json.loads((path / META_FILE).read_text())
    change(meta)
    meta[DIGEST_KEY] = meta_digest(meta)
    (path / META_FILE).write_bytes(dump_json(meta))  # byte for byte as tabnn writes


def test_a_model_saved_before_calibration_loads_uncalibrated(models, tmp_path):
    X, _, _, plain = models["binary"]
    path = tabnn.save(plain, tmp_path / "old")

    def as_before(meta):
        del meta["temperature"], meta["params"]["calibrate"]

    rewrite_meta(path, as_before)
    loaded = tabnn.load(path)
    assert loaded.temperature_ is None and loaded.calibrate is False
    np.testing.assert_array_equal(loaded.predict_proba(X), plain.predict_proba(X))


@pytest.mark.parametrize("bad", [[0.0], [1.0, 2.0], ["2"], 3.0])
def test_a_bad_stored_temperature_is_refused(models, tmp_path, bad):
    _, _, calibrated, _ = models["binary"]
    path = tabnn.save(calibrated, tmp_path / "m")
    rewrite_meta(path, lambda meta: meta.update(temperature=bad))
    with pytest.raises(ModelError, match="temperature"):
        tabnn.load(path)


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_the_bulk_predict_path_applies_them(models, tmp_path, precision):
    X, y, calibrated, _ = models["multiclass"]
    model_dir = tabnn.save(calibrated, tmp_path / "m")
    data = tmp_path / "rows.csv"
    X.to_csv(data, index=False)
    frame = predict_file(model_dir, data, ReadOptions(), out=None, precision=precision)
    proba = frame[[c for c in frame if c.startswith("proba_")]].to_numpy()
    atol = 1e-12 if precision == "float64" else 1e-6
    np.testing.assert_allclose(proba, calibrated.predict_proba(X), atol=atol)


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_the_onnx_graph_matches_the_calibrated_model(models, tmp_path, task):
    pytest.importorskip("onnxruntime")
    from tabnn.onnx_export import (
        onnx_inputs,
        probe_parity,
        session_of,
        table_parity,
        write_onnx,
    )

    X, _, calibrated, _ = models[task]
    write_onnx(calibrated, tmp_path / "m.onnx")
    session = session_of(tmp_path / "m.onnx")
    for parity in (table_parity(session, calibrated, X), probe_parity(session, calibrated)):
        assert parity.largest_difference <= 1e-9 and parity.same_labels
    (graph,) = session.run(["probabilities"], onnx_inputs(calibrated, X))
    assert not np.allclose(graph, uncalibrated_proba(calibrated, X))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_the_server_answers_calibrated_probabilities(models, tmp_path, runtime):
    pytest.importorskip("fastapi")
    if runtime == "onnx":
        pytest.importorskip("onnxruntime")
    X, _, calibrated, _ = models["binary"]
    model_dir = tabnn.save(calibrated, tmp_path / "m")
    port = free_port()
    command = [sys.executable, "-m", "tabnn", "serve", f"m={model_dir}", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--runtime", runtime], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stdout.read().decode()
            try:
                if requests.get(f"{url}/v2/health/ready", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the server did not start within a minute"
            time.sleep(0.1)
        rows = json.loads(X.head(8).to_json(orient="records"))
        answer = requests.post(f"{url}/invocations?model=m", json={"instances": rows}, timeout=30)
        assert answer.status_code == 200, answer.text
        served = [p["proba_yes"] for p in answer.json()["predictions"]]
    finally:
        server.terminate()
        server.wait(timeout=30)
    np.testing.assert_allclose(served, calibrated.predict_proba(X.head(8))[:, 1], atol=1e-9)
    assert not np.allclose(served, uncalibrated_proba(calibrated, X.head(8))[:, 1])


# --------------------------------------------------------------------------- command line


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def test_train_calibrate_saves_reports_and_predicts_calibrated(tmp_path):
    out = tmp_path / "sonar"
    result = invoke("train", SONAR, "--target=-1", "--no-header", "--calibrate",
                    "--epochs", 8, "--out", out, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    meta = json.loads((out / META_FILE).read_text())
    assert summary["temperature"] == meta["temperature"] and len(meta["temperature"]) == 1
    assert meta["params"]["calibrate"] is True
    data = ReportData.load(out)
    assert data.calibration["rows"] == summary["rows"]["test"]
    for side in ("before", "after"):
        assert set(data.calibration[side]) == {"log_loss", "ece", "reliability"}
    page = (out / "report.html").read_text()
    assert 'id="calibration"' in page and 'data-plot="temperature-scaling"' in page
    info = invoke("info", out)
    assert "calibrated: temperature" in info.output


def test_train_calibrate_without_validation_rows_writes_nothing(tmp_path):
    data = tmp_path / "tiny.csv"
    pd.DataFrame({"x": np.arange(12.0), "y": ["a", "b"] * 6}).to_csv(data, index=False)
    out = tmp_path / "model"
    result = invoke("train", data, "--target", "y", "--calibrate", "--val-size", 0,
                    "--test-size", 0.25, "--out", out)  # fmt: skip
    assert result.exit_code == UsageError.exit_code
    assert "calibrate" in result.output and "validation rows" in result.output
    assert "Traceback" not in result.output
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["tiny.csv"]


def test_stream_calibrate(tmp_path):
    out = tmp_path / "streamed"
    result = invoke("train", SONAR, "--target=-1", "--no-header", "--calibrate", "--stream",
                    "--epochs", 5, "--out", out, "--no-report")  # fmt: skip
    assert result.exit_code == 0, result.output
    loaded = tabnn.load(out)
    assert loaded.temperature_ is not None and loaded.temperature_[0] != 1.0


# --------------------------------------------------------------------------- the report


def test_the_report_section_appears_only_when_calibrated(models):
    X, y, calibrated, _ = models["multilabel"]
    from tabnn.report.builders import calibration_summary

    summary = calibration_summary(calibrated, X, y)
    assert summary["temperature"] == calibrated.temperature_.tolist()
    data = ReportData("t", "train", "multilabel", ["p", "q"], calibration=summary)
    assert ReportData.from_dict(json.loads(json.dumps(data.to_dict()))) == data
    page = render_html(data)
    assert "each label's temperature (p " in page
    assert 'data-plot="temperature-scaling"' in page
    plain = render_html(ReportData("t", "train", "multilabel", ["p", "q"]))
    assert 'id="calibration"' not in plain


def test_nothing_heavy_is_loaded_by_the_module():
    code = "import sys, tabnn.estimator.calibration; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
