"""Tracking: what reaches TensorBoard and MLflow, read back through their own readers."""

import os
import re
import shutil
import socket
import sys
import time

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from tabnn.errors import UsageError
from tabnn.estimator.classifier import TabNNClassifier
from tabnn.workflows import tracking
from tabnn.workflows.tracking import (
    MlflowTracker,
    MultiTracker,
    TensorBoardTracker,
    Tracker,
    open_tracker,
)

pytestmark = [
    # MLflow's SQLAlchemy models use a loader SQLAlchemy 2.1 deprecates: theirs to fix
    pytest.mark.filterwarnings("ignore::DeprecationWarning:mlflow.*"),
]

MEMBERS = ["fold_1", "fold_2", "fold_3"]


def records(epochs=6, members=3):
    """Epoch records as fit_stack makes them: with 3 members, member 1 stops after epoch 3
    (None from then on) and member 2 has no validation rows (None throughout)."""
    rng = np.random.default_rng(0)
    out = []
    for epoch in range(1, epochs + 1):
        train = [float(v) for v in rng.uniform(0.1, 1.0, members)]
        val = [float(v) for v in rng.uniform(0.1, 1.0, members)]
        accuracy = [float(v) for v in rng.uniform(0.5, 1.0, members)]
        if members == 3:
            if epoch > 3:
                train[1] = val[1] = accuracy[1] = None
            val[2] = accuracy[2] = None
        out.append(
            {
                "epoch": epoch,
                "train_loss": train,
                "val_loss": val,
                "val_accuracy": accuracy,
                "lr": 1e-3 / epoch,
            }
        )
    return out


def expected(history, key, member):
    """(epoch, value) pairs of one member's quantity, the Nones left out."""
    return [(r["epoch"], r[key][member]) for r in history if r[key][member] is not None]


# --- TensorBoard ---------------------------------------------------------------------


def scalars(run_dir, tag):
    """(step, value) pairs of one tag in one TensorBoard run directory."""
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    if tag not in events.Tags()["scalars"]:
        return []
    return [(s.step, pytest.approx(s.value, rel=1e-6)) for s in events.Scalars(tag)]


def hparams(run_dir):
    """The parameters and the metric tags of a run's HParams summaries."""
    events = EventAccumulator(str(run_dir))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    params = {
        name: getattr(value, value.WhichOneof("kind"))
        for name, value in start.session_start_info.hparams.items()
    }
    return params, [m.name.tag for m in experiment.experiment.metric_infos]


def test_tensorboard_writes_every_member_every_epoch(tmp_path):
    history = records()
    with open_tracker(tmp_path / "tb", run_name="train", member_names=MEMBERS) as tracker:
        assert isinstance(tracker, TensorBoardTracker)
        tracker.log_params({"lr": 0.001, "model": {"hidden": [64, 32], "dropout": 0.1}})
        for record in history:
            tracker.on_epoch(record)
        tracker.log_metrics({"test": {"accuracy": 0.75, "confusion": [[1, 2], [3, 4]]}})
    run = tmp_path / "tb" / "train"
    for k, member in enumerate(MEMBERS):
        for key, tag in tracking.EPOCH_TAGS.items():
            assert scalars(run / member, tag) == expected(history, key, k), (member, tag)
    assert scalars(run, "lr") == [(r["epoch"], r["lr"]) for r in history]
    assert scalars(run, "test/accuracy") == [(6, 0.75)]  # at the curves' last epoch
    assert scalars(run, "test/confusion") == []
    params, metric_tags = hparams(run)
    assert params == {"lr": 0.001, "model/hidden": "[64, 32]", "model/dropout": 0.1}
    assert metric_tags == ["test/accuracy"]


def test_tensorboard_runs_get_their_own_directories_and_prefixes_separate_fits(tmp_path):
    record = records(epochs=1, members=2)[0]
    for _ in range(2):
        with open_tracker(tmp_path, run_name="cv run") as tracker:
            for design in ("wide/", "deep/"):
                tracker.on_epoch(record, prefix=design)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cv_run", "cv_run-2"]
    run = tmp_path / "cv_run"
    assert scalars(run / "wide" / "member_0", "loss/train") == [(1, record["train_loss"][0])]
    assert (run / "deep" / "member_1").is_dir()
    assert [len(scalars(run, f"{design}/lr")) for design in ("wide", "deep")] == [1, 1]


def test_tensorboard_refuses_a_file_for_a_directory(tmp_path):
    (tmp_path / "taken").write_text("")
    with pytest.raises(UsageError, match="is a file; give it a directory"):
        open_tracker(tmp_path / "taken", run_name="train")


# --- MLflow ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory):
    """A migrated, empty SQLite store: creating one runs MLflow's migrations (about a
    second), so each test copies this one instead."""
    path = tmp_path_factory.mktemp("mlflow") / "empty.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(empty_store, tmp_path, monkeypatch):
    """A store of this test's own; artifacts land in ./mlruns, so under tmp_path."""
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    monkeypatch.chdir(tmp_path)
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def history_of(client, run_id, key):
    return [(m.step, m.value) for m in client.get_metric_history(run_id, key)]


def test_mlflow_logs_params_curves_scores_and_the_model(store, tmp_path):
    history = records()
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "tabnn.json").write_text("{}")
    (model_dir / "model.safetensors").write_bytes(b"0")
    params = {"lr": 0.001, "model": {"hidden": [64, 32]}, "columns": "x" * 7000, "drop": None}
    with open_tracker(
        mlflow=store, run_name="train", member_names=MEMBERS, experiment="tabnn"
    ) as tracker:
        assert isinstance(tracker, MlflowTracker)
        tracker.log_params(params)
        for record in history:
            tracker.on_epoch(record)
        tracker.log_metrics({"test": {"accuracy": 0.75, "f1": None, "confusion": [[1, 2]]}})
        tracker.log_artifacts(model_dir)
    client = MlflowClient(tracking_uri=store)
    run = client.get_run(tracker.run_id)
    assert (run.info.run_name, run.info.status) == ("train", "FINISHED")
    assert client.get_experiment(run.info.experiment_id).name == "tabnn"
    logged = run.data.params
    assert {k: logged[k] for k in ("lr", "model/hidden", "drop")} == {
        "lr": "0.001",
        "model/hidden": "[64, 32]",
        "drop": "None",
    }
    assert len(logged["columns"]) == 6000 and logged["columns"].endswith("...")
    for k, member in enumerate(MEMBERS):
        for key, tag in tracking.EPOCH_TAGS.items():
            got = history_of(client, tracker.run_id, f"{tag}/{member}")
            assert got == expected(history, key, k), (member, tag)
    assert "loss/val/fold_3" not in run.data.metrics  # no validation rows: nothing logged
    assert history_of(client, tracker.run_id, "lr") == [(r["epoch"], r["lr"]) for r in history]
    assert run.data.metrics["test/accuracy"] == 0.75
    assert not any(name.startswith(("test/f1", "test/confusion")) for name in run.data.metrics)
    files = [a.path for a in client.list_artifacts(tracker.run_id, "model")]
    assert sorted(files) == ["model/model.safetensors", "model/tabnn.json"]


def test_mlflow_sends_epochs_in_full_batches(store, monkeypatch):
    sent = []  # metrics per request; the store is left out, the readback test covers it

    def log_batch(self, run_id, metrics=(), **_):
        sent.append(len(metrics))

    monkeypatch.setattr(MlflowClient, "log_batch", log_batch)
    names = [f"seed_{i}" for i in range(10)]
    with open_tracker(mlflow=store, run_name="ensemble", member_names=names) as tracker:
        for epoch in range(1, 201):
            values = [0.5] * 10
            tracker.on_epoch(
                {
                    "epoch": epoch,
                    "train_loss": values,
                    "val_loss": values,
                    "val_accuracy": values,
                    "lr": 0.01,
                }
            )
    # 200 epochs x (10 members x 3 + lr) = 6200 values, at most 1000 to a request
    assert sent == [1000] * 6 + [200]


def test_mlflow_run_fails_with_the_block_and_prefixes_keep_fits_apart(store):
    with pytest.raises(RuntimeError), open_tracker(mlflow=store, run_name="compare") as tracker:
        tracker.on_epoch(records(members=1)[0], prefix="wide/")
        tracker.log_metrics({"accuracy": 0.5}, prefix="wide/")
        raise RuntimeError("training broke")
    run = MlflowClient(tracking_uri=store).get_run(tracker.run_id)
    assert run.info.status == "FAILED"
    assert set(run.data.metrics) == {
        "wide/loss/train/member_0",
        "wide/loss/val/member_0",
        "wide/accuracy/val/member_0",
        "wide/lr",
        "wide/accuracy",
    }


