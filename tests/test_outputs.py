"""What the commands write besides the model: report.html with its data, the evaluation
reports, `tabnn report`, TensorBoard and MLflow runs, progress bars. End to end through
the command line, on small real data with few epochs."""

import json
import sys
from pathlib import Path

import pytest
from rich.console import Console
from test_cli import BAR, EMOTIONS, EMOTIONS_LABELS, IRIS, QUICK, SONAR, TITANIC, invoke

from tabnn.artifact import directory as artifact
from tabnn.cli import render
from tabnn.report.data import REPORT_ARRAYS, REPORT_HTML, REPORT_JSON, ReportData

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def images(page: str) -> int:
    return page.count('src="data:image/png;base64,')


@pytest.fixture(scope="module")
def sonar_model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("outputs") / "sonar"
    result = invoke("train", SONAR, "-t", "-1", *QUICK, "--threshold", "auto", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert f"report: {out / REPORT_HTML}" in result.stdout
    return out


def test_train_stores_the_report_data_and_writes_the_page(sonar_model):
    data = ReportData.load(sonar_model)
    assert data.command == "train" and data.task == "binary"
    assert set(data.predictions) == {"validation", "test"}
    meta = artifact.read_meta(sonar_model)
    assert data.predictions["test"][0].size == meta["training"]["rows"]["test"]
    assert data.threshold == meta["threshold"]["value"] != 0.5
    assert "validation rows" in data.threshold_method
    assert len(data.importance) == 60 and data.history
    page = (sonar_model / REPORT_HTML).read_text()
    # the curves, class balance, 5 plots for each of 2 splits, importance
    assert images(page) >= 13
    assert "Feature importance" in page and "Validation rows" in page


def test_the_report_data_is_part_of_the_checksummed_model(sonar_model, tmp_path):
    meta = artifact.read_meta(sonar_model)
    assert {REPORT_JSON, REPORT_ARRAYS} <= set(meta["checksums"])
    assert REPORT_HTML not in meta["checksums"]  # a rendering: drawn again at will
    artifact.load(sonar_model)


def test_report_command_draws_the_page_again(sonar_model):
    (sonar_model / REPORT_HTML).unlink()
    result = invoke("report", sonar_model)
    assert result.exit_code == 0, result.stderr
    assert images((sonar_model / REPORT_HTML).read_text()) >= 13
    artifact.load(sonar_model)  # the model still loads: the page is outside its checksums


def test_report_command_refuses_a_directory_without_report_data(tmp_path):
    result = invoke("report", tmp_path)
    assert result.exit_code == 2
    assert "holds no report data" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_evaluate_writes_its_report_beside_the_model(sonar_model):
    result = invoke("evaluate", sonar_model, SONAR)
    assert result.exit_code == 0, result.stderr
    folder = sonar_model / "evaluations" / "sonar.csv"
    assert f"report: {folder / REPORT_HTML}" in result.stdout
    data = ReportData.load(folder)
    assert data.command == "evaluate" and list(data.predictions) == ["sonar.csv"]
    assert data.predictions["sonar.csv"][0].size == 208
    assert "sonar.csv" in (folder / REPORT_HTML).read_text()
    artifact.load(sonar_model)


def test_no_report_writes_no_page(tmp_path):
    out = tmp_path / "m"
    result = invoke("train", IRIS, "--no-header", "-t", "-1", *QUICK, "--no-report", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert not (out / REPORT_HTML).exists() and (out / REPORT_JSON).exists()
    assert "report:" not in result.stdout
    evaluated = invoke("evaluate", out, IRIS, "--no-header", "--no-report")
    assert evaluated.exit_code == 0 and not (out / "evaluations").exists()


def test_multilabel_report(tmp_path):
    out = tmp_path / "m"
    targets = ",".join(EMOTIONS_LABELS)
    result = invoke("train", EMOTIONS, "-t", targets, *QUICK, "-o", out)
    assert result.exit_code == 0, result.stderr
    data = ReportData.load(out)
    assert data.task == "multilabel" and data.class_names == EMOTIONS_LABELS
    assert data.predictions["test"][1].shape[1] == 6
    assert images((out / REPORT_HTML).read_text()) >= 10


def test_compare_report_shows_every_fold_of_every_design_and_baseline(tmp_path):
    out = tmp_path / "m"
    result = invoke(
        "compare", TITANIC, "-t", "Survived", "--models", "wide,deep", "--folds", "3",
        *QUICK, "-o", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    data = ReportData.load(out)
    assert data.command == "compare" and data.fold_metric == "accuracy"
    assert {"wide", "deep", "most_frequent", "logistic_regression"} <= set(data.fold_scores)
    assert all(len(scores) == 3 for scores in data.fold_scores.values())
    assert "Comparison" in (out / REPORT_HTML).read_text()


def test_tensorboard_and_mlflow_from_the_command_line(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.chdir(tmp_path)  # MLflow's sqlite store puts artifacts under ./mlruns
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out, board = tmp_path / "m", tmp_path / "tb"
    result = invoke(
        "train", IRIS, "--no-header", "-t", "-1", *QUICK, "--no-report", "-o", out,
        "--tensorboard", board, "--mlflow", uri,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "logged to MLflow" in result.stdout and "logged to TensorBoard" in result.stdout
    history = artifact.read_meta(out)["history"]["epochs"]

    member = EventAccumulator(str(board / "train-iris" / "member_0"))
    member.Reload()
    losses = [e.value for e in member.Scalars("loss/val")]
    assert losses == pytest.approx([r["val_loss"][0] for r in history], rel=1e-6)

    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs(client.search_experiments()[0].experiment_id)
    assert run.data.params["epochs"] == "3" and "test/accuracy" in run.data.metrics
    twins = artifact.read_meta(out)["twins"]  # logged where the twin member earned a weight
    assert twins["weight"] == run.data.metrics.get("twins/weight", 0.0)
    curve = client.get_metric_history(run.info.run_id, "loss/train/member_0")
    assert len(curve) == len(history)
    files = {f.path for f in client.list_artifacts(run.info.run_id, "model")}
    assert "model/tabnn.json" in files


def test_a_missing_tracking_extra_stops_before_training(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if tabnn[mlflow] were not installed
    out = tmp_path / "m"
    result = invoke(
        "train", IRIS, "--no-header", "-t", "-1", *QUICK, "-o", out, "--mlflow", "sqlite:///x.db"
    )
    assert result.exit_code == 2
    assert "pip install 'tabnn[mlflow]'" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_compare_progress_follows_designs_and_epochs(monkeypatch, tmp_path):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(render, "err_console", Console(stderr=True, force_terminal=True))
    result = invoke(
        "compare", IRIS, "--no-header", "-t", "-1", "--models", "wide", "--folds", "2",
        *QUICK, "--no-report", "-o", tmp_path / "m",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert BAR in result.stderr and "epoch 3/3" in result.stderr


def test_no_progress_bars_in_ci(monkeypatch, tmp_path):
    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(render, "err_console", Console(stderr=True, force_terminal=True))
    result = invoke("train", IRIS, "--no-header", "-t", "-1", *QUICK, "-o", tmp_path / "m")
    assert result.exit_code == 0 and BAR not in result.stderr


def test_json_output_names_the_report(tmp_path):
    result = invoke(
        "train", IRIS, "--no-header", "-t", "-1", *QUICK, "-o", tmp_path / "m", "--json"
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["report"].endswith(REPORT_HTML)
