"""Tests for tabnn.cli (and the workflows behind it): exit codes, messages, outputs.

Every failing command is checked for its exit code (2 usage, 1 data or model), a message
that names what was expected and what arrived, no traceback, and nothing written. Models
are trained once per module with ``--epochs 3`` on small real data.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from tabnn.artifact import directory as artifact
from tabnn.cli import app, render
from tabnn.data.splits import encoded_for_split, split_indices
from tabnn.io import dump_json
from tabnn.workflows.runs import ReadOptions, load_training_table

DATA = Path(__file__).resolve().parent / "data"
SONAR = DATA / "sonar" / "sonar.csv"
TITANIC = DATA / "titanic" / "train.csv"
IRIS = DATA / "iris" / "iris.csv"
EMOTIONS = DATA / "multilabel" / "emotions.arff"
EMOTIONS_LABELS = [
    "amazed-suprised",
    "happy-pleased",
    "relaxing-calm",
    "quiet-still",
    "sad-lonely",
    "angry-aggresive",
]
QUICK = ["--epochs", "3"]
BAR = "━"  # rich's progress bar (and table rules, which go to stdout only)

runner = CliRunner()


def invoke(*args, cwd: Path | None = None):
    """Run ``tabnn ARGS`` in-process; no exception may escape the command line."""
    previous = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = runner.invoke(app, [str(a) for a in args])
    finally:
        os.chdir(previous)
    escaped = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not escaped, f"unexpected {result.exception!r}\n{result.stdout}\n{result.stderr}"
    return result


def snapshot(directory: Path) -> set[str]:
    """Every path under ``directory`` (hidden ones too)."""
    return {str(p.relative_to(directory)) for p in directory.rglob("*")}


def assert_fails(result, code: int, *phrases: str) -> str:
    """Exit ``code``, each phrase in the message on stderr, no traceback, no stdout;
    -> the message, unwrapped."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    message = " ".join(result.stderr.replace("│", " ").split())  # undo any wrapping, boxes
    for phrase in phrases:
        assert phrase in message, f"{phrase!r} not in {message!r}"
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    return message


def fails_writing_nothing(tmp_path: Path, code: int, phrases, *args):
    """Run a command that must fail in ``tmp_path`` and leave ``tmp_path`` as it was."""
    before = snapshot(tmp_path)
    result = invoke(*args, cwd=tmp_path)
    assert_fails(result, code, *phrases)
    assert snapshot(tmp_path) == before, "a failing command wrote files"
    return result


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- trained models


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def sonar(models):
    """Binary, header-less: ``--no-header --target -1`` (classes M and R)."""
    result = invoke("train", SONAR, "--no-header", "--target", "-1", *QUICK, "-o", models / "sonar")
    return result, models / "sonar"


@pytest.fixture(scope="module")
def titanic(models):
    """Binary with text, missing values, free text and an ID, read from the raw Kaggle file."""
    out = models / "titanic"
    result = invoke("train", TITANIC, "--target", "Survived", *QUICK, "-o", out)
    return result, out


@pytest.fixture(scope="module")
def iris(models):
    out = models / "iris"
    return invoke("train", IRIS, "--no-header", "-t", "-1", *QUICK, "-o", out, "--json"), out


@pytest.fixture(scope="module")
def emotions(models):
    """Multi-label from the last 6 ARFF attributes."""
    out = models / "emotions"
    return invoke("train", EMOTIONS, "--target=-6:", *QUICK, "-o", out), out