@pytest.fixture
def closed_port():
    """A local port that refuses connections: bound, never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.mark.parametrize(
    "uri", ["nosuch://store", "http://127.0.0.1:{port}"], ids=["scheme", "down"]
)
def test_mlflow_bad_uri_is_a_usage_error_before_anything_is_written(
    uri, closed_port, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    uri = uri.format(port=closed_port)
    start = time.monotonic()
    with pytest.raises(UsageError, match=f"Cannot log to MLflow at '{re.escape(uri)}'"):
        open_tracker(tmp_path / "tb", uri, run_name="train")
    assert time.monotonic() - start < 30  # not MLflow's minutes of retries
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ  # set for the opening only
    assert list(tmp_path.iterdir()) == []


# --- both, neither, missing extras -----------------------------------------------------


def test_both_trackers_get_everything_from_the_engine(store, tmp_path):
    with open_tracker(tmp_path / "tb", store, run_name="fit") as tracker:
        assert isinstance(tracker, MultiTracker)
        x = np.random.default_rng(0).normal(size=(120, 3))
        y = (x[:, 0] > 0).astype(int)
        model = TabNNClassifier(hidden=[8], epochs=4, n_members=2, batch_size=32, dropout=0.0)
        model.fit(x, y, on_epoch=tracker.on_epoch)
    history = model.history_.epochs
    client, run_id = MlflowClient(tracking_uri=store), tracker.trackers[0].run_id
    for k in range(2):
        for key, tag in tracking.EPOCH_TAGS.items():
            points = expected(history, key, k)
            assert scalars(tmp_path / "tb" / "fit" / f"member_{k}", tag) == points
            assert history_of(client, run_id, f"{tag}/member_{k}") == points
    assert len(tracker.destinations) == 2


def test_no_destinations_track_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open_tracker(run_name="train", member_names=MEMBERS) as tracker:
        assert type(tracker) is Tracker
        tracker.log_params({"lr": 0.1})
        for record in records():
            tracker.on_epoch(record)
        tracker.log_metrics({"accuracy": 1.0})
        tracker.log_artifacts(tmp_path)
    assert tracker.destinations == []
    assert list(tmp_path.iterdir()) == []


TENSORBOARD_MISSING = (
    "--tensorboard needs the tensorboard package: pip install 'tabnn[tensorboard]'"
)
MLFLOW_MISSING = "--mlflow needs the mlflow package: pip install 'tabnn[mlflow]'"


@pytest.mark.parametrize(
    "package, options, message",
    [
        ("tensorboard", {"tensorboard": "tb"}, TENSORBOARD_MISSING),
        ("mlflow", {"mlflow": "sqlite:///m.db"}, MLFLOW_MISSING),
        ("mlflow", {"tensorboard": "tb", "mlflow": "sqlite:///m.db"}, MLFLOW_MISSING),
    ],
    ids=["tensorboard", "mlflow", "mlflow-with-tensorboard"],
)
def test_a_missing_extra_says_what_to_install_before_writing(
    tmp_path, monkeypatch, package, options, message
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, package, None)  # `import package` now fails
    with pytest.raises(UsageError, match=re.escape(message)):
        open_tracker(run_name="train", **options)
    assert list(tmp_path.iterdir()) == []


def test_member_names_must_match_the_records(tmp_path):
    with (
        open_tracker(tmp_path, run_name="train", member_names=["a", "b"]) as tracker,
        pytest.raises(ValueError, match="opened for 2 members"),
    ):
        tracker.on_epoch(records(members=3)[0])


@pytest.mark.parametrize("error", [RuntimeError("training failed"), KeyboardInterrupt()])
def test_a_failed_tensorboard_run_leaves_no_event_files(tmp_path, error):
    (tmp_path / "runs" / "earlier").mkdir(parents=True)
    with pytest.raises(type(error)), open_tracker(tmp_path / "runs", run_name="train") as tracker:
        tracker.on_epoch(records(epochs=1, members=2)[0])
        raise error
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["earlier"]
    with pytest.raises(RuntimeError), open_tracker(tmp_path / "new" / "runs", run_name="t"):
        raise RuntimeError("failed")
    assert not (tmp_path / "new").exists()  # the directories it made are gone too
