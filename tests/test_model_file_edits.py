"""Fuzzing the tabnn.json of a saved model (issue 20).

- Edited, its digest not recomputed: random byte edits, values changed and the file written
  again (canonically, or spaced otherwise), and spellings that parse to what the digest
  covers (``null`` as ``1e400``, ``1.0`` as ``1.00``, escapes, repeated keys, spaces). Every
  change of a byte is refused by ``load`` and ``read_meta`` with a ModelError, nothing else.
- Forged, its digest recomputed as whoever edits on purpose can: ``load`` refuses with a
  ModelError or loads, nothing else, and ``tabnn info`` refuses exactly what ``load``
  refuses, with the same message.

One tiny model is saved once; each example writes its tabnn.json and puts it back.
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from test_cli import assert_fails, invoke

import tabnn
from tabnn.artifact import directory as artifact
from tabnn.artifact.directory import META_FILE, read_meta
from tabnn.errors import ModelError
from tabnn.io import dump_json

# the keys of tabnn.json that load reads (the others are for info, reports and people)
LOADED = ("params", "schema", "preprocessor", "model_config", "train_config", "history")
LOADED += ("n_features_in", "feature_names_in", "threshold", "temperature")


def examples(n: int) -> settings:
    """``n`` derandomized examples (the same on every run), no example database."""
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=False,
        suppress_health_check=[HealthCheck.too_slow],
    )


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A tiny binary model: two numeric columns (one with missing values), a categorical."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
    X["c"] = rng.choice(["x", "y", "z"], 40)
    X.loc[::5, "a"] = np.nan
    clf = tabnn.TabNNClassifier(hidden=[4], epochs=1).fit(X, np.where(X["b"] > 0, "yes", "no"))
    return tabnn.save(clf, tmp_path_factory.mktemp("edits") / "model")


@pytest.fixture(scope="module")
def original(model: Path) -> bytes:
    return (model / META_FILE).read_bytes()


@contextmanager
def written(model: Path, original: bytes, data: bytes):
    """``data`` as the model's tabnn.json, then the original back."""
    (model / META_FILE).write_bytes(data)
    try:
        yield
    finally:
        (model / META_FILE).write_bytes(original)


def assert_refused(model: Path, original: bytes, data: bytes) -> None:
    """load and read_meta (what report uses) refuse ``data`` with a ModelError; any other
    exception fails the test."""
    note(repr(data[:200]))
    with written(model, original, data):
        for read in (tabnn.load, read_meta):
            with pytest.raises(ModelError):
                read(model)


def paths(node, prefix=()) -> list[tuple]:
    """The key path of every value inside a JSON value (list items by index)."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    found = []
    for key, value in items:
        found.append((*prefix, key))
        if isinstance(value, dict | list):
            found += paths(value, (*prefix, key))
    return found


REMOVE = object()  # a value that stands for removing the key


def changed(meta: dict, path: tuple, value) -> dict:
    """A copy of ``meta`` with the value at ``path`` replaced (removed for REMOVE)."""
    copy = json.loads(json.dumps(meta))
    parent = copy
    for key in path[:-1]:
        parent = parent[key]
    if value is REMOVE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return copy


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


# --------------------------------------------------------------------------- edited


@st.composite
def byte_edits(draw, original: bytes) -> bytes:
    """1-3 bytes set, inserted or deleted anywhere in the file."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["set", "insert", "delete"]))
        byte = draw(st.integers(0, 255))
        if kind == "set":
            data[where] = byte
        elif kind == "insert":
            data.insert(where, byte)
        else:
            del data[where : where + draw(st.integers(1, 4))]
    return bytes(data)