@pytest.fixture(scope="module")
def tags_file(models) -> Path:
    """Two numbers and one column of delimited label sets such as ``calm|jazz``."""
    rng = np.random.default_rng(0)
    lines = ["a,b,tags"]
    for a, b in rng.random((80, 2)).tolist():
        labels = [
            n for n, on in (("jazz", a > 0.5), ("calm", b > 0.5), ("loud", a + b > 1.2)) if on
        ]
        lines.append(f"{a:.3f},{b:.3f},{'|'.join(labels) or 'quiet'}")
    return write(models / "tags.csv", "\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def tags(models, tags_file):
    out = models / "tags"
    result = invoke("train", tags_file, "-t", "tags", "--label-sep", "|", *QUICK, "-o", out)
    return result, out


def meta_of(model_dir: Path) -> dict:
    return json.loads((model_dir / "tabnn.json").read_text())


def read_predictions(text: str) -> pd.DataFrame:
    from io import StringIO

    return pd.read_csv(StringIO(text), keep_default_na=False)


# --------------------------------------------------------------------------- train: happy paths


def test_train_sonar_header_less_binary(sonar):
    result, out = sonar
    assert result.exit_code == 0, result.stderr
    assert "binary task, classes M, R" in result.stdout
    assert "144 train, 32 validation, 32 test" in result.stdout
    for column in ("model", "most frequent", "logistic regression"):
        assert column in result.stdout
    assert {"model.safetensors", "tabnn.json"} <= {p.name for p in out.iterdir()}
    assert f"model saved to {out}" in result.stdout


def test_train_titanic_raw_file_drops_columns_with_reasons(titanic):
    result, out = titanic
    assert result.exit_code == 0, result.stderr
    assert "binary task, classes 0, 1" in result.stdout
    assert "dropped column Name: free text" in result.stdout
    assert "dropped column Ticket: high cardinality" in result.stdout
    schema = meta_of(out)["schema"]
    assert {"Sex", "Embarked"} <= set(schema["categorical"])


def test_train_reports_the_detected_header(titanic):
    result, out = titanic
    assert (
        "read train.csv: 891 rows, 12 columns; first line holds column names (detected; "
        "--header/--no-header to override)" in result.stdout
    )
    assert meta_of(out)["training"]["read_options"]["header"] is True


def test_train_detects_a_header_less_file_and_predict_reads_it_alike(tmp_path):
    out = tmp_path / "m"
    result = invoke("train", SONAR, "-t", "-1", *QUICK, "-o", out)  # no --no-header
    assert result.exit_code == 0, result.stderr
    assert (
        "read sonar.csv: 208 rows, 61 columns; no header row (detected; --header/--no-header "
        "to override), columns named 0..60" in result.stdout
    )
    assert "144 train, 32 validation, 32 test" in result.stdout  # the first line is a row
    training = meta_of(out)["training"]
    assert training["read_options"]["header"] is False  # the resolved choice, not "auto"
    assert training["header_detected"] is True
    chunked = read_predictions(invoke("predict", out, SONAR, "--chunk-size", "7").stdout)
    assert chunked["row"].tolist() == list(range(208))


def test_explicit_header_overrides_detection(tmp_path):
    result = invoke("train", SONAR, "--header", "-t", "-1", *QUICK, "-o", tmp_path / "m")
    assert result.exit_code == 0, result.stderr
    assert "read sonar.csv: 207 rows, 61 columns; first line holds column names\n" in result.stdout
    assert meta_of(tmp_path / "m")["training"]["header_detected"] is False


def test_a_model_without_a_recorded_header_detects_it(sonar, tmp_path):
    """Models from before header detection may lack read_options.header: detect it."""
    model = tmp_path / "m"
    shutil.copytree(sonar[1], model)
    meta = meta_of(model)
    del meta["training"]["read_options"]["header"]
    meta["meta_sha256"] = artifact.meta_digest(meta)  # as an older tabnn would have saved it
    (model / "tabnn.json").write_bytes(dump_json(meta))  # byte for byte as tabnn writes
    result = invoke("predict", model, SONAR)
    assert result.exit_code == 0, result.stderr
    assert len(read_predictions(result.stdout)) == 208


def test_train_iris_multiclass_json(iris):
    result, out = iris
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)  # stdout holds the JSON and nothing else
    assert payload["task"] == "multiclass"
    assert payload["classes"] == ["Iris-setosa", "Iris-versicolor", "Iris-virginica"]
    assert payload["model_dir"] == str(out)
    scores = payload["evaluation"]["scores"]
    assert set(scores) == {"model", "most_frequent", "logistic_regression"}
    for name in scores:
        assert 0 <= scores[name]["accuracy"] <= 1
    assert payload["params"]["epochs"] == 3
    assert result.stderr == ""


def test_train_emotions_arff_multilabel(emotions):
    result, out = emotions
    assert result.exit_code == 0, result.stderr
    assert "multilabel task" in result.stdout
    assert meta_of(out)["schema"]["classes"] == EMOTIONS_LABELS
    for column in ("hamming_loss", "model", "most frequent", "label frequency"):
        assert column in result.stdout


def test_train_delimited_label_column(tags, tags_file):
    result, out = tags
    assert result.exit_code == 0, result.stderr
    assert "multilabel task, classes calm, jazz, loud, quiet" in result.stdout
    evaluated = invoke("evaluate", out, tags_file)  # finds the label column from the model
    assert evaluated.exit_code == 0, evaluated.stderr
    assert "Evaluation on tags.csv: 80 rows" in evaluated.stdout


def test_progress_bar_is_off_when_not_a_terminal(sonar, emotions):
    for result, _ in (sonar, emotions):
        assert BAR not in result.stderr
        assert "epoch 1/" not in result.stderr + result.stdout


