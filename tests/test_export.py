"""tabnn export: the ONNX graph against the estimator it came from.

Parity is checked with onnxruntime against ``predict_proba`` and ``predict`` on held-out
rows of real tables (binary, multi-class, multi-label), into which unseen categories and
missing numbers are written: largest absolute difference at most 1e-5, identical labels.
Models train for a few epochs on small data; the whole file runs in well under a minute.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
import torch
from onnx import TensorProto
from scipy.special import erf, erfinv
from sklearn.model_selection import train_test_split
from typer.testing import CliRunner

import tabnn
from tabnn import TabNNClassifier
from tabnn.cli import app
from tabnn.errors import ModelError
from tabnn.onnx_export import (
    build_onnx,
    onnx_inputs,
    session_of,
    special,
    table_parity,
    write,
    write_onnx,
)
from tabnn.onnx_export.graph import Graph
from tabnn.onnx_export.parity import Parity
from tabnn.workflows.runs import ReadOptions, load_training_table

DATA = Path(__file__).resolve().parent / "data"
SONAR = Path(tabnn.__file__).resolve().parent / "datasets" / "sonar.csv"
TOLERANCE = 1e-5
UNSEEN = "never seen in training"


def read(path: Path, target: str, header: bool | None = None, rows: int | None = None):
    table = load_training_table(path, ReadOptions(header=header, target=target))
    X, y = table.X, table.y
    return (X, y) if rows is None else (X.iloc[:rows], y.iloc[:rows])


def synthetic(task: str, n: int = 400, seed: int = 0):
    """Numbers with gaps, a 3-category and a 30-category (embedded) column; a target of
    the given task that depends on them."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "size": rng.normal(size=n),
            "weight": rng.gamma(2.0, size=n),
            "colour": rng.choice(["red", "green", "blue"], n),
            "shop": rng.choice([f"shop{i}" for i in range(30)], n),
        }
    )
    X.loc[rng.random(n) < 0.1, "size"] = np.nan
    signal = X["size"].fillna(0) + (X["colour"] == "red") + X["shop"].str[-1].astype(int) / 5
    if task == "multiclass":
        return X, pd.Series(np.digitize(signal, [0.3, 1.2]), name="grade")
    labels = {"big": signal > 0.8, "red": X["colour"] == "red", "heavy": X["weight"] > 2}
    return X, pd.DataFrame({k: v.astype(int) for k, v in labels.items()})


TABLES = {
    "sonar": lambda: read(SONAR, "-1", header=False),
    "titanic": lambda: read(DATA / "titanic" / "train.csv", "Survived"),
    "adult": lambda: read(DATA / "adult" / "adult.data", "-1", header=False, rows=1200),
    "iris": lambda: read(DATA / "iris" / "iris.csv", "-1", header=False),
    "heart": lambda: read(DATA / "heart" / "processed.cleveland.data", "-1", header=False),
    "network_logs": lambda: read(DATA / "network_logs" / "Network_logs.csv", "Scan_Type", rows=800),
    "emotions": lambda: read(DATA / "multilabel" / "emotions.arff", "-6:"),
    "synthetic_multiclass": lambda: synthetic("multiclass"),
    "synthetic_multilabel": lambda: synthetic("multilabel"),
}
QUICK = {"epochs": 4, "patience": 2}
MLP = {"hidden": [16], "epochs": 6, "lr": 0.01}
# (table, estimator parameters): every task, scaling, network and stack
CASES = {
    "sonar-default-ensemble": ("sonar", QUICK),
    "sonar-mlp-standard": ("sonar", {**MLP, "scaling": "standard"}),
    "titanic-mlp-robust": ("titanic", {**MLP, "scaling": "robust"}),
    "titanic-quantile-periodic-stack": (
        "titanic",
        {**QUICK, "scaling": "quantile", "numeric_embedding": "periodic", "n_members": 2},
    ),
    "adult-embedding-clipped": ("adult", {**MLP, "scaling": "clipped", "threshold": 0.3}),
    "iris-mlp-quantile-stack": ("iris", {**MLP, "scaling": "quantile", "n_members": 3}),
    "heart-default-ensemble": ("heart", QUICK),
    "network_logs-default-ensemble": ("network_logs", {**QUICK, "drop": ["Intrusion"]}),
    "synthetic-multiclass-periodic": (
        "synthetic_multiclass",
        {**QUICK, "numeric_embedding": "periodic"},
    ),
    "titanic-ple-bagged": ("titanic", {**QUICK, "numeric_embedding": "ple", "bagging": 2}),
    "synthetic-multiclass-ple": ("synthetic_multiclass", {**QUICK, "numeric_embedding": "ple"}),
    "emotions-default-ensemble": ("emotions", QUICK),
    "emotions-mlp-robust-stack": ("emotions", {**MLP, "scaling": "robust", "n_members": 2}),
    "synthetic-multilabel-quantile": ("synthetic_multilabel", {**MLP, "scaling": "quantile"}),
}