# other spellings of a value, most parsing to what the digest covers: a pattern and its
# replacement
RESPELLINGS = [
    (r": null", ": 1e400"),  # an infinity, that canonical JSON writes as null
    (r": null", ": -1e999"),
    (r"(\d)\.(\d+)", r"\1.\g<2>0"),  # 0.5 -> 0.50
    (r": (\d+)([,\n])", r": \1.0e0\2"),  # 3 -> 3.0e0
    (r": 0([,\n])", r": -0\1"),
    (r'"([A-Za-z])', lambda m: f'"\\u{ord(m.group(1)):04x}'),  # "a -> "\u0061
    (r"\n  \"", '\n  "format_version": 1,\n  "'),  # a repeated key, its last value kept
    (r": ", ":  "),
    (r",\n", ",\r\n"),
    (r"\n$", ""),
]


@st.composite
def respellings(draw, original: bytes) -> bytes:
    """One value spelt otherwise (RESPELLINGS)."""
    text = original.decode()
    choices = [(p, r) for p, r in RESPELLINGS if re.search(p, text)]
    pattern, replacement = draw(st.sampled_from(choices))
    spans = [m.span() for m in re.finditer(pattern, text)]
    start, end = draw(st.sampled_from(spans))
    edited = re.sub(pattern, replacement, text[start:end], count=1)
    return (text[:start] + edited + text[end:]).encode()


@st.composite
def value_edits(draw, original: bytes) -> bytes:
    """A value changed, added or removed, written canonically (as tabnn writes: only the
    digest can tell) or spaced as json.dumps does."""
    meta = json.loads(original)
    path = draw(st.sampled_from(paths(meta)))
    value = draw(json_values | st.just(REMOVE))
    edited = changed(meta, path, value)
    if draw(st.booleans()):
        return dump_json(edited)
    return json.dumps(edited, indent=draw(st.sampled_from([None, 1, 2]))).encode()


@pytest.mark.parametrize("edits", [byte_edits, respellings, value_edits])
@examples(60)
@given(data=st.data())
def test_every_byte_change_to_tabnn_json_is_refused(model, original, edits, data):
    edited = data.draw(edits(original))
    if edited != original:
        assert_refused(model, original, edited)


def test_the_unedited_model_loads(model, original):
    rows = pd.DataFrame({"a": [1.0], "b": [2.0], "c": ["x"]})
    assert len(tabnn.load(model).predict(rows)) == 1


# --------------------------------------------------------------------------- forged


def forged(meta: dict) -> bytes:
    """``meta`` written as tabnn writes it, with its digest recomputed."""
    return dump_json({**meta, artifact.DIGEST_KEY: artifact.meta_digest(meta)})


def assert_info_as_load(model: Path, original: bytes, data: bytes) -> None:
    """load refuses ``data`` with a ModelError or loads; ``tabnn info`` refuses what load
    refuses with the same message, and has no traceback either way."""
    with written(model, original, data):
        try:
            tabnn.load(model)
            refusal = None
        except ModelError as error:
            refusal = " ".join(str(error).split())
        result = invoke("info", model)
    note(f"load: {refusal}")
    if refusal is not None:
        assert refusal in assert_fails(result, 1)
    else:
        assert result.exit_code in (0, 1), result.stderr
        assert "Traceback" not in result.stdout + result.stderr


@examples(40)
@given(data=st.data())
def test_info_refuses_exactly_what_load_refuses(model, original, data):
    meta = json.loads(original)
    loaded = [path for path in paths(meta) if path[0] in LOADED]
    path = data.draw(st.sampled_from(loaded))
    value = data.draw(json_values | st.just(REMOVE))
    note(f"{path} = {value!r}")
    assert_info_as_load(model, original, forged(changed(meta, path, value)))


def test_info_refuses_a_forged_layer_list_as_predict_does(model, original, tmp_path):
    """Issue 20: hidden "abc" made load speak of "3 layers" and info exit 0."""
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b,c\n1,2,x\n")
    meta = changed(json.loads(original), ("model_config", "hidden"), "abc")
    expected = 'its tabnn.json has model_config.hidden = text ("abc"); expected a list of'
    with written(model, original, forged(meta)):
        for command in (("info", model), ("predict", model, rows)):
            assert expected in assert_fails(invoke(*command), 1, "Save or train the model")
