"""One training recipe (issue 21): ``train --stream`` logs its run to TensorBoard and MLflow,
and records its data's provenance, as the in-memory ``train`` does; every workflow's result
declares the fields it carries. Tracked runs are read back through each store's own reader."""

from __future__ import annotations

import json
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest
from test_cli import IRIS, TITANIC, invoke

from tabnn.artifact import directory as artifact
from tabnn.estimator.classifier import TabNNClassifier
from tabnn.workflows.runs import ReadOptions, compare_workflow, train_workflow, tune_workflow

pytestmark = [
    # MLflow's SQLAlchemy models use a loader SQLAlchemy 2.1 deprecates: theirs to fix
    pytest.mark.filterwarnings("ignore::DeprecationWarning:mlflow.*"),
]

MODES = ("--no-stream", "--stream")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """titanic trained in memory and streamed (without the twin member, which a stream
    never has), each tracked to a TensorBoard directory and
    an MLflow store of its own -> {mode: (model dir, TensorBoard dir, MLflow URI)}."""
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    made = {}
    for mode in MODES:
        where = tmp_path_factory.mktemp(mode.strip("-"))
        out, board, uri = where / "model", where / "tb", f"sqlite:///{where / 'mlflow.db'}"
        result = invoke(
            "train", TITANIC, "--target", "Survived", mode, "--epochs", "3", "--no-report",
            "--no-twins",  # a stream has no twin member: the two models are alike without
            "-o", out, "--tensorboard", board, "--mlflow", uri, cwd=where,
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        assert "logged to TensorBoard" in result.stdout and "logged to MLflow" in result.stdout
        made[mode] = out, board, uri
    return made


def meta(out) -> dict:
    return json.loads((out / "tabnn.json").read_text())


def tensorboard_run(board) -> dict:
    """Each run directory under ``board`` (relative name) -> its scalars: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found = {}
    for directory in sorted({p.parent for p in board.rglob("events.out.tfevents.*")}):
        events = EventAccumulator(str(directory), size_guidance={"scalars": 0})
        events.Reload()
        found[str(directory.relative_to(board))] = {
            tag: [(s.step, s.value) for s in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]
        }
    return found


def test_streamed_train_logs_to_tensorboard_as_in_memory_train_does(runs):
    logged = {mode: tensorboard_run(runs[mode][1]) for mode in MODES}
    assert (
        set(logged["--stream"])
        == set(logged["--no-stream"])
        == {
            "train-train",
            "train-train/member_0",
        }
    )
    for run in logged["--no-stream"]:
        assert set(logged["--stream"][run]) == set(logged["--no-stream"][run]), run
    out, board, _ = runs["--stream"]
    epochs = meta(out)["history"]["epochs"]
    member = logged["--stream"]["train-train/member_0"]
    assert member["loss/val"] == [
        (r["epoch"], pytest.approx(r["val_loss"][0], rel=1e-6)) for r in epochs
    ]
    accuracy = meta(out)["evaluation"]["scores"]["model"]["accuracy"]
    assert logged["--stream"]["train-train"]["test/accuracy"] == [
        (len(epochs), pytest.approx(accuracy, rel=1e-6))
    ]


def test_streamed_train_logs_to_mlflow_as_in_memory_train_does(runs):
    from mlflow import MlflowClient

    logged = {}
    for mode in MODES:
        out, _, uri = runs[mode]
        client = MlflowClient(tracking_uri=uri)
        (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
        files = {f.path for f in client.list_artifacts(run.info.run_id, "model")}
        logged[mode] = run, files, client
    memory, streamed = logged["--no-stream"][0], logged["--stream"][0]
    assert streamed.info.status == "FINISHED" and streamed.info.run_name == "train-train"
    assert set(streamed.data.params) == set(memory.data.params)
    assert streamed.data.params["epochs"] == "3" and streamed.data.params["data"] == "train.csv"
    assert set(streamed.data.metrics) == set(memory.data.metrics)
    assert logged["--stream"][1] == logged["--no-stream"][1]
    assert "model/tabnn.json" in logged["--stream"][1]
    out, _, _ = runs["--stream"]
    epochs = meta(out)["history"]["epochs"]
    client = logged["--stream"][2]
    curve = client.get_metric_history(streamed.info.run_id, "loss/train/member_0")
    assert [(m.step, m.value) for m in curve] == [
        (r["epoch"], pytest.approx(r["train_loss"][0], rel=1e-6)) for r in epochs
    ]
    accuracy = meta(out)["evaluation"]["scores"]["model"]["accuracy"]
    assert streamed.data.metrics["test/accuracy"] == pytest.approx(accuracy, rel=1e-6)


def test_a_streamed_model_records_the_provenance_of_an_in_memory_one(runs):
    memory, streamed = (meta(runs[mode][0]) for mode in MODES)
    # one CSV chunk types its columns as the whole file: the same rows, the same digest
    assert streamed["data_fingerprint"] == memory["data_fingerprint"]
    assert streamed["data_fingerprint"]["rows"] == 891
    for key, value in memory["training"].items():
        if key not in ("seconds", "rows"):  # the split differs: a hash of the row number
            assert streamed["training"][key] == value, key
    assert sum(streamed["training"]["rows"].values()) == 891


def test_a_fingerprint_fed_in_parts_is_the_whole_tables():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=100), "b": rng.choice(list("xyz"), 100)})
    parts = artifact.Fingerprint()
    for start in range(0, 100, 30):
        parts.add(frame.iloc[start : start + 30])
    assert parts.result() == artifact.data_fingerprint(frame)


def declares_its_fields(result) -> bool:
    return set(vars(result)) <= {f.name for f in fields(result)}


def test_every_workflow_result_declares_the_fields_it_carries(tmp_path):
    options = ReadOptions(target="-1", header=False)
    quick = {"epochs": 2, "patience": 2}
    trained = train_workflow(IRIS, options, TabNNClassifier(**quick), out=None)
    compared = compare_workflow(
        IRIS, options, ["wide"], out=tmp_path / "m", params=dict(quick), folds=2
    )
    tuned = tune_workflow(IRIS, options, out=None, params={}, settings={"trials": 1, "folds": 2})
    assert all(declares_its_fields(r) for r in (trained, compared, tuned))
    assert tuned.model_dir is None and tuned.source["rows"] == 150
    assert compared.model_dir == tmp_path / "m" and compared.tracking == []
    assert compared.source["file"] == "iris.csv"