def with_gaps(X: pd.DataFrame, estimator) -> pd.DataFrame:
    """Held-out rows with an unseen category in every categorical column (every 4th row)
    and a missing value in every numeric column (every 5th row, shifted)."""
    X = X.copy()
    schema = estimator.schema_
    for j, name in enumerate(schema.categorical):
        X[name] = X[name].astype(object)
        X.loc[X.index[j % 4 :: 4], name] = UNSEEN
    for j, name in enumerate(n for n in schema.numeric if n in X.columns):
        X.loc[X.index[j % 5 :: 5], name] = np.nan
    return X


@pytest.fixture(scope="module")
def tables():
    return {name: load() for name, load in TABLES.items()}


@pytest.fixture(scope="module")
def fitted(tables, tmp_path_factory):
    """case -> (estimator, held-out rows with gaps, an onnxruntime session on its graph)."""
    folder = tmp_path_factory.mktemp("onnx")
    cache = {}

    def get(case: str):
        if case not in cache:
            table, params = CASES[case]
            X, y = tables[table]
            stratify = y if isinstance(y, pd.Series) else None
            X_train, X_test, y_train, _ = train_test_split(
                X, y, test_size=0.25, random_state=0, stratify=stratify
            )
            estimator = TabNNClassifier(**params).fit(X_train, y_train)
            path = folder / f"{case}.onnx"
            write_onnx(estimator, path)
            cache[case] = (estimator, with_gaps(X_test, estimator), session_of(path))
        return cache[case]

    return get


# --------------------------------------------------------------------------- parity


@pytest.mark.parametrize("case", CASES)
def test_graph_matches_predict_proba_on_held_out_rows(fitted, case):
    estimator, X_test, session = fitted(case)
    parity = table_parity(session, estimator, X_test)
    print(
        f"{case}: {estimator.task_}, {parity.rows} rows, max |diff| {parity.largest_difference:.2g}"
    )
    assert parity.rows == len(X_test) > 0
    assert parity.largest_difference <= TOLERANCE
    assert parity.same_labels


def test_the_cases_cover_every_task_scaling_network_and_gap(fitted):
    seen = {"task": set(), "scaling": set(), "network": set(), "embedding": set()}
    for case in CASES:
        estimator, X_test, _ = fitted(case)
        config = estimator.model_config_
        seen["task"].add(estimator.task_)
        seen["scaling"].add(config.scaling)
        seen["network"].add((config.network, config.numeric_embedding, config.n_members > 1))
        seen["embedding"].update(bool(d) for d in config.embedding_dims)
    assert seen["task"] == {"binary", "multiclass", "multilabel"}
    assert seen["scaling"] == {"standard", "robust", "quantile", "clipped"}
    assert {("ensemble", "none", False), ("mlp", "none", False)} <= seen["network"]
    assert ("ensemble", "periodic", True) in seen["network"]
    assert ("ensemble", "ple", True) in seen["network"]  # bagged: each fold its own bins
    assert ("mlp", "none", True) in seen["network"]
    assert seen["embedding"] == {True, False}  # embedded (> 16 categories) and one-hot


