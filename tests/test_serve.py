"""``tabnn serve``, tested as clients meet it: a real uvicorn process on a loopback port,
called with tritonclient (the Open Inference Protocol's own client), plain HTTP for MLflow's
format, and schemathesis over the server's OpenAPI schema."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
import torch

import tabnn
from tabnn import TabNNClassifier
from tabnn.features.frames import aligned

tritonhttp = pytest.importorskip("tritonclient.http")
pytest.importorskip("schemathesis")

DATA = Path(__file__).parent / "data"
FAST = {"epochs": 3, "random_state": 0}
KEY = "s3cret-key"


# ------------------------------------------------------------------ models and servers


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    """A binary model with categories and missing values (Titanic), a multi-class one with
    string classes (iris), a multi-label one and one whose twin member earns a weight."""
    root = tmp_path_factory.mktemp("served")
    titanic = pd.read_csv(DATA / "titanic" / "train.csv")
    iris = pd.read_csv(DATA / "iris" / "iris.csv", header=None)
    iris.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]
    fits = {
        "titanic": (titanic.drop(columns="Survived"), titanic["Survived"]),
        "iris": (iris.drop(columns="species"), iris["species"]),
        "tags": multilabel_table(),
        "records": repeated_records(),
    }
    dirs = {}
    for name, (X, y) in fits.items():
        dirs[name] = tabnn.save(TabNNClassifier(**FAST).fit(X, y), root / name)
    return dirs


def multilabel_table():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {
            "x1": rng.normal(size=200),
            "x2": rng.normal(size=200),
            "mood": rng.choice(list("abc"), 200),
        }
    )
    y = pd.DataFrame(
        {"calm": (X.x1 > 0).astype(int), "loud": ((X.x2 > 0) | (X.mood == "a")).astype(int)}
    )
    return X, y


def repeated_records():
    """Records with noise for labels, half of them repeated: only the twins know them."""
    rng = np.random.default_rng(0)
    order = np.repeat(np.arange(150), np.where(rng.random(150) < 0.5, 3, 1))
    X = pd.DataFrame({"x1": rng.normal(size=150).round(3), "x2": rng.normal(size=150)})
    y = pd.Series(rng.choice(["yes", "no"], 150), name="label")
    return X.iloc[order].reset_index(drop=True), y.iloc[order].reset_index(drop=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A ``tabnn serve`` process on a free loopback port."""

    def __init__(self, args: list[str], env: dict | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "tabnn", "serve", *args, "--port", str(self.port)]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.wait_until_live()

    def wait_until_live(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited: {self.process.stdout.read()}")
            try:
                if requests.get(f"{self.url}/v2/health/live", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise AssertionError("the server did not start within a minute")

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        output, _ = self.process.communicate(timeout=30)
        return output


@pytest.fixture(scope="module")
def server(model_dirs):
    """One server with all three models; no key, no batching."""
    running = Server([f"{name}={path}" for name, path in model_dirs.items()])
    yield running
    running.stop()


@pytest.fixture(scope="module")
def guarded(model_dirs):
    """A server with a key, a small body limit and micro-batching on."""
    running = Server(
        [str(model_dirs["titanic"]), "--max-body", "20000", "--batch-max-rows", "64",
         "--batch-wait-ms", "20"],
        env={"TABNN_API_KEY": KEY},
    )  # fmt: skip
    yield running
    running.stop()


@pytest.fixture(scope="module")
def batching(model_dirs):
    """A server micro-batching with a long wait, so that concurrent requests share batches."""
    running = Server([str(model_dirs["titanic"]), "--batch-max-rows", "64",
                      "--batch-wait-ms", "100"])  # fmt: skip
    yield running
    output = running.stop()
    assert "Traceback" not in output, output


def titanic_rows(n: int = 5) -> pd.DataFrame:
    return pd.read_csv(DATA / "titanic" / "test.csv").head(n)


def local_proba(model_dirs, name: str, frame: pd.DataFrame) -> np.ndarray:
    """What the saved model says in-process (columns it dropped at training may be absent)."""
    model = tabnn.load(model_dirs[name])
    return model.predict_proba(aligned(model, frame))


def oip_inputs(frame: pd.DataFrame, columns: list[str], nested: bool = False) -> list[dict]:
    """A table as the Open Inference Protocol's JSON inputs, a column each."""
    inputs = []
    for c in columns:
        values = [None if pd.isna(v) else v for v in frame[c].tolist()]
        numeric = pd.api.types.is_numeric_dtype(frame[c])
        shape = [len(values), 1] if nested else [len(values)]
        data = [[v] for v in values] if nested else values
        inputs.append(
            {"name": c, "shape": shape, "datatype": "FP64" if numeric else "BYTES", "data": data}
        )
    return inputs


TITANIC_COLUMNS = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]
ROW = {"Pclass": 3, "Sex": "male", "Age": 22, "SibSp": 1, "Parch": 0, "Fare": 7.25,
       "Embarked": "S"}  # fmt: skip


def oip_row(**changes) -> list[dict]:
    """ROW as the Open Inference Protocol's inputs, ``changes`` giving some columns'
    (datatype, value)."""
    given = {c: ("FP64" if isinstance(v, int | float) else "BYTES", v) for c, v in ROW.items()}
    given.update(changes)
    return [
        {"name": c, "shape": [1], "datatype": datatype, "data": [value]}
        for c, (datatype, value) in given.items()
    ]


# ------------------------------------------------------------------ Open Inference Protocol


def test_tritonclient_health_and_metadata(server):
    client = tritonhttp.InferenceServerClient(url=server.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("titanic")
    meta = client.get_model_metadata("titanic")
    inputs = {i["name"]: i["datatype"] for i in meta["inputs"]}
    assert inputs["Age"] == "FP64" and inputs["Sex"] == "BYTES"
    assert "Name" not in inputs  # dropped at training: not asked for
    assert [o["name"] for o in meta["outputs"]] == ["label", "probabilities", "outside_training"]
    assert client.get_server_metadata()["name"] == "tabnn"
    assert "above_range" in meta["parameters"]["outside_training_checks"]


def test_a_twin_member_is_named_and_served(server, model_dirs):
    client = tritonhttp.InferenceServerClient(url=server.url.removeprefix("http://"))
    members = client.get_model_metadata("records")["parameters"]["members"]
    twins = tabnn.load(model_dirs["records"]).twins_
    assert members == [
        {"name": "network", "stack_members": 1},
        {"name": "twins", "weight": twins.weight, "stored_rows": twins.rows},
    ]
    assert client.get_model_metadata("iris")["parameters"]["members"] == [
        {"name": "network", "stack_members": 1}
    ]
    frame = repeated_records()[0].head(8)  # training rows: each has its stored twin
    inputs = []
    for c in frame.columns:
        tensor = tritonhttp.InferInput(c, [len(frame)], "FP64")
        tensor.set_data_from_numpy(frame[c].to_numpy(np.float64))
        inputs.append(tensor)
    proba = client.infer("records", inputs).as_numpy("probabilities")
    np.testing.assert_allclose(proba, local_proba(model_dirs, "records", frame), atol=1e-12)


@pytest.mark.parametrize("binary", [True, False], ids=["binary-tensors", "json-tensors"])
def test_tritonclient_infer_matches_the_model(server, model_dirs, binary):
    frame = titanic_rows(6)
    frame.loc[0, "Sex"] = "unknown"  # an unseen category
    frame.loc[1, "Age"] = np.nan
    client = tritonhttp.InferenceServerClient(url=server.url.removeprefix("http://"))
    inputs = []
    for c in TITANIC_COLUMNS:
        if pd.api.types.is_numeric_dtype(frame[c]):
            array, datatype = frame[c].to_numpy(np.float64), "FP64"
        else:
            array, datatype = frame[c].fillna("").astype(str).to_numpy(object), "BYTES"
        tensor = tritonhttp.InferInput(c, [len(frame)], datatype)
        tensor.set_data_from_numpy(array, binary_data=binary)
        inputs.append(tensor)
    result = client.infer("titanic", inputs, request_id="req-7")
    proba = result.as_numpy("probabilities")
    expected = local_proba(model_dirs, "titanic", frame.assign(Embarked=frame.Embarked.fillna("")))
    np.testing.assert_allclose(proba, expected, atol=1e-12)
    assert result.as_numpy("label").tolist() == expected.argmax(1).tolist()
    assert result.get_response()["id"] == "req-7"


def test_infer_as_the_ecosystem_sends_it(server, model_dirs):
    frame = titanic_rows(3)
    body = {
        "id": "x",
        "inputs": oip_inputs(frame, TITANIC_COLUMNS, nested=True),
        "parameters": {"content_type": "pd"},
        "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}],
        "something_new": {"ignored": True},
    }
    answer = requests.post(f"{server.url}/v2/models/titanic/infer", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    out = answer.json()
    assert out["id"] == "x" and [o["name"] for o in out["outputs"]] == ["probabilities"]
    proba = np.reshape(out["outputs"][0]["data"], out["outputs"][0]["shape"])
    np.testing.assert_allclose(proba, local_proba(model_dirs, "titanic", frame), atol=1e-12)
    version = out["model_version"]
    again = requests.post(
        f"{server.url}/v2/models/titanic/versions/{version}/infer", json=body, timeout=30
    )
    assert again.json()["outputs"] == out["outputs"]


def test_multiclass_labels_keep_their_values(server, model_dirs):
    frame = pd.DataFrame(
        {"sepal_length": [5.1, 6.7], "sepal_width": [3.5, 3.0], "petal_length": [1.4, 5.2],
         "petal_width": [0.2, 2.3]}
    )  # fmt: skip
    body = {"inputs": oip_inputs(frame, list(frame.columns))}
    out = requests.post(f"{server.url}/v2/models/iris/infer", json=body, timeout=30).json()
    label, proba = out["outputs"]
    assert label["datatype"] == "BYTES"
    expected = tabnn.load(model_dirs["iris"]).predict(frame)
    assert label["data"] == expected.tolist()
    assert proba["shape"] == [2, 3] and proba["parameters"]["classes"][0].startswith("Iris-")


def test_multilabel_answers_a_label_matrix(server, model_dirs):
    X, _ = multilabel_table()
    frame = X.head(4)
    body = {"inputs": oip_inputs(frame, list(frame.columns))}
    out = requests.post(f"{server.url}/v2/models/tags/infer", json=body, timeout=30).json()
    labels, proba = out["outputs"]
    assert labels["name"] == "labels" and labels["shape"] == [4, 2]
    assert labels["parameters"]["classes"] == ["calm", "loud"]
    model = tabnn.load(model_dirs["tags"])
    np.testing.assert_array_equal(np.reshape(labels["data"], (4, 2)), model.predict(frame))
    body = {"dataframe_records": frame.to_dict("records")}
    answer = requests.post(f"{server.url}/invocations?model=tags", json=body, timeout=30)
    records = answer.json()["predictions"]
    assert set(records[0]) == {"labels", "proba_calm", "proba_loud"}


def test_answers_say_which_inputs_are_outside_training(server):
    frame = titanic_rows(2)
    frame.loc[0, "Sex"] = "alien"
    frame.loc[1, "Age"] = 500.0
    inputs = oip_inputs(frame, TITANIC_COLUMNS)
    url = f"{server.url}/v2/models/titanic/infer"
    plain = requests.post(url, json={"inputs": inputs}, timeout=30).json()
    assert [o["name"] for o in plain["outputs"]] == ["label", "probabilities"]  # not asked
    body = {"inputs": inputs, "parameters": {"outside_training": True}}
    asked = requests.post(url, json=body, timeout=30).json()["outputs"][-1]
    assert asked["name"] == "outside_training"
    assert asked["data"] == ["Sex:unseen_category", "Age:above_range"]
    rows = json.loads(frame[TITANIC_COLUMNS].to_json(orient="records"))
    mlflow = requests.post(
        f"{server.url}/invocations?model=titanic&outside_training=true",
        json={"dataframe_records": rows}, timeout=30,
    ).json()["predictions"]  # fmt: skip
    assert [p["outside_training"] for p in mlflow] == asked["data"]
    params = requests.post(
        f"{server.url}/invocations?model=titanic",
        json={"dataframe_records": rows, "params": {"outside_training": True}}, timeout=30,
    ).json()["predictions"]  # fmt: skip
    assert [p["outside_training"] for p in params] == asked["data"]
    metrics = requests.get(f"{server.url}/metrics", timeout=5).text
    assert 'tabnn_inputs_outside_training_total{column="Sex",kind="unseen_category",' in metrics


# ------------------------------------------------------------------ MLflow's format


@pytest.mark.parametrize("form", ["dataframe_split", "dataframe_records", "instances", "inputs"])
def test_invocations_json_forms(server, model_dirs, form):
    frame = titanic_rows(4)[TITANIC_COLUMNS]
    rows = json.loads(frame.to_json(orient="records"))
    split = json.loads(frame.to_json(orient="split"))
    body = {
        "dataframe_split": {"dataframe_split": split},
        "dataframe_records": {"dataframe_records": rows},
        "instances": {"instances": rows},
        "inputs": {"inputs": {c: [r[i] for r in split["data"]] for i, c in enumerate(frame)}},
    }[form]
    answer = requests.post(f"{server.url}/invocations?model=titanic", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    expected = local_proba(model_dirs, "titanic", frame)
    np.testing.assert_allclose([p["proba_1"] for p in predictions], expected[:, 1], atol=1e-12)
    assert [p["prediction"] for p in predictions] == expected.argmax(1).tolist()


def test_invocations_csv(server, model_dirs):
    frame = titanic_rows(3)
    answer = requests.post(
        f"{server.url}/invocations?model=titanic",
        data=frame.to_csv(index=False),
        headers={"Content-Type": "text/csv"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    got = [p["proba_0"] for p in answer.json()["predictions"]]
    np.testing.assert_allclose(got, local_proba(model_dirs, "titanic", frame)[:, 0], atol=1e-12)


def test_mlflow_health_routes(server):
    assert requests.get(f"{server.url}/ping", timeout=5).status_code == 200
    assert requests.get(f"{server.url}/health", timeout=5).status_code == 200
    assert requests.get(f"{server.url}/version", timeout=5).text == tabnn.__version__


# ------------------------------------------------------------------ the client's errors


def post(server, path: str, body, **kwargs):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
    return requests.post(f"{server.url}{path}", data=data, headers=headers, timeout=30, **kwargs)


@pytest.mark.parametrize(
    ("path", "body", "status", "phrases"),
    [
        ("/v2/models/nope/infer", {"inputs": []}, 404, ["nope", "titanic"]),
        ("/v2/models/titanic/versions/9/infer", {"inputs": []}, 404, ["version '9'"]),
        ("/v2/models/titanic/infer", b"{not json", 400, ["JSON"]),
        ("/v2/models/titanic/infer", [1, 2], 400, ["JSON object", "a list ([1, 2])"]),
        ("/v2/models/titanic/infer", {"inputs": []}, 400, ["inputs"]),
        ("/v2/models/titanic/infer",
         {"inputs": [{"name": "Age", "shape": [2, 3], "datatype": "FP64", "data": [1] * 6}]},
         400, ["[N] or [N, 1]", "[2, 3]"]),
        ("/v2/models/titanic/infer",
         {"inputs": [{"name": "Age", "shape": [3], "datatype": "FP64", "data": [1, 2]}]},
         400, ["holds 3 values", "has 2"]),
        ("/v2/models/titanic/infer",
         {"inputs": [{"name": "Age", "shape": [1], "datatype": "FP64", "data": ["old"]}]},
         400, ["Age", "numbers", '"old"']),
        ("/v2/models/titanic/infer",
         {"inputs": [{"name": "Age", "shape": [1], "datatype": "FLOAT", "data": [1]}]},
         400, ["datatype", "FLOAT"]),
        ("/v2/models/titanic/infer",
         {"inputs": [{"name": "Age", "shape": [1], "datatype": "FP64", "data": [1]}]},
         400, ["missing", "Sex"]),
        ("/v2/models/titanic/infer",
         {"inputs": [{"name": "Age", "shape": [1], "datatype": "BYTES", "data": ["old"]}]
          + [{"name": c, "shape": [1], "datatype": "BYTES", "data": ["1"]}
             for c in TITANIC_COLUMNS if c != "Age"]},
         400, ["Age", "'old'", "not a number"]),
        ("/invocations?model=titanic", {"dataframe_records": [{"Age": 3}]}, 400, ["missing"]),
        ("/invocations?model=titanic", {"records": []}, 400, ["dataframe_split"]),
        ("/invocations?model=titanic", {"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}},
         400, ["row 0", "2 values"]),
        ("/invocations", {"dataframe_records": [{"Age": 3}]}, 400, ["?model=NAME"]),
        ("/v2/models/titanic/infer", '{"inputs": ' + "[" * 5000 + "]" * 5000 + "}", 400,
         ["too deeply"]),
        ("/v2/models/titanic/infer",
         {"inputs": [{"name": "Age", "shape": [0], "datatype": "FP64", "data": []}]},
         400, ["no rows"]),
        ("/v2/models/titanic/infer", {"inputs": {"Age": 1}}, 400, ["got an object"]),
        ("/v2/models/titanic/infer", "null", 400, ["Expected a JSON object; got null"]),
        ("/v2/models/titanic/infer", {"inputs": oip_row(), "parameters": "x"}, 400,
         ["request's 'parameters' must be an object", 'text ("x")']),
        ("/v2/models/titanic/infer",
         {"inputs": [{**oip_row()[0], "parameters": [1]}, *oip_row()[1:]]}, 400,
         ["'parameters' must be an object", "a list ([1])"]),
        ("/invocations?model=titanic", {"dataframe_records": [ROW], "params": 3}, 400,
         ["'params' must be an object; got a number (3)"]),
        ("/invocations?model=iris", {"instances": [[5.1, 3.5]]}, 400, ["4 input columns"]),
        # one reading of request values for every protocol (issue 20)
        ("/invocations?model=titanic",
         {"dataframe_split": {"columns": [*TITANIC_COLUMNS, "Age"],
                              "data": [[3, "male", 22, 1, 0, 7.25, "S", 80]]}},
         400, ["'Age' twice"]),
        ("/invocations?model=titanic", '{"dataframe_records": [{"Age": 3, "Age": 4}]}', 400,
         ["'Age' twice"]),
        ("/v2/models/titanic/infer", '{"inputs": [], "inputs": []}', 400, ["'inputs' twice"]),
        ("/invocations?model=titanic", {"dataframe_records": [{**ROW, "Age": True}]}, 400,
         ["'Age'", "True", "not a number"]),
        ("/v2/models/titanic/infer", {"inputs": oip_row(Age=("BOOL", True))}, 400,
         ["'Age'", "not a number"]),
        ("/invocations?model=titanic", json.dumps({"dataframe_records": [ROW]}).replace(
            '"Age": 22', '"Age": ' + "9" * 401), 400, ["'Age'", "infinite", "1.8e308"]),
        ("/v2/models/titanic/infer", json.dumps({"inputs": oip_row(Age=("FP64", 1))}).replace(
            '"data": [1]', '"data": [-' + "9" * 401 + "]"), 400, ["'Age'", "infinite"]),
        ("/v2/models/titanic/infer", json.dumps({"inputs": oip_row(Age=("BYTES", "9" * 401))}),
         400, ["'Age'", "infinite"]),
        # a JSON number must be a value of the datatype declared for it
        ("/v2/models/titanic/infer", {"inputs": oip_row(Age=("UINT8", -5))}, 400,
         ["'Age'", "from 0 to 255 (UINT8)", "-5"]),
        ("/v2/models/titanic/infer", {"inputs": oip_row(Age=("FP16", 70000))}, 400,
         ["'Age'", "65504 (FP16)"]),
        ("/v2/models/titanic/infer", {"inputs": oip_row(Age=("INT32", 22.5))}, 400,
         ["'Age'", "whole numbers", "22.5"]),
        ("/invocations?model=titanic", '{"dataframe_records": [{"Sex": "\\ud800"}]}', 400,
         ["not valid Unicode", "ud800"]),
        ("/invocations?model=titanic", '{"dataframe_records": [{"\\udfff": 1}]}', 400,
         ["not valid Unicode"]),
        ("/v2/models/titanic/infer", '{"id": "\\ud800", "inputs": []}', 400,
         ["not valid Unicode"]),
        ("/v2/models/titanic/infer",
         '{"inputs": [{"name": "\\ud800", "shape": [1], "datatype": "FP64", "data": [1]}]}',
         400, ["not valid Unicode"]),
        ("/invocations?model=titanic", b'{"dataframe_records": [{"Sex": "\xed\xa0\x80"}]}',
         400, ["UTF-8"]),
    ],
)  # fmt: skip
def test_bad_requests_get_a_4xx_naming_the_problem(server, path, body, status, phrases):
    answer = post(server, path, body)
    assert answer.status_code == status, answer.text
    message = answer.json()["error"]
    for phrase in phrases:
        assert phrase in message, message


def test_unknown_routes_and_methods_answer_json(server):
    missing = requests.get(f"{server.url}/v3/whatever", timeout=5)
    assert missing.status_code == 404 and "error" in missing.json()
    wrong = requests.get(f"{server.url}/v2/models/titanic/infer", timeout=5)
    assert wrong.status_code == 405 and "error" in wrong.json()
    media = post(server, "/invocations?model=titanic", "a=1", headers={"Content-Type": "x/y"})
    assert media.status_code == 415 and "text/csv" in media.json()["error"]


def test_key_is_required_but_liveness_is_open(guarded):
    assert requests.get(f"{guarded.url}/v2/health/live", timeout=5).status_code == 200
    none = requests.get(f"{guarded.url}/v2/models/titanic", timeout=5)
    assert none.status_code == 401 and "Authorization" in none.json()["error"]
    wrong = requests.get(
        f"{guarded.url}/v2/models/titanic", headers={"Authorization": "Bearer nope"}, timeout=5
    )
    assert wrong.status_code == 401
    basic = requests.get(
        f"{guarded.url}/v2/models/titanic", headers={"Authorization": f"Basic {KEY}"}, timeout=5
    )
    assert basic.status_code == 401 and "'Basic' scheme" in basic.json()["error"]
    for scheme in ("Bearer", "bearer"):  # the scheme's case does not matter (RFC 7235)
        right = requests.get(
            f"{guarded.url}/v2/models/titanic",
            headers={"Authorization": f"{scheme} {KEY}"},
            timeout=5,
        )
        assert right.status_code == 200
    assert requests.head(f"{guarded.url}/v2/health/live", timeout=5).status_code == 200


def test_oversized_bodies_get_413(guarded):
    auth = {"Authorization": f"Bearer {KEY}"}
    big = json.dumps({"dataframe_records": [{"Age": 1}] * 3000})
    answer = post(guarded, "/invocations", big, headers=auth)
    assert answer.status_code == 413 and "20000 bytes" in answer.json()["error"]
    # chunked upload: no Content-Length, the limit applies while reading
    connection = http.client.HTTPConnection("127.0.0.1", guarded.port, timeout=30)
    chunks = (big[i : i + 4096].encode() for i in range(0, len(big), 4096))
    connection.request(
        "POST", "/invocations", body=chunks, encode_chunked=True,
        headers={**auth, "Content-Type": "application/json"},
    )  # fmt: skip
    response = connection.getresponse()
    assert response.status == 413 and b"20000" in response.read()


def test_one_bad_request_never_fails_another_in_its_batch(guarded, model_dirs):
    auth = {"Authorization": f"Bearer {KEY}"}
    good = json.loads(titanic_rows(1)[TITANIC_COLUMNS].to_json(orient="records"))
    bad = [{**good[0], "Age": "very old"}]

    def call(rows):
        return post(guarded, "/invocations", {"dataframe_records": rows}, headers=auth)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(call, [good, bad] * 4))
    assert [a.status_code for a in answers] == [200, 400] * 4
    expected = local_proba(model_dirs, "titanic", titanic_rows(1))[0, 1]
    assert all(
        a.json()["predictions"][0]["proba_1"] == pytest.approx(expected) for a in answers[::2]
    )
    metrics = requests.get(f"{guarded.url}/metrics", headers=auth, timeout=5).text
    batches = [line for line in metrics.splitlines() if line.startswith("tabnn_batch_rows_count")]
    assert batches and float(batches[0].split()[-1]) < 8  # some requests shared a pass


def test_a_request_never_borrows_columns_from_its_batch(batching):
    """A request lacking columns, sent while a full CSV request waits in the same batch, is
    refused as it is alone (merging padded its missing columns with NaN: issue 20)."""
    csv = titanic_rows(3).to_csv(index=False)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for _ in range(5):
            full = pool.submit(post, batching, "/invocations", csv,
                               headers={"Content-Type": "text/csv"})  # fmt: skip
            time.sleep(0.02)  # inside the first one's 100 ms wait
            partial = pool.submit(
                post, batching, "/invocations", {"dataframe_records": [{"Age": 3}]}
            )
            assert full.result().status_code == 200
            answer = partial.result()
            assert answer.status_code == 400 and "missing" in answer.json()["error"]


def test_a_client_hanging_up_is_no_server_error(batching):
    for sent in (b'{"dataframe_rec', b""):  # mid-body, and before any of it
        with socket.create_connection(("127.0.0.1", batching.port)) as raw:
            raw.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: "
                        b"application/json\r\nContent-Length: 1000\r\n\r\n" + sent)  # fmt: skip
            time.sleep(0.2)
    counted = 'route="/invocations",status="499"} 2.0'
    deadline = time.monotonic() + 10  # the server notices a hang-up when it next reads
    text = ""
    while counted not in text and time.monotonic() < deadline:
        time.sleep(0.2)
        text = requests.get(f"{batching.url}/metrics", timeout=5).text
    assert counted in text
    assert 'status="5' not in text


def test_malformed_http_gets_a_json_400(batching):
    with socket.create_connection(("127.0.0.1", batching.port)) as raw:
        raw.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")
        answer = raw.recv(4096).decode()
    head, _, body = answer.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 400") and "application/json" in head
    assert "Content-Length" in json.loads(body)["error"]


def test_metrics_count_requests_by_route_and_status(server):
    post(server, "/v2/models/nope/infer", {})
    text = requests.get(f"{server.url}/metrics", timeout=5).text
    assert (
        'tabnn_requests_total{method="POST",route="/v2/models/{name}/infer",status="404"}' in text
    )
    assert "tabnn_request_seconds_bucket" in text and "tabnn_rows_predicted_total" in text


def test_time_limit_and_full_queue(model_dirs):
    running = Server([str(model_dirs["titanic"]), "--threads", "1", "--queue", "0",
                      "--timeout", "0.2"])  # fmt: skip
    try:
        rows = pd.concat([titanic_rows(400)] * 100, ignore_index=True)  # 40,000 rows
        body = json.dumps({"dataframe_split": json.loads(rows.to_json(orient="split"))})
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda _: post(running, "/invocations", body), range(3)))
        statuses = sorted(a.status_code for a in answers)
        assert set(statuses) <= {503, 504} and 504 in statuses and 503 in statuses, statuses
        assert all("error" in a.json() for a in answers)
        assert requests.get(f"{running.url}/v2/health/live", timeout=5).ok  # still alive
    finally:
        running.stop()


def test_shutdown_finishes_requests_in_flight(model_dirs):
    running = Server([str(model_dirs["titanic"]), "--batch-max-rows", "1000",
                      "--batch-wait-ms", "800"])  # fmt: skip
    rows = json.loads(titanic_rows(1)[TITANIC_COLUMNS].to_json(orient="records"))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(post, running, "/invocations", {"dataframe_records": rows})
        time.sleep(0.3)  # the request waits for its batch
        output = running.stop()
        answer = pending.result()
    assert answer.status_code == 200, output
    assert running.process.returncode == 0, output
    assert '"POST /invocations" 200' in output  # the access log line


def test_several_workers_serve_and_count_together(model_dirs):
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()  # its pid is now unused, as a SIGKILLed server's
    stale = Path(tempfile.gettempdir()) / f"tabnn-metrics-{finished.pid}-left"
    stale.mkdir(exist_ok=True)
    running = Server([str(model_dirs["iris"]), "--workers", "2"])
    try:
        assert not stale.exists()  # a dead server's metrics folder is removed at start
        answer = requests.get(f"{running.url}/v2/models/iris/ready", timeout=10)
        assert answer.json() == {"name": "iris", "ready": True}
        body = {"instances": [[5.1, 3.5, 1.4, 0.2]] * 3}  # rows as lists, in input order
        for _ in range(6):  # new connections: the workers share them out
            assert requests.post(f"{running.url}/invocations", json=body, timeout=10).ok
        for _ in range(3):  # whichever worker answers, it counts every worker's rows
            text = requests.get(f"{running.url}/metrics", timeout=10).text
            assert 'tabnn_rows_predicted_total{model="iris"} 18.0' in text
    finally:
        running.stop()


# ------------------------------------------------------------------ the command line


@pytest.mark.parametrize(
    ("args", "code", "phrase"),
    [
        (["no/such/dir"], 2, "no/such/dir"),
        (["bad name=tests"], 2, "cannot name a URL"),
    ],
)
def test_serve_refuses_bad_models_before_binding(args, code, phrase):
    done = subprocess.run(
        [sys.executable, "-m", "tabnn", "serve", *args, "--port", str(free_port())],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == code, done.stderr
    assert phrase in done.stderr and "Traceback" not in done.stderr


def test_serve_refuses_a_model_that_cannot_answer(model_dirs, tmp_path):
    """Weights that are not finite would fail every request: refused at start, not answered
    with a 400 that blames each client."""
    X, y = multilabel_table()
    model = TabNNClassifier(**FAST).fit(X, y)
    with torch.no_grad():
        for weights in model.model_.parameters():
            weights.fill_(float("nan"))
    directory = tabnn.save(model, tmp_path / "broken")
    done = subprocess.run(
        [sys.executable, "-m", "tabnn", "serve", str(directory), "--port", str(free_port())],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "no finite probabilities" in done.stderr and "every request" in done.stderr


def test_serve_refuses_an_empty_key(model_dirs):
    done = subprocess.run(
        [sys.executable, "-m", "tabnn", "serve", str(model_dirs["iris"])],
        capture_output=True, text=True, timeout=60, env={**os.environ, "TABNN_API_KEY": " "},
    )  # fmt: skip
    assert done.returncode == 2 and "is empty" in done.stderr


def test_onnx_runtime_gives_the_same_answers(model_dirs, server):
    running = Server([f"titanic={model_dirs['titanic']}", "--runtime", "onnx"])
    try:
        frame = titanic_rows(20)
        body = {"dataframe_split": json.loads(frame.to_json(orient="split"))}
        onnx = post(running, "/invocations", body).json()["predictions"]
        torch = post(server, "/invocations?model=titanic", body).json()["predictions"]
        got = [[p["proba_0"], p["proba_1"]] for p in onnx]
        np.testing.assert_allclose(got, [[p["proba_0"], p["proba_1"]] for p in torch], atol=1e-9)
        assert [p["prediction"] for p in onnx] == [p["prediction"] for p in torch]
    finally:
        running.stop()


def test_serve_refuses_two_models_of_one_name(model_dirs):
    path = model_dirs["iris"]
    done = subprocess.run(
        [sys.executable, "-m", "tabnn", "serve", f"a={path}", f"a={path}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "named a" in done.stderr


# ------------------------------------------------------------------ schemathesis


@pytest.mark.parametrize("which", ["server", "batching"])
def test_no_input_makes_a_server_error(request, which, tmp_path):
    """schemathesis, run as its users run it, over every route of the OpenAPI schema: a
    bounded number of generated requests each, none may get a 5xx; with micro-batching on
    and off."""
    server = request.getfixturevalue(which)
    command = Path(sys.executable).parent / "schemathesis"
    done = subprocess.run(
        [str(command), "run", f"{server.url}/openapi.json", "--checks", "not_a_server_error",
         "--max-examples", "15", "--seed", "0", "--no-color"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,  # its report goes there
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout
