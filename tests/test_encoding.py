"""One description of the encoding: every encoder (pandas, Arrow, a request's rows, the ONNX
graph) reads the model's ``Encoding`` and nothing else of its columns, so a changed
description is followed by all four."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tabnn import TabNNClassifier
from tabnn.features.arrow_encode import ArrowEncoder
from tabnn.features.encoding import Encoding, encoding_of
from tabnn.features.fast_encode import read_columns
from tabnn.features.preprocess import Preprocessor, encode_frame

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "tabnn"
ROWS = 300  # more than preprocess.FEW_ROWS: pandas' vectorised lookup; the first few, its loop
FEW = 12


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    n = 150
    X = pd.DataFrame(
        {
            "age": np.where(rng.random(n) < 0.1, np.nan, rng.normal(40, 10, n)),
            "income": rng.exponential(1000, n),
            "city": rng.choice(["Oslo", "Lima", "Pune", "3"], n),
            "grade": rng.integers(1, 4, n),
        }
    )
    y = (X.income > 800).astype(int)
    return TabNNClassifier(epochs=1, random_state=0, categorical=["grade"]).fit(X, y)


@pytest.fixture(scope="module")
def table() -> dict[str, list]:
    """Columns of ROWS rows as a request sends them: gaps, unseen categories, big numbers."""
    rng = np.random.default_rng(1)
    age = [
        None if r < 0.2 else float(v) for r, v in zip(rng.random(ROWS), rng.normal(40, 10, ROWS))
    ]
    income = [float(v) for v in rng.exponential(1000, ROWS) * 10.0 ** rng.integers(0, 40, ROWS)]
    cities = rng.choice(["Oslo", "Lima", "Pune", "3", "Rome"], ROWS)
    city = [None if r < 0.1 else str(v) for r, v in zip(rng.random(ROWS), cities)]
    grade = [int(v) for v in rng.integers(0, 5, ROWS)]
    return {"age": age, "income": income, "city": city, "grade": grade}


def changed(encoding: Encoding) -> Encoding:
    """Another description: every vocabulary in reverse code order, numbers bounded by 1e4."""
    reversed_vocabularies = tuple(vocabulary[::-1] for vocabulary in encoding.vocabularies)
    return dataclasses.replace(encoding, vocabularies=reversed_vocabularies, value_limit=1e4)


def expected(model, frame: pd.DataFrame):
    """``changed``'s inputs, from the model's own: category code c of k is k + 1 - c (the
    unknown code stays 0), and numbers are bounded by 1e4."""
    numeric, codes = model.encode(frame)
    cards = np.array(encoding_of(model).cardinalities)
    return np.clip(numeric, -1e4, 1e4), np.where(codes == 0, 0, cards - codes)


def test_the_estimator_keeps_one_encoding_and_saves_none(model):
    encoding = encoding_of(model)
    assert encoding is encoding_of(model) is model.preprocessor_.encoding()
    assert encoding.numeric == tuple(model.schema_.numeric)
    assert encoding.columns == tuple(model.schema_.features)
    fields = {f.name for f in dataclasses.fields(Preprocessor)}
    assert set(model.preprocessor_.to_dict()) == fields  # tabnn.json's preprocessor unchanged


def test_every_encoder_follows_a_changed_description(model, table):
    encoding = changed(encoding_of(model))
    frame = pd.DataFrame(table)
    checked = model.schema_.check(frame)
    want_numeric, want_codes = expected(model, frame)
    assert not np.array_equal(want_codes, model.encode(frame).categorical)  # a real change
    assert (want_numeric == 1e4).any()
    batch = pa.RecordBatch.from_pydict(table)
    few = {name: values[:FEW] for name, values in table.items()}
    encoded = {
        "pandas": encode_frame(encoding, checked),
        "pandas, few rows": encode_frame(encoding, checked.iloc[:FEW]),
        "arrow": ArrowEncoder(encoding).encode(batch),
        "request": read_columns(encoding, few).inputs,
    }
    for path, inputs in encoded.items():
        rows = len(inputs.numeric)
        np.testing.assert_array_equal(inputs.numeric, want_numeric[:rows], err_msg=path)
        np.testing.assert_array_equal(inputs.categorical, want_codes[:rows], err_msg=path)


def test_the_onnx_graph_follows_a_changed_description(model, table):
    onnxruntime = pytest.importorskip("onnxruntime")
    from tabnn.onnx_export import build_onnx
    from tabnn.onnx_export.parity import inputs_of

    encoding = changed(encoding_of(model))
    graph = build_onnx(model, encoding).SerializeToString()
    session = onnxruntime.InferenceSession(graph, providers=["CPUExecutionProvider"])
    checked = model.schema_.check(pd.DataFrame(table))
    (proba,) = session.run(["probabilities"], inputs_of(encoding, checked))
    want = model.predict_proba(encode_frame(encoding, checked))
    np.testing.assert_allclose(proba, want, rtol=0, atol=1e-9)
    assert np.abs(want - model.predict_proba(pd.DataFrame(table))).max() > 1e-6  # a change


ENCODERS = [
    "features/arrow_encode.py",
    "features/fast_encode.py",
    "onnx_export/encoder.py",
    "onnx_export/build.py",
    "onnx_export/parity.py",
    "serving/onnx_runtime.py",
]


@pytest.mark.parametrize("module", ENCODERS)
def test_encoders_hold_no_column_facts_of_their_own(module):
    """No encoder reads the preprocessor, the schema's columns or the bound on numbers:
    only the encoding (the schema serves for its pandas check and the classes)."""
    tree = ast.parse((PACKAGE / module).read_text())
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    attributes = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute)]
    assert "VALUE_LIMIT" not in names
    assert "preprocessor_" not in {n.attr for n in attributes}
    of_schema = {n.attr for n in attributes if getattr(n.value, "attr", None) == "schema_"}
    assert of_schema <= {"check", "classes"}