def test_held_out_rows_hold_unseen_categories_and_missing_numbers(fitted):
    estimator, X_test, _ = fitted("titanic-mlp-robust")
    encoded = estimator.encode(X_test)
    assert (encoded.categorical == 0).any(axis=0).all()  # every column has unknown codes
    assert np.isnan(encoded.numeric).any(axis=0).all()


@pytest.mark.parametrize(
    ("activation", "norm"),
    [("gelu", "layer"), ("selu", "batch"), ("silu", "none"), ("tanh", "layer")]
    + [("leaky_relu", "batch"), ("identity", "none")],
)
def test_every_activation_and_norm_exports(tables, tmp_path, activation, norm):
    X, y = tables["synthetic_multiclass"]
    estimator = TabNNClassifier(
        hidden=[8, 8], activation=activation, norm=norm, epochs=2, lr=0.01
    ).fit(X[:300], y[:300])
    parity = write_onnx(estimator, tmp_path / "m.onnx")
    assert parity.holds(TOLERANCE)
    session = session_of(tmp_path / "m.onnx")
    assert table_parity(session, estimator, with_gaps(X[300:], estimator)).holds(TOLERANCE)


def test_one_row_and_many_rows_give_the_same_answers(fitted):
    estimator, X_test, session = fitted("titanic-quantile-periodic-stack")
    many = pd.concat([X_test] * 10, ignore_index=True)  # > 2,000 rows in one batch
    batch = session.run(None, onnx_inputs(estimator, many))
    assert batch[0].shape == (len(many), 2)
    assert table_parity(session, estimator, many).holds(TOLERANCE)
    for i in [0, 3, 17]:
        one = session.run(None, onnx_inputs(estimator, many.iloc[[i]]))
        assert one[0].shape == (1, 2)
        np.testing.assert_allclose(one[0][0], batch[0][i], rtol=0, atol=1e-12)
        assert one[1][0] == batch[1][i]


def test_integer_categories_are_found_as_python_floats_too(fitted):
    """tabnn reads 3, 3.0 and "3" as one category; the graph finds "3" and "3.0"."""
    estimator, X_test, session = fitted("titanic-mlp-robust")
    feed = onnx_inputs(estimator, X_test)
    as_floats = dict(feed, Pclass=np.array([f"{v}.0" for v in feed["Pclass"]], dtype=object))
    assert set(feed["Pclass"]) <= {"1", "2", "3", UNSEEN}
    np.testing.assert_array_equal(session.run(None, as_floats)[0], session.run(None, feed)[0])


# --------------------------------------------------------------------------- the graph


def test_inputs_outputs_and_metadata(fitted):
    estimator, _, session = fitted("titanic-mlp-robust")
    inputs = {i.name: (i.type, i.shape) for i in session.get_inputs()}
    prep = estimator.preprocessor_
    assert list(inputs) == [*prep.numeric, *prep.categorical]  # numbers first, then text
    assert {"Age", "Fare"} <= set(prep.numeric) and {"Sex", "Embarked"} <= set(prep.categorical)
    assert inputs["Age"] == ("tensor(double)", ["N"])
    assert inputs["Sex"] == ("tensor(string)", ["N"])
    outputs = {o.name: (o.type, o.shape) for o in session.get_outputs()}
    assert outputs == {
        "probabilities": ("tensor(double)", ["N", 2]),
        "label": ("tensor(int64)", ["N"]),
    }
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["task"] == "binary" and meta["classes"] == "[0, 1]"
    assert float(meta["threshold"]) == estimator.threshold_


@pytest.mark.parametrize(
    ("case", "label_type", "label_shape"),
    [
        ("sonar-default-ensemble", "tensor(string)", ["N"]),
        ("network_logs-default-ensemble", "tensor(string)", ["N"]),
        ("heart-default-ensemble", "tensor(int64)", ["N"]),
        ("emotions-default-ensemble", "tensor(int64)", ["N", 6]),
    ],
)
def test_labels_keep_their_type(fitted, case, label_type, label_shape):
    estimator, X_test, session = fitted(case)
    label = {o.name: o for o in session.get_outputs()}["label"]
    assert (label.type, label.shape) == (label_type, label_shape)
    _, labels = session.run(None, onnx_inputs(estimator, X_test))
    np.testing.assert_array_equal(labels, estimator.predict(X_test))