def test_progress_bar_is_on_for_a_terminal(monkeypatch, tmp_path):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(render, "err_console", Console(stderr=True, force_terminal=True))
    result = invoke("train", IRIS, "--no-header", "-t", "-1", *QUICK, "-o", tmp_path / "m")
    assert result.exit_code == 0, result.stderr
    assert BAR in result.stderr and "epoch 3/3" in result.stderr
    quiet = invoke("train", IRIS, "--no-header", "-t", "-1", *QUICK, "-o", tmp_path / "m", "-q")
    assert BAR not in quiet.stderr


def test_nan_targets_are_dropped_and_counted(tmp_path):
    rows = [f"{i},{i % 3},{['a', 'b', ''][i % 3] if i % 5 else ''}" for i in range(60)]
    data = write(tmp_path / "t.csv", "x,z,y\n" + "\n".join(rows) + "\n")
    result = invoke("train", data, "-t", "y", *QUICK, "-o", tmp_path / "m")
    assert result.exit_code == 0, result.stderr
    n_missing = sum(1 for i in range(60) if i % 3 == 2 or i % 5 == 0)
    assert f"dropped {n_missing} rows with a missing target" in result.stdout


def test_all_missing_feature_is_dropped_with_its_reason(tmp_path):
    rows = [f"{i * 1.5},,{'ab'[i % 2]}" for i in range(40)]
    data = write(tmp_path / "t.csv", "x,empty,y\n" + "\n".join(rows) + "\n")
    result = invoke("train", data, "-t", "y", *QUICK, "-o", tmp_path / "m")
    assert result.exit_code == 0, result.stderr
    assert "dropped column empty: all values missing" in result.stdout


# --------------------------------------------------------------------------- train: refusals


def test_missing_file(tmp_path):
    fails_writing_nothing(
        tmp_path, 2, ["Data file 'nope.csv' not found"], "train", "nope.csv", "-t", "y"
    )


def test_empty_file(tmp_path):
    write(tmp_path / "empty.csv", "")
    fails_writing_nothing(tmp_path, 1, ["empty.csv is empty"], "train", "empty.csv", "-t", "y")


def test_header_only_file(tmp_path):
    write(tmp_path / "head.csv", "x,y\n")
    fails_writing_nothing(
        tmp_path, 1, ["head.csv has a header but no data rows"], "train", "head.csv", "-t", "y"
    )


def test_unknown_target_suggests_the_closest_names(tmp_path):
    fails_writing_nothing(
        tmp_path,
        2,
        ["Column 'Survivd' not found", "Did you mean 'Survived'?", "Available: PassengerId"],
        "train",
        TITANIC,
        "--target",
        "Survivd",
    )


def test_single_class_target(tmp_path):
    write(tmp_path / "one.csv", "x,y\n" + "".join(f"{i},a\n" for i in range(30)))
    fails_writing_nothing(
        tmp_path,
        1,
        ["Target 'y' has a single class ('a' in all 30 rows)", "at least two classes"],
        "train",
        "one.csv",
        "-t",
        "y",
        *QUICK,
    )


def test_no_target_left_after_dropping_missing_ones(tmp_path):
    write(tmp_path / "t.csv", "x,y\n" + "".join(f"{i},?\n" for i in range(30)))
    fails_writing_nothing(
        tmp_path, 1, ["All 30 rows have a missing target"], "train", "t.csv", "-t", "y", *QUICK
    )


def test_no_usable_feature_left(tmp_path):
    write(tmp_path / "t.csv", "empty,y\n" + "".join(f",{'ab'[i % 2]}\n" for i in range(30)))
    fails_writing_nothing(
        tmp_path,
        1,
        ["No usable feature columns", "- empty: all values missing"],
        "train",
        "t.csv",
        "-t",
        "y",
        *QUICK,
    )


def test_wrong_delimiter(tmp_path):
    fails_writing_nothing(
        tmp_path,
        1,
        ["with delimiter ';' gives a single column", "Use --sep ','"],
        "train",
        TITANIC,
        "-t",
        "Survived",
        "--sep",
        ";",
    )


def test_bytes_that_are_not_utf8(tmp_path):
    (tmp_path / "latin1.csv").write_bytes("x,y\n1,caf\xe9\n2,b\n".encode("latin-1"))
    fails_writing_nothing(
        tmp_path,
        1,
        ["latin1.csv is not UTF-8 text", "byte 0xE9", "(line 2)"],
        "train",
        "latin1.csv",
        "-t",
        "y",
    )


