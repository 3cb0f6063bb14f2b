"""Robustness: wide tables train in seconds (permutation importance within a budget, and
skipped when no page shows it), and inputs that used to end in a traceback end in a clear
message with the right exit code and nothing written (nested Parquet columns, files named
.arff that are not ARFF, sparse ARFF, a tabnn.json of another shape for ``tabnn info``,
designs with layers too wide, user values that look like rich markup, duplicate column
names given to the Python API).
"""

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from test_cli import assert_fails, invoke, snapshot

from tabnn import TabNNClassifier
from tabnn.artifact import directory as artifact
from tabnn.data import read_table
from tabnn.errors import DataError, TabnnError
from tabnn.features.preprocess import EncodedInputs
from tabnn.io import dump_json
from tabnn.nn.config import ModelConfig
from tabnn.nn.mlp import TabularMLP
from tabnn.report import builders
from tabnn.report.contributions import input_contributions
from tabnn.report.data import ReportData
from tabnn.report.html import render_html
from tabnn.report.summaries import permutation_importance

QUICK = ["--epochs", "2"]


# --------------------------------------------------------------------------- helpers


def fails_writing_nothing(tmp_path: Path, code: int, phrases, *args) -> str:
    before = snapshot(tmp_path)
    message = assert_fails(invoke(*args, cwd=tmp_path), code, *phrases)
    assert snapshot(tmp_path) == before, "a failing command wrote files"
    return message