def test_the_graph_runs_with_onnxruntime_alone(fitted, tmp_path):
    """Only standard ONNX and ONNX-ML operators, weights inside the file, and a process
    that cannot import tabnn or torch runs it."""
    estimator, X_test, _ = fitted("titanic-quantile-periodic-stack")
    model = build_onnx(estimator)
    assert {op.domain for op in model.opset_import} == {"", "ai.onnx.ml"}
    assert {node.domain for node in model.graph.node} <= {"", "ai.onnx.ml"}
    assert not any(t.data_location == TensorProto.EXTERNAL for t in model.graph.initializer)
    onnx.save(model, tmp_path / "m.onnx")
    feed = onnx_inputs(estimator, X_test)
    np.savez(tmp_path / "feed.npz", **{f"c{i}": v for i, v in enumerate(feed.values())})
    code = (
        "import sys; sys.modules.update(tabnn=None, torch=None)\n"
        "import numpy as np, onnxruntime as ort\n"
        f"s = ort.InferenceSession({str(tmp_path / 'm.onnx')!r})\n"
        f"d = np.load({str(tmp_path / 'feed.npz')!r}, allow_pickle=True)\n"
        "feed = {i.name: d[f'c{k}'] for k, i in enumerate(s.get_inputs())}\n"
        "print(float(s.run(['probabilities'], feed)[0].sum()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) == pytest.approx(estimator.predict_proba(X_test).sum(), abs=1e-8)


def test_a_column_named_like_an_output_is_refused(tables):
    X, y = tables["synthetic_multiclass"]
    estimator = TabNNClassifier(hidden=[4], epochs=1).fit(X.rename(columns={"size": "label"}), y)
    with pytest.raises(ModelError, match="'label'"):
        build_onnx(estimator)


# ------------------------------------------------------------- what ONNX lacks, rebuilt


def run_graph(build, **feed):
    """Run a one-output graph made by ``build(g, *inputs)`` on float64 vectors."""
    g = Graph()
    names = [g.add_input(name, TensorProto.DOUBLE, [None]) for name in feed]
    g.add_output(build(g, *names), "out", TensorProto.DOUBLE, [None])
    session = session_of_model(g.model("test", {}, ""))
    return session.run(None, feed)[0]


def session_of_model(model):
    import onnxruntime

    return onnxruntime.InferenceSession(model.SerializeToString())


def test_erf_and_the_normal_quantile_are_float64_accurate():
    x = np.linspace(-12, 12, 48_001)
    assert np.abs(run_graph(special.erf, x=x) - erf(x)).max() < 1e-13
    u = np.linspace(special.UNIFORM_FLOOR, 1 - special.UNIFORM_FLOOR, 48_001)
    expected = np.sqrt(2) * erfinv(2 * u - 1)
    assert np.abs(run_graph(special.normal_quantile, u=u) - expected).max() < 1e-12


@pytest.mark.parametrize("right", [False, True])
def test_searchsorted_matches_torch_with_ties(right):
    rng = np.random.default_rng(0)
    knots = rng.normal(size=(2, 3, 64))
    knots[0, 0, 10:30] = 0.5  # a tie
    knots[1, 2] = 1.0  # a constant column
    knots = np.sort(knots, axis=-1)
    values = rng.normal(size=(2, 500, 3))
    values[:, :50] = knots[:, None, :, 20]  # exactly on a knot
    values[0, 50:60, 0], values[1, 60:70, 2] = 0.5, 1.0
    g = Graph()
    x = g.add_input("x", TensorProto.DOUBLE, [2, None, 3])
    out = special.searchsorted(g, special.Knots(g, knots), x, right=right)
    g.add_output(out, "out", TensorProto.INT64, [2, None, 3])
    found = session_of_model(g.model("test", {}, "")).run(None, {"x": values})[0]
    expected = torch.searchsorted(
        torch.tensor(knots), torch.tensor(values).transpose(1, 2).contiguous(), right=right
    ).transpose(1, 2)
    np.testing.assert_array_equal(found, expected.numpy())


# --------------------------------------------------------------------------- the CLI

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    escaped = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not escaped, f"unexpected {result.exception!r}\n{result.output}"
    assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="module")