def test_row_with_too_many_fields(tmp_path):
    write(tmp_path / "ragged.csv", "x,y\n1,a\n2,b,3\n4,a\n")
    fails_writing_nothing(
        tmp_path,
        1,
        ["ragged.csv, line 3: expected 2 fields", "saw 3"],
        "train",
        "ragged.csv",
        "-t",
        "y",
    )


def test_out_that_is_not_a_model_directory_is_refused_before_training(tmp_path):
    (tmp_path / "notes").mkdir()
    write(tmp_path / "notes" / "keep.txt", "mine")
    fails_writing_nothing(
        tmp_path,
        2,
        ["Cannot save the model to 'notes'", "not a tabnn model directory"],
        "train",
        SONAR,
        "--no-header",
        "-t",
        "-1",
        "-o",
        "notes",
    )


BAD_TRAIN_OPTIONS = [
    ("--model", "huge", "expected default, wide, deep or mlp:SIZES"),
    ("--model", "mlp:64-x", "expected default, wide, deep or mlp:SIZES"),
    ("--scaling", "minmax", "expected one of auto, standard, robust, quantile, clipped; got"),
    ("--device", "tpu", "expected auto, cpu, cuda or cuda:N; got 'tpu'"),
    ("--batch-size", "big", "expected 'auto' or a whole number >= 1; got 'big'"),
    ("--batch-size", "0", "expected 'auto' or a whole number >= 1; got '0'"),
    ("--activation", "swish", "expected one of relu"),
    ("--norm", "group", "expected one of none, batch, layer"),
    ("--task", "regression", "expected one of binary, multiclass, multilabel"),
    ("--epochs", "0", "expected a whole number >= 1; got 0"),
    ("--threshold", "1", "expected a number in (0, 1) or auto; got '1'"),
    ("--threshold", "best", "expected a number in (0, 1) or auto; got 'best'"),
    ("--threshold-metric", "auc", "expected f1, balanced_accuracy, mcc, recall>=R or precision>=P"),
    ("--threshold-metric", "recall>=1.5", "with R, P in (0, 1]; got 'recall>=1.5'"),
    ("--dropout", "1", "expected a number in [0, 1); got 1"),
]


@pytest.mark.parametrize(
    "option, value, expected",
    BAD_TRAIN_OPTIONS,
    ids=[f"{option}={value}" for option, value, _ in BAD_TRAIN_OPTIONS],
)
def test_bad_option_values_exit_2_before_reading(tmp_path, option, value, expected):
    # the data file does not exist: the option must be refused first
    result = fails_writing_nothing(
        tmp_path,
        2,
        [f"Invalid value for '{option}'", expected],
        "train",
        "missing.csv",
        "-t",
        "y",
        option,
        value,
    )
    assert "Traceback" not in result.stderr


def test_split_sizes_that_leave_no_training_rows(tmp_path):
    fails_writing_nothing(
        tmp_path,
        2,
        ["--val-size + --test-size must be below 1"],
        "train",
        SONAR,
        "--no-header",
        "-t",
        "-1",
        "--val-size",
        "0.5",
        "--test-size",
        "0.5",
    )


# --------------------------------------------------------------------------- info


def test_info_shows_schema_classes_and_metrics(sonar):
    _, out = sonar
    result = invoke("info", out)
    assert result.exit_code == 0, result.stderr
    assert "binary classifier" in result.stdout
    assert "target: 60; classes: M, R" in result.stdout
    assert "numeric (60): 0, 1, 2" in result.stdout
    assert "trained on sonar.csv: 144 train, 32 validation, 32 test rows" in result.stdout
    assert "Test rows at training time: 32 rows" in result.stdout
    network = "network: hidden [128, 128], relu, dropout 0.0, 1 member(s), an efficient "
    assert network + "ensemble of 4 inside each" in result.stdout.replace("\n", " ")
    header = next(line for line in result.stdout.splitlines() if "metric" in line)
    assert header.index("model") < header.index("most frequent") < header.index("logistic")
    payload = json.loads(invoke("info", out, "--json").stdout)
    assert payload["schema"]["classes"] == ["M", "R"]


# --------------------------------------------------------------------------- predict


