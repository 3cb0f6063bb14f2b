"""tabnn tune: the search space, trials as members of one stack, the study (resumed after
kill -9), the saved model and the refusals of bad input."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import tabnn
from tabnn.cli import app
from tabnn.data.splits import stratified_folds
from tabnn.errors import UsageError
from tabnn.estimator.classifier import TabNNClassifier
from tabnn.evaluation.compare import fold_members
from tabnn.tuning import search, space

optuna = pytest.importorskip("optuna")

DATA = Path(__file__).parent / "data"
HEART = DATA / "heart" / "heart.csv"


def heart():
    frame = pd.read_csv(HEART, encoding="utf-8-sig")
    return frame.drop(columns="target"), frame["target"]


def folds_of(X, y, n_folds=3, seed=0):
    probe = TabNNClassifier(random_state=seed)
    schema = probe.infer_schema(X, y)
    codes = schema.encode_target(y)
    splits = stratified_folds(codes, schema.task, n_splits=n_folds, seed=seed)
    members = fold_members(codes, schema.task, splits, probe.validation_fraction, seed)
    return search.Folds(X, y, codes, schema, splits, members, "accuracy")


# --- the space ---------------------------------------------------------------------


@pytest.mark.parametrize("n_train", [150, 5_000, 100_000])
def test_the_default_point_is_the_default_model(n_train):
    point = space.default_point(n_train)
    assert point["batch_size"] in space.batch_choices(n_train)
    X, y = heart()
    rows = [(np.arange(0, 200), np.arange(200, 250)), (np.arange(50, 250), np.arange(0, 50))]
    n = len(rows[0][0])
    point = space.default_point(n)
    tuned = TabNNClassifier(**space.estimator_params(point)).fit_members(X, y, rows)
    default = TabNNClassifier().fit_members(X, y, rows)
    np.testing.assert_allclose(tuned.member_proba(X), default.member_proba(X), atol=1e-6)


def test_points_share_a_stack_only_with_the_same_shape():
    a = space.default_point(500)
    b = {**a, "lr": 1e-3, "weight_decay": 1e-2, "label_smoothing": 0.1}
    c = {**a, "width": 256}
    assert space.shape_of(a) == space.shape_of(b) != space.shape_of(c)
    assert space.member_settings(b) == {"lr": 1e-3, "weight_decay": 1e-2, "label_smoothing": 0.1}


# --- trials as members of one stack ---------------------------------------------------


def test_trials_trained_as_one_stack_score_as_trained_one_by_one():
    X, y = heart()
    folds = folds_of(X, y)
    base = {**space.default_point(folds.n_train), "ensemble_size": 1, "depth": 1}
    points = [
        {**base, "lr": 3e-3, "weight_decay": 1e-5, "label_smoothing": 0.0},
        {**base, "lr": 3e-4, "weight_decay": 3e-2, "label_smoothing": 0.15},
    ]
    stacked = search.cross_validate(folds, points, {}, seed=0)
    alone = [search.cross_validate(folds, [point], {}, seed=0)[0] for point in points]
    np.testing.assert_allclose(stacked, alone, atol=1e-9)
    assert stacked[0] != stacked[1]  # the members really trained with their own settings


def test_a_batch_shares_its_first_trials_shape():
    X, y = heart()
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    batch = search.ask_batch(study, 4, 200)
    shapes = {space.shape_of(point) for _, point in batch}
    assert len(shapes) == 1 and len({point["lr"] for _, point in batch}) == 4
    assert all(p["batch_size"] in space.batch_choices(200) for _, p in batch)


def test_auto_stacks_one_trial_at_a_time_on_the_cpu():
    from tabnn.tuning.tune import stack_size

    assert stack_size("auto", "cpu") == 1 and stack_size(3, "cpu") == 3


# --- the search and its result --------------------------------------------------------


@pytest.fixture(scope="module")
def tuned():
    X, y = heart()
    return tabnn.tune(X, y, trials=6, folds=3, trials_per_stack=3, prune=False)


def test_tune_scores_the_default_first_and_refits_the_best(tuned):
    summary = tuned.summary
    assert summary["trials"] == {"complete": 6}
    first = tuned.trials[0]
    assert first["is_default"] and first["params"] == summary["default"]["params"]
    values = [t["value"] for t in tuned.trials]
    assert summary["best"]["value"] == max(values)
    assert all(len(t["fold_scores"]) == 3 for t in tuned.trials)
    assert np.mean(summary["best"]["fold_scores"]) == pytest.approx(summary["best"]["value"])
    best = summary["best"]["params"]
    assert tuned.estimator.get_params()["hidden"] == [best["width"]] * best["depth"]
    assert tuned.estimator.get_params()["lr"] == pytest.approx(best["lr"])
    assert {"model", "most_frequent", "logistic_regression"} <= set(tuned.test["scores"])
    assert tuned.rows["test"] == len(tuned.test_rows) == tuned.test["rows"]
    if not summary["best"]["is_default"]:
        assert summary["paired"]["folds"] == 3
    assert summary["trials_per_minute"] > 0


def test_tune_stops_at_its_time_limit():
    X, y = heart()
    started = time.monotonic()
    result = tabnn.tune(X, y, trials=None, time_limit=4, folds=3, trials_per_stack=2)
    assert time.monotonic() - started < 4 + 30  # the time limit, then the two refits
    assert result.summary["trials"].get("complete", 0) >= 1
    for trial in result.trials:
        assert trial["state"] in ("COMPLETE", "PRUNED", "FAIL")
        if trial["state"] == "FAIL":
            assert trial["reason"] == "stopped by the time limit"


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"trials": 0}, "trials must be a whole number of at least 1"),
        ({"time_limit": 0}, "time_limit must be a number of seconds above 0"),
        ({"trials": None}, "Give a number of trials, a time limit, or both"),
        ({"lr": 0.1}, "tune chooses lr itself"),
        ({"metric": "nope"}, "Unknown metric 'nope'"),
        ({"storage": "tune.db"}, "--storage must be a database URL"),
        ({"trials_per_stack": 0}, "trials_per_stack must be 'auto' or at least 1"),
        ({"trials_per_stack": "many"}, "trials_per_stack must be 'auto' or at least 1"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    X, y = heart()
    with pytest.raises(UsageError, match=message):
        tabnn.tune(X, y, **{"trials": 2, "folds": 3, **settings})


# --- the command line ---------------------------------------------------------------

runner = CliRunner()


def tune_cli(tmp_path, *args):
    out = tmp_path / "model"
    result = runner.invoke(
        app, ["tune", str(HEART), "--target", "target", "--folds", "3", "--out", str(out), *args]
    )
    return result, out


def test_tune_saves_a_model_that_predict_takes(tmp_path):
    db = f"sqlite:///{tmp_path / 'tune.db'}"
    result, out = tune_cli(
        tmp_path, "--trials", "3", "--storage", db, "--study", "heart", "--calibrate"
    )
    assert result.exit_code == 0, result.output
    assert "default model" in result.output and "Test rows" in result.output
    meta = json.loads((out / "tabnn.json").read_text())
    tuning = meta["tuning"]
    assert tuning["study"] == "heart" and tuning["trials"] == {"complete": 3}
    assert tuning["best"]["fold_scores"] and tuning["default"]["is_default"]
    assert "model" in tuning["default_test"]["scores"]
    model = tabnn.load(out)
    assert model.temperature_ is not None  # --calibrate reaches the refit model
    X, _ = heart()
    assert model.predict_proba(X.head(5)).shape == (5, 2)
    page = (out / "report.html").read_text()
    assert 'id="tuning"' in page and "Best 3 trials" in page
    assert 'data-plot="optimization-history"' in page and 'data-plot="fold-scores"' in page
    stored = json.loads((out / "report.json").read_text())["tuning"]
    assert len(stored["all_trials"]) == 3 and stored["all_trials"][0]["distributions"]
    again = runner.invoke(app, ["report", str(out)])  # drawn again from the stored data
    assert again.exit_code == 0, again.output
    assert 'data-plot="optimization-history"' in (out / "report.html").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--metric", "nope"], "Unknown metric 'nope'"),
        (["--trials", "0"], "trials must be a whole number of at least 1"),
        (["--time-limit", "0"], "time_limit must be a number of seconds above 0"),
        (["--storage", "nosuch://where"], "Cannot open the study storage"),
        (["--storage", "sqlite:////no/such/dir/tune.db"], "Cannot open the study storage"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, args, message):
    before = set(tmp_path.iterdir())
    result, out = tune_cli(tmp_path, "--trials", "2", *args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert set(tmp_path.iterdir()) == before


def test_a_study_of_another_dataset_is_refused(tmp_path):
    db = tmp_path / "tune.db"
    X, y = heart()
    tabnn.tune(X, y, trials=1, folds=3, storage=f"sqlite:///{db}", study="s")
    other = tmp_path / "other.csv"
    pd.read_csv(HEART, encoding="utf-8-sig").head(200).to_csv(other, index=False)
    result = runner.invoke(
        app,
        ["tune", str(other), "--target", "target", "--folds", "3", "--trials", "2",
         "--storage", f"sqlite:///{db}", "--study", "s", "--out", str(tmp_path / "m")],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "belongs to another dataset" in " ".join(result.output.split())
    assert not (tmp_path / "m").exists()
    assert len(optuna.load_study(study_name="s", storage=f"sqlite:///{db}").trials) == 1


def finished_trials(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as connection:
        try:
            rows = connection.execute(
                "SELECT COUNT(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')"
            ).fetchone()
        except sqlite3.OperationalError:  # the tables are not there yet
            return 0
    return rows[0]


def test_a_study_killed_midway_resumes_where_it_stopped(tmp_path):
    db = tmp_path / "tune.db"
    command = [
        sys.executable, "-m", "tabnn", "tune", str(HEART), "--target", "target", "--folds",
        "3", "--trials", "40", "--trials-per-stack", "2", "--storage", f"sqlite:///{db}",
        "--study", "killed", "--out", str(tmp_path / "model"), "--quiet",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=tmp_path, start_new_session=True)
    deadline = time.monotonic() + 240
    while finished_trials(db) < 4 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = finished_trials(db)
    assert before >= 4 and not (tmp_path / "model").exists()
    target = before + 2
    command[command.index("40")] = str(target)
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    study = optuna.load_study(study_name="killed", storage=f"sqlite:///{db}")
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") + states.count("PRUNED") == target
    assert "RUNNING" not in states  # the killed run's trials were marked failed
    assert sum(t.user_attrs.get("default", False) for t in study.trials) >= 1
    meta = json.loads((tmp_path / "model" / "tabnn.json").read_text())
    assert sum(meta["tuning"]["trials"].get(s, 0) for s in ("complete", "pruned")) == target


def test_a_search_whose_every_trial_fails_stops_and_says_why(monkeypatch):
    from tabnn.errors import DataError

    def diverges(*args, **kwargs):
        raise DataError("Training diverged: the network's weights are no longer finite.")

    monkeypatch.setattr(search, "cross_validate", diverges)
    X, y = heart()
    with pytest.raises(DataError, match="No trial could be trained; the last one failed: "):
        tabnn.tune(X, y, trials=50, folds=3)