def model_dir(fitted, tmp_path_factory):
    estimator, _, _ = fitted("titanic-mlp-robust")
    return tabnn.save(estimator, tmp_path_factory.mktemp("saved") / "titanic")


def test_cli_exports_a_file_that_matches_the_model(model_dir, fitted, tmp_path):
    out = tmp_path / "titanic.onnx"
    result = invoke("export", model_dir, "-o", out)
    assert result.exit_code == 0, result.output
    assert "largest difference" in result.stdout
    estimator, X_test, _ = fitted("titanic-mlp-robust")
    assert table_parity(session_of(out), tabnn.load(model_dir), X_test).holds(TOLERANCE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["titanic.onnx"]


def test_cli_json_summary(model_dir, tmp_path):
    result = invoke("export", model_dir, "-o", tmp_path / "m.onnx", "--json")
    assert result.exit_code == 0
    assert '"largest_difference"' in result.stdout and '"categorical_inputs"' in result.stdout


@pytest.mark.parametrize(
    ("where", "code", "message"),
    [
        ("missing model", 2, "does not exist"),
        ("not a model", 1, "not a tabnn model directory"),
        ("missing folder", 2, "does not exist"),
        ("a directory", 2, "is a directory"),
        ("a model's own file", 2, "must end in .onnx"),
    ],
)
def test_cli_bad_input_fails_cleanly(model_dir, tmp_path, where, code, message):
    source, out = model_dir, tmp_path / "m.onnx"
    if where == "missing model":
        source = tmp_path / "nowhere"
    elif where == "not a model":
        source = tmp_path / "plain"
        source.mkdir()
        (source / "notes.txt").write_text("hello")
    elif where == "missing folder":
        out = tmp_path / "no" / "m.onnx"
    elif where == "a model's own file":
        out = model_dir / "model.safetensors"
    else:
        out = tmp_path
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = invoke("export", source, "-o", out)
    assert result.exit_code == code
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    tabnn.load(model_dir)  # the model is untouched


def test_cli_without_onnx_names_the_extra(model_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    result = invoke("export", model_dir, "-o", tmp_path / "m.onnx")
    assert result.exit_code == 2
    assert "pip install 'tabnn[onnx]'" in result.stderr
    assert not (tmp_path / "m.onnx").exists()


def test_cli_refuses_a_graph_that_does_not_match(model_dir, tmp_path, monkeypatch):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"the previous file")
    monkeypatch.setattr(write, "probe_parity", lambda session, estimator: Parity(0.5, True, 16))
    result = invoke("export", model_dir, "-o", out)
    assert result.exit_code == 1
    assert "does not match the model" in result.stderr
    assert out.read_bytes() == b"the previous file"  # left as it was, no temporary file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_date_columns_are_fed_as_their_numeric_parts(tmp_path):
    rng = np.random.default_rng(0)
    days = pd.date_range("2020-01-01", periods=200, freq="D").astype(str)
    X = pd.DataFrame({"when": days, "x": rng.normal(size=200)})
    estimator = TabNNClassifier(hidden=[8], epochs=2).fit(X, (X["x"] > 0).astype(int))
    write_onnx(estimator, tmp_path / "m.onnx")
    session = session_of(tmp_path / "m.onnx")
    assert [i.name for i in session.get_inputs()][:2] == ["when_year", "when_month"]
    assert table_parity(session, estimator, with_gaps(X[150:], estimator)).holds(TOLERANCE)