def test_predict_writes_csv_and_parquet_with_original_labels(sonar, tmp_path):
    _, out = sonar
    result = invoke("predict", out, SONAR, "-o", tmp_path / "p.csv")  # header-less like training
    assert result.exit_code == 0, result.stderr
    assert "wrote 208 predictions" in result.stderr
    csv = pd.read_csv(tmp_path / "p.csv")
    assert list(csv.columns) == ["row", "prediction", "proba_M", "proba_R"]
    assert csv["row"].tolist() == list(range(208))
    assert set(csv["prediction"]) <= {"M", "R"}
    np.testing.assert_allclose(csv["proba_M"] + csv["proba_R"], 1, atol=1e-6)
    assert invoke("predict", out, SONAR, "--no-header", "-o", tmp_path / "p.parquet").exit_code == 0
    parquet = pd.read_parquet(tmp_path / "p.parquet")
    assert list(parquet.columns) == list(csv.columns)
    assert parquet["prediction"].tolist() == csv["prediction"].tolist()
    np.testing.assert_allclose(parquet["proba_R"], csv["proba_R"], rtol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv", "p.parquet"]  # no temp files


def test_predict_to_stdout(sonar):
    result = invoke("predict", sonar[1], SONAR)
    assert result.exit_code == 0, result.stderr
    frame = read_predictions(result.stdout)
    assert len(frame) == 208 and set(frame["prediction"]) <= {"M", "R"}


def test_predict_multilabel_gives_labels_and_per_label_probabilities(emotions, tmp_path):
    _, out = emotions
    result = invoke("predict", out, EMOTIONS, "-o", tmp_path / "p.csv")
    assert result.exit_code == 0, result.stderr
    frame = pd.read_csv(tmp_path / "p.csv", keep_default_na=False)
    assert list(frame.columns) == ["row", "labels"] + [f"proba_{n}" for n in EMOTIONS_LABELS]
    assert len(frame) == 593
    for labels, (_, probas) in zip(frame["labels"], frame.iloc[:, 2:].iterrows()):
        chosen = [n for n in EMOTIONS_LABELS if probas[f"proba_{n}"] >= 0.5]
        assert labels == "|".join(chosen)


def test_predict_delimited_labels(tags, tags_file):
    result = invoke("predict", tags[1], tags_file)
    assert result.exit_code == 0, result.stderr
    frame = read_predictions(result.stdout)
    assert list(frame.columns) == ["row", "labels"] + [
        f"proba_{n}" for n in ("calm", "jazz", "loud", "quiet")
    ]


def test_predict_with_extra_and_without_dropped_columns_unseen_and_missing(titanic, tmp_path):
    _, out = titanic
    dropped = list(meta_of(out)["schema"]["dropped"])
    assert {"Name", "Ticket", "Cabin"} <= set(dropped)
    rows = pd.read_csv(TITANIC).head(12).drop(columns=["Survived", *dropped])
    rows["Comment"] = "not a feature"  # extra column
    rows.loc[0, "Embarked"] = "Atlantis"  # a port never seen in training
    rows.loc[1, "Sex"] = None
    rows.loc[2, ["Age", "Fare"]] = None
    rows.to_csv(tmp_path / "new.csv", index=False)
    result = invoke("predict", out, tmp_path / "new.csv", "-o", tmp_path / "p.csv")
    assert result.exit_code == 0, result.stderr
    frame = pd.read_csv(tmp_path / "p.csv")
    assert frame["row"].tolist() == list(range(12))
    assert set(frame["prediction"]) <= {0, 1}
    assert frame[["proba_0", "proba_1"]].notna().all().all()


def test_threshold_changes_binary_predictions(sonar):
    _, out = sonar
    low = read_predictions(invoke("predict", out, SONAR, "--threshold", "0.05").stdout)
    high = read_predictions(invoke("predict", out, SONAR, "--threshold", "0.95").stdout)
    for frame, threshold in ((low, 0.05), (high, 0.95)):
        expected = np.where(frame["proba_R"] >= threshold, "R", "M")
        assert frame["prediction"].tolist() == expected.tolist()
    assert (low["prediction"] == "R").sum() > (high["prediction"] == "R").sum()


def test_threshold_is_refused_for_a_multiclass_model(iris, tmp_path):
    fails_writing_nothing(
        tmp_path,
        2,
        ["--threshold applies to binary and multi-label models; this model is multiclass"],
        "predict",
        iris[1],
        IRIS,
        "--threshold",
        "0.3",
        "-o",
        "p.csv",
    )


def test_predict_in_chunks_matches_one_chunk(sonar, tmp_path):
    _, out = sonar
    one = invoke("predict", out, SONAR, "-o", tmp_path / "one.csv")
    many = invoke("predict", out, SONAR, "--chunk-size", "50", "-o", tmp_path / "many.csv")
    assert one.exit_code == many.exit_code == 0
    whole, chunked = pd.read_csv(tmp_path / "one.csv"), pd.read_csv(tmp_path / "many.csv")
    assert chunked["row"].tolist() == list(range(208))  # numbering continues across chunks
    pd.testing.assert_frame_equal(whole, chunked, rtol=1e-6)


def _titanic_with_text_age(path: Path, row: int = 5) -> Path:
    frame = pd.read_csv(TITANIC).head(20)
    frame["Age"] = frame["Age"].astype(object)
    frame.loc[row, "Age"] = "twenty"
    frame.to_csv(path, index=False)
    return path


def test_text_in_a_numeric_column_names_column_row_and_value(titanic, tmp_path):
    _titanic_with_text_age(tmp_path / "new.csv")
    fails_writing_nothing(
        tmp_path,
        1,
        ["Column 'Age' was numeric at fit time", "row 5", "'twenty'", "not a number"],
        "predict",
        titanic[1],
        "new.csv",
        "-o",
        "out/sub/p.csv",  # neither the file nor its new folders may be left behind
    )


def test_text_in_a_numeric_column_row_counts_across_chunks(titanic, tmp_path):
    _titanic_with_text_age(tmp_path / "new.csv")
    result = invoke("predict", titanic[1], tmp_path / "new.csv", "--chunk-size", "4")
    assert_fails(result, 1, "row 5", "'twenty'")


def test_predict_needs_the_feature_columns(titanic, tmp_path):
    write(tmp_path / "few.csv", "Pclass,Sex\n1,male\n")
    fails_writing_nothing(
        tmp_path,
        1,
        ["Columns seen at fit time, yet now missing:", "- Age"],
        "predict",
        titanic[1],
        "few.csv",
        "-o",
        "p.csv",
    )


def test_predict_refuses_an_unknown_output_format_before_reading(sonar, tmp_path):
    fails_writing_nothing(
        tmp_path,
        2,
        ["--out must end in .csv or .parquet"],
        "predict",
        sonar[1],
        SONAR,
        "-o",
        "p.xlsx",
    )


@pytest.mark.parametrize(
    "option, value", [("--threshold", "0"), ("--chunk-size", "0")], ids=["threshold", "chunk"]
)
def test_predict_bad_option_values(sonar, tmp_path, option, value):
    fails_writing_nothing(
        tmp_path,
        2,
        [f"Invalid value for '{option}'"],
        "predict",
        sonar[1],
        SONAR,
        option,
        value,
        "-o",
        "p.csv",
    )


# --------------------------------------------------------------------------- evaluate


def test_evaluate_prints_the_metrics(sonar):
    _, out = sonar
    result = invoke("evaluate", out, SONAR)
    assert result.exit_code == 0, result.stderr
    assert "Evaluation on sonar.csv: 208 rows" in result.stdout
    for metric in ("accuracy", "roc_auc", "log_loss", "confusion matrix"):
        assert metric in result.stdout
    payload = json.loads(invoke("evaluate", out, SONAR, "--json").stdout)
    assert payload["rows"] == 208 and 0 <= payload["scores"]["model"]["accuracy"] <= 1
    quiet = invoke("evaluate", out, SONAR, "-q")  # as train, predict and export take it
    assert quiet.exit_code == 0 and quiet.stdout == "" and quiet.stderr == ""
    assert json.loads(invoke("evaluate", out, SONAR, "-q", "--json").stdout)["rows"] == 208


def test_evaluate_without_the_target_column(titanic, tmp_path):
    write(tmp_path / "unlabelled.csv", "Pclass,Sex,Age\n1,male,22\n")
    fails_writing_nothing(
        tmp_path,
        2,
        ["evaluate needs the true labels", "no column 'Survived'", "tabnn predict"],
        "evaluate",
        titanic[1],
        "unlabelled.csv",
    )


# --------------------------------------------------------------------------- broken model dirs


def _model_copy(source: Path, tmp_path: Path, kind: str) -> Path:
    """A model directory in the state ``kind``, at tmp_path / "model"."""
    model = tmp_path / "model"
    if kind == "missing":
        return model
    if kind == "tmp-only":  # a save that died before it finished writing
        shutil.copytree(source, tmp_path / ".model.tmp-0123abcd")
        (tmp_path / ".model.tmp-0123abcd" / "tabnn.json").unlink()  # incomplete: no recovery
        return model
    shutil.copytree(source, model)
    if kind == "no-weights":
        (model / "model.safetensors").unlink()
    elif kind == "tampered":
        weights = bytearray((model / "model.safetensors").read_bytes())
        weights[-5] ^= 0x01
        (model / "model.safetensors").write_bytes(bytes(weights))
    elif kind == "newer":
        meta = meta_of(model)
        meta["format_version"] += 1
        meta["tabnn_version"] = "99.0"
        (model / "tabnn.json").write_text(json.dumps(meta))
    return model


BROKEN = {
    "missing": (2, ["Model directory", "does not exist"]),
    "tmp-only": (2, ["does not exist", "A save was interrupted (half-written)"]),
    "no-weights": (1, ["has tabnn.json but no model.safetensors", "half-written"]),
    "tampered": (1, ["does not match the checksum", "modified after saving or is corrupt"]),
    "newer": (1, ["was made by tabnn 99.0", "upgrade tabnn"]),
}


@pytest.mark.parametrize("command", ["predict", "evaluate", "info"])
@pytest.mark.parametrize("kind", list(BROKEN))
def test_broken_model_directory(sonar, tmp_path, kind, command):
    _model_copy(sonar[1], tmp_path, kind)
    args = {
        "predict": ["predict", "model", SONAR, "-o", "p.csv"],
        "evaluate": ["evaluate", "model", SONAR],
        "info": ["info", "model"],
    }[command]
    code, phrases = BROKEN[kind]
    fails_writing_nothing(tmp_path, code, phrases, *args)


# --------------------------------------------------------------------------- demo


def test_demo_predicts_held_out_rows_beside_their_true_label(tmp_path):
    result = invoke("demo", "--quiet", "-o", tmp_path / "demo")
    assert result.exit_code == 0, result.stderr
    assert "5 of the 32 test rows, predicted by the saved model" in result.stdout
    cells = [
        [cell.strip() for cell in line.split("│")[1:-1]] for line in result.stdout.splitlines()
    ]
    shown = [row for row in cells if row and row[-1] in ("ok", "wrong")]
    assert len(shown) == 5
    # the rows are held-out test rows of the split, shown with their true label
    table = load_training_table(SONAR, ReadOptions(header=False, target="-1"))
    y, task = encoded_for_split(table.y)
    _, _, test = split_indices(y, task, val_size=0.15, test_size=0.15, seed=0)
    labels = pd.read_csv(SONAR, header=None).iloc[:, -1]
    for row, true, predicted, _, p_r, verdict in shown:
        assert int(row) in set(table.file_rows[test])
        assert true == labels[int(row)]
        assert predicted == ("R" if float(p_r) >= 0.5 else "M")
        assert verdict == ("ok" if predicted == true else "wrong")
    assert BAR not in result.stderr


# --------------------------------------------------------------------------- real processes


def _tabnn(*args, cwd: Path) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("tabnn")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "tabnn.cli"]
    return subprocess.run(
        [*command, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_console_script_usage_error_has_no_traceback(tmp_path):
    done = _tabnn("train", "nope.csv", "--target", "y", cwd=tmp_path)
    assert done.returncode == 2
    assert "Data file 'nope.csv' not found" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_console_script_model_error_has_no_traceback(sonar, tmp_path):
    _model_copy(sonar[1], tmp_path, "tampered")
    done = _tabnn("info", "model", cwd=tmp_path)
    assert done.returncode == 1
    assert "does not match the checksum" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


# --------------------------------------------------------------------------- start-up

# what `tabnn --help` and `tabnn --version` must not load (they answer at once)
HEAVY = ("torch", "pandas", "numpy", "sklearn", "scipy", "matplotlib", "safetensors")
STARTUP = """
import json, sys
from typer.testing import CliRunner
from tabnn.cli import app
for args in (["--help"], ["--version"], ["train", "--help"], ["predict", "--help"]):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (args, result.output)
heavy = [*sys.argv[1:], "tabnn.estimator.classifier"]
print(json.dumps([n for n in heavy if any(m == n or m.startswith(n + ".") for m in sys.modules)]))
"""


def test_help_and_version_load_no_heavy_library():
    done = subprocess.run(
        [sys.executable, "-c", STARTUP, *HEAVY], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [], "tabnn --help loaded these"


@pytest.mark.parametrize("module", ["tabnn", "tabnn.cli"])
def test_python_dash_m_runs_the_command_line(module):
    done = subprocess.run(
        [sys.executable, "-m", module, "--version"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("tabnn ")


def test_val_size_zero_trains_on_every_training_row_without_early_stopping(tmp_path):
    from tabnn.estimator.classifier import TabNNClassifier
    from tabnn.workflows.runs import ReadOptions, train_workflow

    data = tmp_path / "t.csv"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": x[:, 0] > 0}).to_csv(data)
    estimator = TabNNClassifier(epochs=7)
    result = train_workflow(data, ReadOptions(target="y"), estimator, out=None, val_size=0)
    assert result.rows["validation"] == 0
    assert estimator.history_.epochs[-1]["val_loss"] == [None]  # nothing held out inside
    assert len(estimator.history_.epochs) == 7


def test_train_bagging_folds_the_training_and_validation_rows_and_predicts(tmp_path):
    """--bagging K: the validation split joins the training rows (each fold member stops
    on its own fold), the test rows stay untouched, and the saved bag predicts."""
    out = tmp_path / "bag"
    result = invoke(
        "train", SONAR, "-t", "60", "--bagging", "3", "--threshold", "auto", *QUICK,
        "--no-report", "-o", out, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["rows"]["validation"] == 0
    assert payload["rows"]["train"] + payload["rows"]["test"] == 208
    assert payload["params"]["bagging"] == 3
    assert meta_of(out)["model_config"]["n_members"] == 3
    shown = invoke("train", SONAR, "-t", "60", "--bagging", "3", *QUICK, "-o", tmp_path / "again")
    assert "bagged over 3 folds" in shown.stdout and "0 validation" not in shown.stdout
    page = (tmp_path / "again" / "report.html").read_text()
    assert "train (bagged over 3 folds)" in page and ">validation<" not in page
    predicted = invoke("predict", out, SONAR, "--no-header")
    assert predicted.exit_code == 0, predicted.stderr
    assert len(read_predictions(predicted.stdout)) == 208


@pytest.mark.parametrize("value", ["0", "-2", "x"])
def test_train_bagging_needs_a_whole_number_of_folds(tmp_path, value):
    fails_writing_nothing(
        tmp_path, 2, ["--bagging"], "train", SONAR, "-t", "60", "--bagging", value
    )


def test_train_preset_best_bags_five_folds_and_bagging_1_leaves_the_bag_out(tmp_path):
    best = invoke(
        "train", SONAR, "-t", "60", "--preset", "best", *QUICK, "--no-report",
        "-o", tmp_path / "best", "--json",
    )  # fmt: skip
    assert best.exit_code == 0, best.stderr
    payload = json.loads(best.stdout)
    assert payload["bagging"] == 5 and payload["params"]["preset"] == "best"
    config = meta_of(tmp_path / "best")["model_config"]
    assert config["n_members"] == 5 and config["numeric_embedding"] == "ple"
    one = invoke(
        "train", SONAR, "-t", "60", "--preset", "best", "--bagging", "1", *QUICK,
        "--no-report", "-o", tmp_path / "one", "--json",
    )  # fmt: skip
    assert one.exit_code == 0, one.stderr
    assert json.loads(one.stdout)["bagging"] is None
    assert meta_of(tmp_path / "one")["model_config"]["n_members"] == 1
    info = invoke("info", tmp_path / "best")
    assert "bagged over 5 folds (preset best)" in info.stdout
    # every training row is held out once by the bag: no "0 validation" rows
    assert "train (each held out once by the bag of 5)" in info.stdout
    assert "validation" not in info.stdout.split("trained on")[1].split("\n")[0]
    assert "bagged" not in invoke("info", tmp_path / "one").stdout


@pytest.mark.parametrize(
    "args, phrases",
    [(["--preset", "slow"], ["--preset", "fast, best"]),
     (["--preset", "best", "--stream"], ["--preset fast"])],
)  # fmt: skip
def test_train_preset_errors_name_the_choice(tmp_path, args, phrases):
    fails_writing_nothing(tmp_path, 2, phrases, "train", SONAR, "-t", "60", *args)


def test_compare_accepts_presets_as_models(tmp_path):
    result = invoke(
        "compare", SONAR, "-t", "60", "--models", "fast,best", "--folds", "2", *QUICK,
        "--no-report", "-o", tmp_path / "m", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert set(payload["comparison"]["ranking"]) == {"fast", "best"}
    unknown = invoke("compare", SONAR, "-t", "60", "--models", "fast,quick", cwd=tmp_path)
    assert unknown.exit_code == 2 and "Or a preset: fast, best" in unknown.stderr


@pytest.mark.parametrize(
    "models, phrase",
    [("default,fast", "'default' and 'fast' are the same design"), ("wide,wide", "'wide' twice")],
)
def test_compare_refuses_one_model_named_twice(tmp_path, models, phrase):
    # under --preset fast, "default" is "fast": two names would rank a model against itself
    fails_writing_nothing(tmp_path, 2, [phrase], "compare", SONAR, "-t", "60", "--models", models)