def wide_table(rows: int, columns: int, seed: int = 0) -> pd.DataFrame:
    """``columns`` numeric columns; the label follows the first five."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(rows, columns)), columns=[f"x{i}" for i in range(columns)])
    signal = X.iloc[:, :5].sum(axis=1)
    X["y"] = np.where(signal > signal.median(), "yes", "no")
    return X


def splits_of(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    a, b = int(n * 0.7), int(n * 0.85)
    return {"train": np.sort(order[:a]), "validation": np.sort(order[a:b]), "test": order[b:]}


def count_predictions(estimator, limit: int):
    """Wrap ``estimator.predict_proba`` to count the cells (rows x columns) it is given;
    past ``limit`` cells it raises, so an unbounded importance fails fast."""
    seen = {"cells": 0, "calls": 0}
    predict = estimator.predict_proba

    def counted(X):
        if isinstance(X, EncodedInputs):
            cells = len(X.numeric) * (X.numeric.shape[1] + X.categorical.shape[1])
        else:
            cells = int(np.prod(np.shape(X)))
        seen["cells"] += cells
        seen["calls"] += 1
        assert seen["cells"] <= limit, f"more than {limit:,} cells predicted"
        return predict(X)

    estimator.predict_proba = counted
    return seen


# --------------------------------------------------------------------------- 1. wide tables


@pytest.fixture(scope="module")
def wide_fit():
    """A 60-row, 2,000-column table split as tabnn train splits it, and a model on it."""
    frame = wide_table(60, 2000)
    X, y = frame.drop(columns="y"), frame["y"]
    splits = splits_of(len(X))
    clf = TabNNClassifier(epochs=2, random_state=0).fit(
        X.iloc[splits["train"]], y.iloc[splits["train"]]
    )
    return clf, X, y, splits


def test_importance_on_a_wide_table_stays_within_its_budget(wide_fit):
    clf, X, y, splits = wide_fit
    count_predictions(clf, limit=60_000_000)  # HEAD predicted 108 million cells
    started = time.perf_counter()
    try:
        data = builders.train_report(clf, X, y, splits, {}, "wide.csv")
    finally:
        del clf.predict_proba
    assert time.perf_counter() - started < 30
    scope = data.importance_scope
    assert scope["columns_available"] == 2000 and 20 <= scope["columns"] < 2000
    assert scope["rows"] == scope["rows_available"] == len(splits["validation"])
    assert scope["chosen_by"] and "multiply-adds" in scope["budget"]
    assert len(data.importance) == scope["columns"]
    # what was measured, and how, is stored with the report and said on the page
    again = ReportData.from_dict(json.loads(data.files()["report.json"]))
    assert again.importance_scope == scope
    page = render_html(again)
    assert f"only the {scope['columns']:,} of 2,000 columns" in page


def test_train_report_skips_importance_when_no_page_shows_it(wide_fit):
    clf, X, y, splits = wide_fit
    seen = count_predictions(clf, limit=10**12)
    try:
        data = builders.train_report(clf, X, y, splits, {}, "wide.csv", with_importance=False)
    finally:
        del clf.predict_proba
    assert data.importance == {}
    assert "--no-report" in data.importance_scope["skipped"]
    # only the held-out predictions (validation and test rows), no shuffled copies
    assert seen["cells"] == (len(splits["validation"]) + len(splits["test"])) * 2000
    assert "Permutation importance was not computed" in render_html(data)


@pytest.mark.parametrize(
    ("rows", "columns", "per_row", "expected"),
    [
        (500, 14, 70_000, (500, 14)),  # narrow: every row (up to 2,000) and column
        (5000, 14, 70_000, (2000, 14)),
        (9, 2000, 580_000, (9, 638)),  # wide, few rows: the strongest columns
        (1000, 2000, 580_000, (200, 28)),  # wide, many rows: 200 rows first
    ],
)
def test_importance_plan(rows, columns, per_row, expected):
    assert builders.importance_plan(rows, columns, per_row) == expected
    used_rows, measured = expected
    if measured < columns:  # within the budget
        work = used_rows * measured * builders.IMPORTANCE_REPEATS * per_row
        assert work <= builders.IMPORTANCE_WORK


def test_importance_plan_measures_at_least_the_plotted_columns():
    rows, measured = builders.importance_plan(2000, 100_000, 30_000_000)
    assert measured >= builders.IMPORTANCE_MIN_COLUMNS and rows >= 1


def test_a_limited_importance_measures_the_columns_the_model_uses(monkeypatch):
    frame = wide_table(400, 120, seed=1)
    X, y = frame.drop(columns="y"), frame["y"]
    splits = splits_of(len(X), seed=1)
    clf = TabNNClassifier(epochs=60, random_state=0, dropout=0.0).fit(
        X.iloc[splits["train"]], y.iloc[splits["train"]]
    )
    monkeypatch.setattr(builders, "IMPORTANCE_WORK", 2_000_000_000)  # a fraction of the columns
    scores, scope = builders.importance(
        clf, X.iloc[splits["validation"]], y.iloc[splits["validation"]]
    )
    assert scope["columns"] < 120 and scope["chosen_by"]
    signal = {f"x{i}" for i in range(5)}
    assert signal <= set(scores)  # the proxy kept every column the label depends on
    top = sorted(scores, key=lambda c: -scores[c][0])[:5]
    assert len(signal & set(top)) >= 4


def test_input_contributions_follow_the_first_layer():
    config = ModelConfig(
        n_numeric=2, indicator_columns=[1], cardinalities=[3], scaling="standard",
        n_quantiles=0, n_outputs=1, hidden=[4], n_members=2, embedding_dims=[0],
    )  # fmt: skip
    network = TabularMLP(config)
    for k in range(2):
        network.reset_member(k, k)
    with torch.no_grad():
        network.hidden[0].weight[:, 0] = 0.0  # numeric column 0 cannot move the first layer
    x_num = np.array([[1.0, np.nan], [2.0, 3.0], [3.0, np.nan], [4.0, 1.0]], dtype=np.float32)
    x_cat = np.array([[0], [1], [2], [1]])
    strength = input_contributions(network, x_num, x_cat)
    assert strength.shape == (3,)
    assert strength[0] == 0 and strength[1] > 0 and strength[2] > 0


def test_permutation_importance_on_blocks_of_arrays_matches_the_frame():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 120)
    X = pd.DataFrame({"signal": y + rng.normal(0, 0.5, 120), "noise": rng.normal(size=120)})
    codes = rng.integers(0, 3, (120, 1))
    X["code"] = codes[:, 0]

    def from_frame(frame):
        return 1 / (1 + np.exp(-4 * (frame["signal"].to_numpy() - 0.5)))

    def from_blocks(blocks):
        return 1 / (1 + np.exp(-4 * (blocks.numeric[:, 0] - 0.5)))

    expected = permutation_importance(from_frame, X, y, "binary", n_repeats=3, seed=4)
    blocks = EncodedInputs(X[["signal", "noise"]].to_numpy(np.float32), codes)
    got = permutation_importance(
        from_blocks, blocks, y, "binary", n_repeats=3, seed=4, names=["signal", "noise", "code"]
    )
    assert list(got) == ["signal", "noise", "code"]
    assert got["signal"] == pytest.approx(expected["signal"], rel=1e-5)
    assert got["noise"] == got["code"] == (0.0, 0.0)
    only = permutation_importance(from_frame, X, y, "binary", n_repeats=3, columns=["noise"])
    assert list(only) == ["noise"]


def test_a_column_encoded_as_several_is_shuffled_as_one():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 100)
    signal, noise = y + rng.normal(0, 0.5, 100), rng.normal(size=100)

    def from_frame(frame):
        return 1 / (1 + np.exp(-4 * (frame["signal"].to_numpy() - 0.5)))

    def from_parts(blocks):  # both parts of 'when' must move together to keep a meaning
        a, b = blocks.numeric[:, 0], blocks.numeric[:, 1]
        return np.where(a == b, 1 / (1 + np.exp(-4 * (a.astype(float) - 0.5))), 0.5)

    frame = pd.DataFrame({"signal": signal, "noise": noise})
    expected = permutation_importance(from_frame, frame, y, "binary", n_repeats=3, seed=2)
    blocks = EncodedInputs(np.column_stack([signal, signal, noise]), np.zeros((100, 0), int))
    got = permutation_importance(
        from_parts, blocks, y, "binary", n_repeats=3, seed=2, names=["when", "when", "noise"]
    )
    assert list(got) == ["when", "noise"]
    assert got["when"] == pytest.approx(expected["signal"])


def test_the_importance_of_a_date_column_is_reported_under_its_name():
    rng = np.random.default_rng(0)
    days = pd.date_range("2020-01-01", periods=120, freq="D")
    X = pd.DataFrame({"when": days.strftime("%Y-%m-%d"), "x": rng.normal(size=120)})
    y = pd.Series(np.where(days.month > 2, "late", "early"))
    splits = splits_of(len(X))
    clf = TabNNClassifier(epochs=2, random_state=0).fit(
        X.iloc[splits["train"]], y.iloc[splits["train"]]
    )
    # every value is an ISO 8601 date, so the column is one: expanded into numeric parts
    assert clf.schema_.dates == ["when"]
    scores, scope = builders.importance(
        clf, X.iloc[splits["validation"]], y.iloc[splits["validation"]]
    )
    assert set(scores) == {"when", "x"} and scope["columns"] == 2


def test_permutation_importance_keeps_extension_dtypes():
    X = pd.DataFrame(
        {
            "signal": [0.1, 0.9, 0.2, 0.8] * 5,
            "city": pd.Categorical(["a", "b", "a", "b"] * 5),
            "name": pd.array(["p", "q", None, "r"] * 5, dtype="string"),
        }
    )
    kinds = []

    def proba(frame):
        kinds.append((frame["city"].dtype, frame["name"].dtype))
        return frame["signal"].to_numpy()

    result = permutation_importance(proba, X, [0, 1, 0, 1] * 5, "binary", n_repeats=2)
    assert result["signal"][0] > 0 and result["city"] == (0.0, 0.0)
    assert all(kind == (X["city"].dtype, X["name"].dtype) for kind in kinds)


def test_no_report_skips_the_importance(tmp_path):
    wide_table(60, 30).to_csv(tmp_path / "t.csv", index=False)
    args = ["train", "t.csv", "--target", "y", *QUICK, "--no-report", "-o", "m"]
    assert invoke(*args, cwd=tmp_path).exit_code == 0
    data = json.loads((tmp_path / "m" / "report.json").read_text())
    assert data["importance"] == {} and "--no-report" in data["importance_scope"]["skipped"]
    result = invoke("report", "m", cwd=tmp_path)  # drawn later, the page says why
    assert result.exit_code == 0, result.stderr
    assert "Permutation importance was not computed" in (tmp_path / "m" / "report.html").read_text()


def test_a_2000_column_table_trains_in_seconds(tmp_path):
    wide_table(60, 2000).to_csv(tmp_path / "wide.csv", index=False)
    result = invoke("train", "wide.csv", "--target", "y", *QUICK, "-o", "m", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr  # speed: benchmarks/wide_tables.py
    scope = json.loads((tmp_path / "m" / "report.json").read_text())["importance_scope"]
    assert scope["columns"] < scope["columns_available"] == 2000


# --------------------------------------------------------------------------- 2. files


def nested_parquet(path: Path) -> Path:
    table = pa.table(
        {
            "size": [float(i % 7) for i in range(40)],
            "tags": [[1, 2], [3], None, []] * 10,
            "meta": [{"p": i % 2, "q": "x"} for i in range(40)],
            "y": ["u", "v"] * 20,
        }
    )
    pq.write_table(table, path)
    return path


def test_nested_parquet_columns_are_read_as_json_text(tmp_path):
    path = nested_parquet(tmp_path / "nested.parquet")
    with pytest.warns(UserWarning) as caught:
        frame = read_table(path)
    notes = [str(w.message) for w in caught]
    assert any("'tags' holds list" in n for n in notes)
    assert any("'meta' holds struct" in n for n in notes)
    assert frame["tags"].tolist()[:4] == ["[1, 2]", "[3]", None, "[]"]
    assert frame["meta"][0] == '{"p": 0, "q": "x"}'
    assert frame["size"].dtype == np.float64


def test_train_and_predict_on_nested_parquet(tmp_path):
    nested_parquet(tmp_path / "nested.parquet")
    result = invoke("train", "nested.parquet", "--target", "y", *QUICK, "-o", "m", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "'tags' holds list" in " ".join(result.stderr.split())
    result = invoke("predict", "m", "nested.parquet", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 41


@pytest.mark.parametrize(
    ("content", "phrases"),
    [
        ("a,b,y\n1,2,u\n3,4,v\n", ["not a valid ARFF file", "@relation", "'a,b,y'", ".csv"]),
        ("", ["not a valid ARFF file", "no @data line"]),
        ("% only a comment\n@relation r\n@attribute a numeric\n", ["no @data line"]),
        (
            "@relation r\n@attribute a numeric\n@attribute y {u,v}\n@data\n{0 1.5, 1 u}\n",
            ["sparse ARFF", "'{0 1.5, 1 u}'", "not supported", "dense ARFF"],
        ),
        (
            "@relation r\n@attribute a numeric\n@attribute y {u,v}\n@data\n1\n",
            ["fewer values than the @attribute lines declare"],
        ),
    ],
    ids=["csv-text", "empty", "no-data", "sparse", "short-row"],
)
def test_files_that_are_not_dense_arff(tmp_path, content, phrases):
    (tmp_path / "data.arff").write_text(content)
    with pytest.raises(DataError):
        read_table(tmp_path / "data.arff")
    fails_writing_nothing(tmp_path, 1, phrases, "train", "data.arff", "--target", "y", *QUICK)


# --------------------------------------------------------------------------- 2. tabnn info


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> Path:
    """A model trained on a small table, with a tuned threshold and a dropped column."""
    root = tmp_path_factory.mktemp("info")
    frame = wide_table(80, 4)
    frame["constant"] = 1
    frame.to_csv(root / "small.csv", index=False)
    args = ["train", "small.csv", "--target", "y", *QUICK, "--threshold", "auto", "-o", "m"]
    result = invoke(*args, "--no-report", cwd=root)
    assert result.exit_code == 0, result.stderr
    return root / "m"


def edited_model(source: Path, tmp_path: Path, edit) -> Path:
    """A copy of a model directory whose tabnn.json ``edit`` changed, with its digest (when
    this tabnn records one) recomputed: a JSON shape that passes the read."""
    target = tmp_path / "edited"
    shutil.copytree(source, target)
    meta = json.loads((target / "tabnn.json").read_text())
    edit(meta)
    digest = getattr(artifact, "meta_digest", None)
    if digest is not None and getattr(artifact, "DIGEST_KEY", None):
        meta[artifact.DIGEST_KEY] = digest(meta)
    (target / "tabnn.json").write_bytes(dump_json(meta))  # byte for byte as tabnn writes
    return target


def test_info_on_a_good_model(small_model):
    result = invoke("info", small_model)
    assert result.exit_code == 0, result.stderr
    assert "numeric (4): x0, x1, x2, x3" in result.stdout
    assert "decision threshold" in result.stdout


def _drop(path):
    def edit(meta):
        *parents, last = path.split(".")
        for key in parents:
            meta = meta[key]
        del meta[last]

    return edit


def _set(path, value):
    def edit(meta):
        *parents, last = path.split(".")
        for key in parents:
            meta = meta[key]
        meta[last] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "phrases"),
    [
        (_drop("schema"), ["has no schema", "expected an object"]),
        (_drop("schema.numeric"), ["has no schema.numeric", "expected a list of names"]),
        (_set("schema.numeric", 3), ["schema.numeric = a number (3)", "a list of names"]),
        (_set("schema.task", ["binary"]), ["schema.task = a list", "one of binary"]),
        (_set("schema.dropped", ["constant"]), ["schema.dropped = a list"]),
        (_drop("model_config.hidden"), ["has no model_config.hidden"]),
        (_set("model_config", None), ["model_config = null"]),
        (_set("threshold", "0.5"), ["threshold = text"]),
        (_set("threshold", {"value": "high", "tuning": None}), ["threshold.value = text"]),
        (_set("threshold.tuning.metric", "magic"), ["unexpected shape"]),
        (_set("training", [1, 2]), ["training = a list"]),
        (_set("evaluation.scores", {"baseline": {}}), ["evaluation.scores"]),
        (_drop("evaluation.rows"), ["unexpected shape"]),
        (_set("evaluation.scores.model.confusion_matrix", 5), ["confusion_matrix = a number"]),
    ],
)
def test_info_refuses_a_tabnn_json_of_another_shape(small_model, tmp_path, edit, phrases):
    edited = edited_model(small_model, tmp_path, edit)
    message = assert_fails(invoke("info", edited), 1, "tabnn.json", *phrases)
    # what predict cannot load, info refuses in load's words (issue 20); the rest in its own
    assert "Save or train the model again" in message or "info --json" in message


def test_info_never_tracebacks_on_random_shapes(small_model, tmp_path):
    rng = np.random.default_rng(0)
    meta = json.loads((small_model / "tabnn.json").read_text())
    paths = []

    def walk(node, prefix):
        for key, value in node.items():
            path = f"{prefix}{key}"
            paths.append(path)
            if isinstance(value, dict):
                walk(value, path + ".")

    walk(
        {
            k: v
            for k, v in meta.items()
            if k in ("schema", "model_config", "threshold", "training", "evaluation")
        },
        "",
    )
    odd = [None, 0, -1.5, True, "text", [], ["a", 1], {}, {"x": [None]}]
    for i in range(25):
        path = paths[rng.integers(len(paths))]
        value = odd[rng.integers(len(odd))]
        edit = _drop(path) if rng.random() < 0.3 else _set(path, value)
        directory = tmp_path / str(i)
        directory.mkdir()
        result = invoke("info", edited_model(small_model, directory, edit))
        assert result.exit_code in (0, 1), (path, value, result.stderr)
        assert "Traceback" not in result.stdout + result.stderr
        if result.exit_code == 1:
            assert result.stdout == "" and "tabnn.json" in result.stderr


def test_markup_in_names_and_labels_is_printed_as_text(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"[b]x": rng.normal(size=60), "[/x]": 1, "[red]": rng.normal(size=60)})
    frame["y"] = np.where(frame["[b]x"] > 0, "[/yes]", "[no]")
    frame.to_csv(tmp_path / "odd.csv", index=False)
    result = invoke("train", "odd.csv", "--target", "y", *QUICK, "-o", "m", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert "classes [/yes], [no]" in result.stdout or "classes [no], [/yes]" in result.stdout
    assert "dropped column [/x]" in result.stdout
    result = invoke("info", tmp_path / "m")
    assert result.exit_code == 0, result.stderr
    assert "numeric (2): [b]x, [red]" in result.stdout


# --------------------------------------------------------------------------- 2. designs


def test_a_layer_too_wide_is_a_usage_error(tmp_path):
    # memory too small for a design: tests/test_memory_limits.py
    wide_table(60, 10).to_csv(tmp_path / "t.csv", index=False)
    fails_writing_nothing(
        tmp_path, 2, ["mlp:300000", "300,000 units"],
        "train", "t.csv", "--target", "y", *QUICK, "--model", "mlp:300000",
    )  # fmt: skip


# --------------------------------------------------------------------------- 2. duplicates


@pytest.mark.parametrize("names", [["a", "b", "a"], [0, 1, 0]], ids=["text", "numbers"])
def test_duplicate_column_names_in_the_python_api(names):
    frame = wide_table(40, 3)
    X = frame.drop(columns="y")
    X.columns = names
    with pytest.raises(TabnnError, match="Column names must be unique.*'(a|0)'") as caught:
        TabNNClassifier(epochs=1).fit(X, frame["y"])
    assert isinstance(caught.value, DataError)
