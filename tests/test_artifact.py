"""Tests for tabnn.artifact.directory: plain-data model directories, atomic saves, checked loads."""

import json
import os
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import safetensors.torch
import torch

import tabnn
from tabnn import io
from tabnn.artifact import directory as artifact
from tabnn.artifact.directory import (
    FORMAT_VERSION,
    META_FILE,
    WEIGHTS_FILE,
    data_fingerprint,
    load_model_dir,
    package_versions,
    read_meta,
    save_model_dir,
)
from tabnn.errors import InputNotFoundError, ModelError, UsageError
from tabnn.io import to_jsonable


def _tensors() -> dict[str, torch.Tensor]:
    return {
        "layer.weight": torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(0)),
        "vocab.index": torch.tensor([3, -1, 2**40], dtype=torch.int64),
        "mask": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5, dtype=torch.float64),
    }


def _meta() -> dict:
    return {"task": "binary", "classes": ["M", "R"], "threshold": 0.5, "nested": {"k": [1, 2]}}


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    return save_model_dir(tmp_path / "model", _meta(), _tensors())


def _siblings(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.parent.iterdir())


# --------------------------------------------------------------------------- round trip


def test_round_trip_keeps_meta_and_tensors(saved: Path):
    meta, tensors = load_model_dir(saved)
    assert {k: meta[k] for k in _meta()} == _meta()
    expected = _tensors()
    assert tensors.keys() == expected.keys()
    for name, tensor in expected.items():
        assert tensors[name].dtype == tensor.dtype, name
        assert tensors[name].shape == tensor.shape, name
        assert torch.equal(tensors[name], tensor), name


def test_save_adds_format_versions_time_and_checksums(saved: Path):
    meta = read_meta(saved)
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["tabnn_version"] == tabnn.__version__
    assert meta["versions"] == package_versions()
    assert meta["created"].endswith("+00:00")
    assert set(meta["checksums"]) == {WEIGHTS_FILE}
    assert len(meta["checksums"][WEIGHTS_FILE]) == 64


def test_save_does_not_change_callers_meta(tmp_path: Path):
    meta = _meta()
    save_model_dir(tmp_path / "m", meta, _tensors())
    assert meta == _meta()


def test_save_returns_path_and_creates_missing_parents(tmp_path: Path):
    target = tmp_path / "a" / "b" / "model"
    assert save_model_dir(target, {}, _tensors()) == target
    assert sorted(p.name for p in target.iterdir()) == [WEIGHTS_FILE, META_FILE]


def test_save_moves_tensors_to_contiguous_cpu(tmp_path: Path):
    transposed = torch.arange(6.0).reshape(2, 3).t()
    assert not transposed.is_contiguous()
    save_model_dir(tmp_path / "m", {}, {"t": transposed, "grad": torch.ones(2, requires_grad=True)})
    _, tensors = load_model_dir(tmp_path / "m")
    assert torch.equal(tensors["t"], transposed)
    assert not tensors["grad"].requires_grad


def test_extra_files_are_stored_and_checksummed(tmp_path: Path):
    target = save_model_dir(
        tmp_path / "m", {}, _tensors(), extra_files={"report.html": "<p>é</p>", "roc.png": b"\x89"}
    )
    assert (target / "report.html").read_text(encoding="utf-8") == "<p>é</p>"
    assert (target / "roc.png").read_bytes() == b"\x89"
    assert set(read_meta(target)["checksums"]) == {WEIGHTS_FILE, "report.html", "roc.png"}


@pytest.mark.parametrize(
    "name",
    [WEIGHTS_FILE, META_FILE, "../escape.txt", "sub/file.txt", ".hidden", ""],
    ids=["weights", "meta", "parent", "subdir", "hidden", "empty"],
)
def test_extra_file_names_must_be_plain(tmp_path: Path, name: str):
    with pytest.raises(UsageError, match="Cannot store an extra file named"):
        save_model_dir(tmp_path / "m", {}, _tensors(), extra_files={name: "x"})
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- strict JSON


def test_json_is_strict_sorted_and_indented(tmp_path: Path):
    meta = {"b": float("nan"), "a": [float("inf"), -float("inf"), 1.5], "c": np.float32(0.25)}
    target = save_model_dir(tmp_path / "m", meta, _tensors())
    text = (target / META_FILE).read_text(encoding="utf-8")
    assert "NaN" not in text and "Infinity" not in text
    parsed = json.loads(text, parse_constant=lambda name: pytest.fail(name))
    assert parsed["b"] is None
    assert parsed["a"] == [None, None, 1.5]
    assert parsed["c"] == 0.25
    assert list(parsed) == sorted(parsed)
    assert '\n  "a": [' in text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (np.int64(3), 3),
        (np.bool_(True), True),
        (np.float64("nan"), None),
        (np.array([[1, 2], [3, 4]], dtype=np.int32), [[1, 2], [3, 4]]),
        (np.array([1.0, np.nan]), [1.0, None]),
        (torch.tensor([0.5, 1.0]), [0.5, 1.0]),
        ((1, "a"), [1, "a"]),
        ({1: "x", np.int64(2): "y"}, {"1": "x", "2": "y"}),
        (Path("data/train.csv"), "data/train.csv"),
        (pd.NA, None),
        (None, None),
    ],
    ids=[
        "np-int",
        "np-bool",
        "np-nan",
        "np-array",
        "np-array-nan",
        "tensor",
        "tuple",
        "int-keys",
        "path",
        "pd-na",
        "none",
    ],
)
def test_to_jsonable_converts(value, expected):
    converted = to_jsonable(value)
    assert converted == expected
    assert type(converted) is type(expected)
    json.dumps(converted, allow_nan=False)


@pytest.mark.parametrize(
    ("meta", "match"),
    [
        ({"when": pd.Timestamp("2024-01-01")}, r"meta\['when'\] of type Timestamp"),
        ({"s": {1, 2}}, "of type set"),
        ({(1, 2): "x"}, "keys must be strings"),
    ],
    ids=["timestamp", "set", "tuple-key"],
)
def test_unjsonable_meta_raises_and_writes_nothing(tmp_path: Path, meta: dict, match: str):
    with pytest.raises(TypeError, match=match):
        save_model_dir(tmp_path / "m", meta, _tensors())
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- atomic writes


def test_save_replaces_an_existing_model_and_leaves_no_temp_dirs(saved: Path):
    save_model_dir(saved, {"task": "multiclass"}, {"w": torch.ones(2)})
    meta, tensors = load_model_dir(saved)
    assert meta["task"] == "multiclass"
    assert list(tensors) == ["w"]
    assert _siblings(saved) == ["model"]


def test_save_fills_an_empty_directory(tmp_path: Path):
    (tmp_path / "m").mkdir()
    save_model_dir(tmp_path / "m", {}, _tensors())
    assert read_meta(tmp_path / "m")["format_version"] == FORMAT_VERSION
    assert _siblings(tmp_path / "m") == ["m"]


def _raise(*args, **kwargs):
    raise OSError("disk full")


def test_failed_serialisation_keeps_the_old_model(saved: Path, monkeypatch):
    before = {p.name: p.read_bytes() for p in saved.iterdir()}
    monkeypatch.setattr(safetensors.torch, "save", _raise)
    with pytest.raises(OSError, match="disk full"):
        save_model_dir(saved, {"task": "new"}, _tensors())
    assert {p.name: p.read_bytes() for p in saved.iterdir()} == before
    assert _siblings(saved) == ["model"]


def test_failed_file_write_keeps_the_old_model(saved: Path, monkeypatch):
    before = {p.name: p.read_bytes() for p in saved.iterdir()}
    monkeypatch.setattr(io, "write_synced", _raise)
    with pytest.raises(OSError, match="disk full"):
        save_model_dir(saved, {"task": "new"}, _tensors())
    assert {p.name: p.read_bytes() for p in saved.iterdir()} == before
    assert _siblings(saved) == ["model"]


def test_failed_final_rename_restores_the_old_model(saved: Path, monkeypatch):
    before = {p.name: p.read_bytes() for p in saved.iterdir()}
    real_rename = os.rename
    calls = []

    def rename_failing_on_move_in(src, dst):
        calls.append((Path(src).name, Path(dst).name))
        # The first rename moves the old model aside; the second would move the new one in.
        if len(calls) == 2:
            raise OSError("rename failed")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename_failing_on_move_in)
    with pytest.raises(OSError, match="rename failed"):
        save_model_dir(saved, {"task": "new"}, _tensors())
    assert {p.name: p.read_bytes() for p in saved.iterdir()} == before
    assert _siblings(saved) == ["model"]


def test_failed_save_of_a_new_model_leaves_nothing(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(io, "write_synced", _raise)
    with pytest.raises(OSError, match="disk full"):
        save_model_dir(tmp_path / "m", {}, _tensors())
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_a_non_empty_directory_that_is_not_a_model(tmp_path: Path):
    precious = tmp_path / "data"
    precious.mkdir()
    (precious / "train.csv").write_text("a,b\n1,2\n")
    with pytest.raises(UsageError, match=r"Refusing to overwrite '.*data'.*no tabnn.json"):
        save_model_dir(precious, {}, _tensors())
    assert [p.name for p in precious.iterdir()] == ["train.csv"]
    assert _siblings(precious) == ["data"]


def test_save_refuses_a_file(tmp_path: Path):
    target = tmp_path / "model"
    target.write_text("not a model")
    with pytest.raises(UsageError, match=r"Refusing to overwrite '.*model': it is a file"):
        save_model_dir(target, {}, _tensors())
    assert target.read_text() == "not a model"


def test_save_refuses_a_symlink(saved: Path):
    link = saved.with_name("latest")
    link.symlink_to(saved, target_is_directory=True)
    with pytest.raises(UsageError, match="symbolic link"):
        save_model_dir(link, {}, _tensors())
    assert link.is_symlink()


# --------------------------------------------------------------------------- load errors


def test_load_missing_directory(tmp_path: Path):
    with pytest.raises(InputNotFoundError, match=r"Model directory '.*nope' does not exist\.$"):
        load_model_dir(tmp_path / "nope")


def test_load_missing_directory_mentions_an_interrupted_save(tmp_path: Path):
    (tmp_path / ".model.tmp-1234abcd").mkdir()
    with pytest.raises(InputNotFoundError, match=r"does not exist.*half-written.*\.model\.tmp-"):
        load_model_dir(tmp_path / "model")


def test_load_a_file(tmp_path: Path):
    (tmp_path / "model").write_text("x")
    with pytest.raises(ModelError, match="is a file, not a tabnn model directory"):
        load_model_dir(tmp_path / "model")


def test_load_empty_directory(tmp_path: Path):
    (tmp_path / "model").mkdir()
    with pytest.raises(ModelError, match="not a tabnn model directory: it is empty"):
        load_model_dir(tmp_path / "model")


def test_load_unrelated_directory(tmp_path: Path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "train.csv").write_text("a\n1\n")
    with pytest.raises(ModelError, match="not a tabnn model directory: it has no tabnn.json"):
        load_model_dir(tmp_path / "model")


@pytest.mark.parametrize(
    ("remove", "match"),
    [
        (WEIGHTS_FILE, "has tabnn.json but no model.safetensors; it may be half-written"),
        (META_FILE, "has model.safetensors but no tabnn.json; it may be half-written"),
    ],
    ids=["only-json", "only-weights"],
)
def test_load_with_one_file_missing(saved: Path, remove: str, match: str):
    (saved / remove).unlink()
    with pytest.raises(ModelError, match=match):
        load_model_dir(saved)
    with pytest.raises(ModelError, match=match):
        read_meta(saved)


def test_load_half_written_mentions_temp_sibling(saved: Path):
    (saved / WEIGHTS_FILE).unlink()
    saved.with_name(".model.tmp-0badf00d").mkdir()
    with pytest.raises(ModelError, match=r"half-written.*\.model\.tmp-0badf00d"):
        load_model_dir(saved)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "not valid JSON"),
        (b'{"format_version": NaN}', "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"{}", "without required keys: format_version"),
        (b'{"format_version": "1"}', "invalid format_version '1'"),
        (b'{"format_version": 1, "tabnn_version": "0.1.0"}', "required keys: versions, created"),
    ],
    ids=["truncated", "nan", "not-utf8", "list", "empty-object", "string-version", "no-checksums"],
)
def test_load_bad_json(saved: Path, content: bytes | None, match: str):
    meta_path = saved / META_FILE
    data = meta_path.read_bytes()
    meta_path.write_bytes(data[: len(data) // 2] if content is None else content)
    with pytest.raises(ModelError, match=match):
        load_model_dir(saved)
    with pytest.raises(ModelError, match=match):
        read_meta(saved)


def test_load_tampered_weights(saved: Path):
    weights = saved / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="modified after saving or is corrupt"):
        load_model_dir(saved)
    with pytest.raises(ModelError, match="modified after saving or is corrupt"):
        read_meta(saved)


def test_load_unparseable_weights_with_matching_checksum(saved: Path):
    import hashlib

    (saved / WEIGHTS_FILE).write_bytes(b"garbage")
    meta = json.loads((saved / META_FILE).read_text())
    meta["checksums"][WEIGHTS_FILE] = hashlib.sha256(b"garbage").hexdigest()
    meta[artifact.DIGEST_KEY] = artifact.meta_digest(meta)  # tabnn.json is checked too
    (saved / META_FILE).write_bytes(io.dump_json(meta))
    assert read_meta(saved)["checksums"][WEIGHTS_FILE] == meta["checksums"][WEIGHTS_FILE]
    with pytest.raises(ModelError, match="Cannot read the weights"):
        load_model_dir(saved)


def test_load_newer_format(saved: Path, monkeypatch):
    monkeypatch.setattr(artifact, "__version__", "0.1.0")
    meta = json.loads((saved / META_FILE).read_text())
    meta.update(format_version=FORMAT_VERSION + 1, tabnn_version="9.0.0")
    (saved / META_FILE).write_text(json.dumps(meta))
    expected = (
        r"made by tabnn 9.0.0 \(format 2\), newer than this tabnn 0.1.0 \(format 1\): "
        r"upgrade tabnn to load it"
    )
    with pytest.raises(ModelError, match=expected):
        load_model_dir(saved)


# --------------------------------------------------------------------------- plain data


def test_saved_directory_holds_only_plain_data(tmp_path: Path):
    target = save_model_dir(tmp_path / "m", _meta(), _tensors(), extra_files={"report.txt": "ok"})
    assert sorted(p.name for p in target.iterdir()) == sorted(
        [WEIGHTS_FILE, META_FILE, "report.txt"]
    )
    for file in target.iterdir():
        assert file.is_file() and not file.is_symlink()
        # Pickle protocol 2+ starts with 0x80; torch.save archives are zip files.
        assert not file.read_bytes().startswith((b"\x80", b"PK"))
    json.loads((target / META_FILE).read_text(encoding="utf-8"))

    data = (target / WEIGHTS_FILE).read_bytes()
    (header_size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_size])
    assert header.pop("__metadata__") == {"format": "pt"}
    assert set(header) == set(_tensors())
    # The tensors' byte ranges cover the rest of the file exactly: nothing else is hidden there.
    ends = sorted(entry["data_offsets"] for entry in header.values())
    assert ends[0][0] == 0 and ends[-1][1] == len(data) - 8 - header_size
    assert all(a[1] == b[0] for a, b in zip(ends, ends[1:], strict=False))


# --------------------------------------------------------------------------- fingerprints


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"age": [22.0, np.nan, 35.0], "sex": ["m", "f", None], "label": pd.Categorical(list("aba"))}
    )


def test_data_fingerprint_is_stable_for_equal_frames():
    first, second = data_fingerprint(_frame()), data_fingerprint(_frame().copy())
    assert first == second
    assert first["rows"] == 3
    assert first["columns"] == ["age", "sex", "label"]
    assert len(first["sha256"]) == 64


def test_data_fingerprint_ignores_the_index():
    shuffled_index = _frame().set_axis([10, 20, 30])
    assert data_fingerprint(shuffled_index) == data_fingerprint(_frame())


@pytest.mark.parametrize(
    "change",
    [
        lambda f: f.assign(age=[22.0, np.nan, 36.0]),
        lambda f: f.assign(sex=["m", "f", "f"]),
        lambda f: f.rename(columns={"age": "years"}),
        lambda f: f.iloc[::-1],
    ],
    ids=["number", "missing-filled", "column-name", "row-order"],
)
def test_data_fingerprint_changes_with_the_data(change):
    assert data_fingerprint(change(_frame()))["sha256"] != data_fingerprint(_frame())["sha256"]


def test_data_fingerprint_is_json_ready():
    assert json.loads(json.dumps(data_fingerprint(_frame()))) == data_fingerprint(_frame())


def test_package_versions_names_the_libraries():
    versions = package_versions()
    assert set(versions) == {
        "tabnn",
        "torch",
        "numpy",
        "pandas",
        "scikit-learn",
        "safetensors",
        "python",
    }
    assert versions["tabnn"] == tabnn.__version__
    assert all(isinstance(v, str) for v in versions.values())


# --------------------------------------------------------------------------- issue 9: tabnn.json


def _edit_meta(directory: Path, edit, *, reseal: bool = True) -> None:
    """Rewrite tabnn.json after ``edit(meta)``; ``reseal`` recomputes its digest, as only a
    deliberate forger (or a bug in tabnn) would."""
    meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
    edit(meta)
    if reseal:
        meta[artifact.DIGEST_KEY] = artifact.meta_digest(meta)
    (directory / META_FILE).write_bytes(io.dump_json(meta))


def test_save_records_the_digest_of_tabnn_json_and_the_oldest_reader(saved: Path):
    meta = read_meta(saved)
    assert meta[artifact.DIGEST_KEY] == artifact.meta_digest(meta)
    assert len(meta[artifact.DIGEST_KEY]) == 64
    assert meta["min_reader_version"] == artifact.MIN_READER_VERSION == "0.1.0"


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m.update(classes=["R", "M"]),
        lambda m: m.update(threshold=0.9),
        lambda m: m["nested"]["k"].reverse(),
        lambda m: m.update(extra="added"),
        lambda m: m.pop("task"),
        lambda m: m["checksums"].update({WEIGHTS_FILE: "0" * 64}),
    ],
    ids=["classes", "threshold", "nested-order", "added-key", "removed-key", "checksums"],
)
def test_an_edited_tabnn_json_is_refused(saved: Path, edit):
    _edit_meta(saved, edit, reseal=False)
    for read in (load_model_dir, read_meta):
        with pytest.raises(ModelError, match="does not match its digest.*edited after saving"):
            read(saved)


def test_a_reformatted_tabnn_json_is_refused(saved: Path):
    """tabnn.json must be byte for byte as saved: spaces and key order too (issue 20)."""
    meta = json.loads((saved / META_FILE).read_text())
    (saved / META_FILE).write_text(json.dumps(dict(reversed(meta.items()))))
    with pytest.raises(ModelError, match="does not match its digest.*spaces included"):
        load_model_dir(saved)


# byte edits that parse to what the digest covers (issue 20): each kept a valid digest
# while the digest was only of the parsed content
SAME_DIGEST_EDITS = {
    "null-to-1e400": ('"missing": null', '"missing": 1e400'),
    "float-spelling": ('"one": 1.0', '"one": 1.00'),
    "float-exponent": ('"one": 1.0', '"one": 1e0'),
    "minus-zero": ('"zero": 0', '"zero": -0'),
    "unicode-escape": ('"letter": "A"', '"letter": "\\u0041"'),
    "duplicate-key": ("{\n", '{\n  "letter": "B",\n'),
    "space": ('"zero": 0', '"zero" : 0'),
    "final-newline": ('"zero": 0\n}\n', '"zero": 0\n}'),  # "zero" is the last key
}


@pytest.mark.parametrize(("old", "new"), SAME_DIGEST_EDITS.values(), ids=SAME_DIGEST_EDITS)
def test_a_byte_edit_that_parses_to_the_same_digest_is_refused(tmp_path: Path, old, new):
    meta = {"missing": None, "one": 1.0, "zero": 0, "letter": "A"}
    target = save_model_dir(tmp_path / "m", meta, _tensors())
    text = (target / META_FILE).read_text()
    assert old in text
    (target / META_FILE).write_text(text.replace(old, new, 1))
    for read in (load_model_dir, read_meta):
        with pytest.raises(ModelError, match="does not match its digest.*edited after saving"):
            read(target)
    (target / "mine.txt").write_text("")  # nor do its checksums vouch for other files
    with pytest.raises(UsageError, match="files tabnn did not write"):
        save_model_dir(target, meta, _tensors())


def test_a_model_without_a_digest_is_refused_with_what_to_do(saved: Path):
    _edit_meta(saved, lambda m: m.pop(artifact.DIGEST_KEY), reseal=False)
    with pytest.raises(ModelError, match=r"has no digest \(meta_sha256\).*Save or train it again"):
        read_meta(saved)


@pytest.mark.parametrize(
    ("depth", "match"), [(600, "does not match its digest"), (100_000, "nested too deeply")]
)
def test_absurdly_nested_json_is_refused_without_a_traceback(saved: Path, depth, match):
    text = (saved / META_FILE).read_text()
    deep = '{"a": ' * depth + "1" + "}" * depth
    (saved / META_FILE).write_text(text.replace('"task": "binary"', f'"task": {deep}'))
    with pytest.raises(ModelError, match=match):
        read_meta(saved)


@pytest.mark.parametrize("name", ["report.json", "report_arrays.safetensors"])
def test_an_edited_or_missing_extra_file_is_refused(tmp_path: Path, name: str):
    target = save_model_dir(tmp_path / "m", {}, _tensors(), extra_files={name: b"data"})
    (target / name).write_bytes(b"dat4")
    with pytest.raises(ModelError, match=f"{name} that does not match.*modified after saving"):
        load_model_dir(target)
    (target / name).unlink()
    with pytest.raises(ModelError, match=f"has no {name}, which its tabnn.json lists"):
        read_meta(target)


# --------------------------------------------------------------------------- issue 9: versions


@pytest.mark.parametrize(
    ("made_by", "reader", "match"),
    [
        ("99.0", "1.5", r"made by tabnn 99.0 and needs tabnn 1.5 or newer.*upgrade tabnn"),
        ("99.0", None, r"made by tabnn 99.0 and needs tabnn 99.0 or newer.*upgrade tabnn"),
        ("0.1.0", "0.2", r"needs tabnn 0.2 or newer to read it; this is tabnn 0.1.0"),
        ("0.1.0", "new", "invalid tabnn version 'new'"),
        (99, "0.1.0", None),
    ],
    ids=["newer-reader", "no-reader", "reader-only", "bad-reader", "made-by-number"],
)
def test_a_model_needing_a_newer_tabnn_is_refused(saved, monkeypatch, made_by, reader, match):
    monkeypatch.setattr(artifact, "__version__", "0.1.0")

    def edit(meta):
        meta["tabnn_version"] = made_by
        meta.pop("min_reader_version")
        if reader is not None:
            meta["min_reader_version"] = reader

    _edit_meta(saved, edit)
    if match is None:
        load_model_dir(saved)  # the reader version is what counts
        return
    with pytest.raises(ModelError, match=match):
        load_model_dir(saved)


def test_a_newer_tabnn_whose_format_this_one_reads_loads(saved, monkeypatch):
    monkeypatch.setattr(artifact, "__version__", "0.10.0")  # numbers, not text: 0.10 > 0.9
    _edit_meta(saved, lambda m: m.update(tabnn_version="0.11.2rc1", min_reader_version="0.9.5"))
    assert load_model_dir(saved)[0]["tabnn_version"] == "0.11.2rc1"


# --------------------------------------------------------------------------- issue 9: sizes


@pytest.fixture(scope="module")
def fitted_dir(tmp_path_factory) -> Path:
    """A saved binary model with numeric columns (one with a missing-value indicator), a
    one-hot and an embedded categorical column."""
    rng = np.random.default_rng(0)
    n = 90
    X = pd.DataFrame(
        {
            "size": rng.normal(size=n),
            "weight": rng.normal(size=n),
            "color": rng.choice(["red", "green", "blue"], n),
            "city": rng.choice([f"c{i}" for i in range(25)], n),
        }
    )
    X.loc[::7, "size"] = np.nan
    y = np.where(X["weight"] > 0, "yes", "no")
    clf = tabnn.TabNNClassifier(hidden=[8], epochs=2, categorical=["city"]).fit(X, y)
    return tabnn.save(clf, tmp_path_factory.mktemp("fitted") / "model")


@pytest.fixture
def fitted(fitted_dir: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(fitted_dir, tmp_path / "model"))


@pytest.fixture
def network_devices(monkeypatch) -> list[str]:
    """The device each TabularMLP is built on (torch.device("meta") makes it "meta")."""
    from tabnn.nn.mlp import TabularMLP

    devices, real_init = [], TabularMLP.__init__

    def spy(self, config):
        devices.append(torch.empty(0).device.type)
        real_init(self, config)

    monkeypatch.setattr(TabularMLP, "__init__", spy)
    return devices


def test_a_model_loads_onto_tensors_the_files_justify(fitted: Path, network_devices):
    model = tabnn.load(fitted)
    assert network_devices == ["meta"]  # nothing allocated before the check
    assert not any(t.is_meta for t in [*model.model_.parameters(), *model.model_.buffers()])
    assert model.predict_proba(pd.DataFrame({"size": [1.0], "weight": [2.0], "color": ["x"],
                                             "city": [None]})).shape == (1, 2)  # fmt: skip


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            lambda m: m["model_config"].update(n_members=3),
            r"describes encoder\.medians as \(3, 1, 2\) torch.float32, "
            r"model\.safetensors holds \(1, 1, 2\) torch.float32",
        ),
        (lambda m: m["model_config"].update(n_members=1_000_000_000), "1,?000,?000,?000"),
        (
            lambda m: m["model_config"].update(hidden=[9]),
            r"describes hidden\.0\.weight as \(1, \d+, 9\).*holds \(1, \d+, 8\)",
        ),
        (
            lambda m: m["model_config"].update(hidden=[8] * 100_000),
            "describing 100001 layers and embeddings, but its model.safetensors holds 2",
        ),
        (
            lambda m: m["model_config"].update(embedding_dims=[0, 5]),
            r"describes encoder\.embeddings\.1 as \(1, \d+, 5\)",
        ),
    ],
    ids=["n-members", "a-billion-members", "hidden-size", "hidden-count", "embedding-dim"],
)
def test_sizes_are_checked_against_the_weights_before_allocation(
    fitted: Path, network_devices, edit, match
):
    _edit_meta(fitted, edit)
    with pytest.raises(ModelError, match=match):
        tabnn.load(fitted)
    assert set(network_devices) <= {"meta"}


def _drop_a_category(meta):
    meta["preprocessor"]["vocabularies"][0].pop()


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (_drop_a_category, r"model_config\.cardinalities is \[4, \d+\], expected \[3, \d+\]"),
        (
            lambda m: m["preprocessor"]["vocabularies"][0].__setitem__(1, "red"),
            r"distinct categories \+ 1 is \[3, \d+\], expected \[4, \d+\]",
        ),
        (
            lambda m: m["schema"]["classes"].append("maybe"),
            r"the number of classes is 3, expected 2",
        ),
        (
            lambda m: m["schema"].update(task="multiclass"),
            "model_config.n_outputs is 1, expected 2",
        ),
        (
            lambda m: m["model_config"].update(n_numeric=3),
            "model_config.n_numeric is 3, expected 2",
        ),
        (
            lambda m: m["preprocessor"].update(indicators=[True, True]),
            r"model_config\.indicator_columns is \[0\], expected \[0, 1\]",
        ),
        (
            lambda m: m["schema"].update(numeric=["weight", "size"]),
            r"the preprocessor's numeric columns is \['size', 'weight'\]",
        ),
        (lambda m: m.update(n_features_in=7), r"n_features_in is 7, expected 4"),
    ],
    ids=[
        "vocabulary-size",
        "duplicate-category",
        "classes",
        "task",
        "n-numeric",
        "indicators",
        "column-order",
        "n-features",
    ],
)
def test_parts_of_tabnn_json_must_agree_on_sizes(fitted: Path, network_devices, edit, match):
    _edit_meta(fitted, edit)
    with pytest.raises(ModelError, match=f"whose parts disagree: ({match})"):
        tabnn.load(fitted)
    assert network_devices == []


# --------------------------------------------------------------------------- issue 20: types


def _set(path: str, value):
    """An edit setting the value at a dotted key path ("model_config.hidden")."""

    def edit(meta):
        *parents, last = path.split(".")
        for key in parents:
            meta = meta[int(key)] if isinstance(meta, list) else meta[key]
        meta[int(last) if isinstance(meta, list) else last] = value

    return edit


# forged values (digest recomputed) -> what the message says after "its tabnn.json has "
FORGED = {
    "hidden-text": (
        _set("model_config.hidden", "abc"),
        'model_config.hidden = text ("abc"); expected a list of whole numbers',
    ),
    "no-schema": (lambda m: m.pop("schema"), "no schema (expected an object)"),
    "numeric-number": (
        _set("schema.numeric", 3),
        "schema.numeric = a number (3); expected a list of names",
    ),
    "unknown-task": (
        _set("schema.task", "regression"),
        'schema.task = text ("regression"); expected one of binary, multiclass, multilabel',
    ),
    "class-list": (
        _set("schema.classes", [["no"], "yes"]),
        'schema.classes[0] = a list (["no"]); expected text, a number or true/false',
    ),
    "norm": (
        _set("model_config.norm", "group"),
        'model_config.norm = text ("group"); expected one of none, batch, layer',
    ),
    "activation": (
        _set("model_config.activation", "swish"),
        'model_config.activation = text ("swish"); expected one of relu, gelu',
    ),
    "negative-size": (
        _set("model_config.hidden", [-3]),
        "model_config.hidden[0] = a number (-3); expected a whole number of at least 1",
    ),
    "bool-count": (
        _set("model_config.n_members", True),
        "model_config.n_members = true/false (true); expected a whole number",
    ),
    "unknown-key": (
        _set("model_config.extra", 1),
        "model_config.extra, a key this tabnn does not know in model_config",
    ),
    "category-number": (
        _set("preprocessor.vocabularies.1.0", 5),
        "preprocessor.vocabularies[1][0] = a number (5); expected text",
    ),
    "null-medians": (
        _set("preprocessor.medians", None),
        "preprocessor.medians = null; expected a list of numbers",
    ),
    "lr-text": (
        _set("train_config.lr", "fast"),
        'train_config.lr = text ("fast"); expected a number',
    ),
    "no-epochs": (
        lambda m: m["history"].pop("epochs"),
        "no history.epochs (expected a list of objects)",
    ),
    "threshold-text": (
        _set("threshold", "0.5"),
        'threshold = text ("0.5"); expected an object or null',
    ),
    "null-temperature": (_set("temperature", [None]), "temperature[0] = null; expected a number"),
    "temperature-count": (
        _set("temperature", [1.0, 2.0]),
        "temperature = a list ([1.0, 2.0]); expected a list of 1 positive number(s)",
    ),
    "threshold-range": (
        _set("threshold.value", 1.5),
        "threshold.value = a number (1.5); expected a decision threshold, a number from 0 to 1",
    ),
    "feature-name-number": (
        _set("feature_names_in", [1, 2, 3, 4]),
        "feature_names_in[0] = a number (1); expected text",
    ),
    "unknown-parameter": (
        _set("params.colour", "red"),
        "params.colour, which is not a parameter of this tabnn's TabNNClassifier",
    ),
}


@pytest.mark.parametrize(("edit", "message"), FORGED.values(), ids=FORGED)
def test_a_forged_value_of_another_type_is_named_with_what_was_expected(fitted, edit, message):
    """A tabnn.json forged with its digest recomputed names the key, what it holds and what
    was expected, before anything is built from it (issue 20)."""
    _edit_meta(fitted, edit)
    with pytest.raises(ModelError) as error:
        tabnn.load(fitted)
    assert f"'{fitted}': its tabnn.json has {message}" in str(error.value)
    assert str(error.value).endswith("Save or train the model again.")


def test_a_model_without_validation_rows_has_no_best_loss_and_loads(fitted):
    _edit_meta(fitted, _set("history.best_val_loss", [None]))
    assert tabnn.load(fitted).history_.best_val_loss == [None]


# --------------------------------------------------------------------------- issue 9: --out


def test_save_refuses_a_model_directory_holding_the_users_files(saved: Path):
    (saved / "thesis.txt").write_text("precious")
    (saved / "notes").mkdir()
    before = sorted(p.name for p in saved.iterdir())
    with pytest.raises(UsageError, match=r"files tabnn did not write.*: notes/, thesis.txt\. "):
        save_model_dir(saved, {}, _tensors())
    assert sorted(p.name for p in saved.iterdir()) == before
    assert (saved / "thesis.txt").read_text() == "precious"


def test_save_refuses_a_tabnn_json_that_is_not_a_models(tmp_path: Path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / META_FILE).write_text("{}")
    (folder / "thesis.txt").write_text("precious")
    with pytest.raises(UsageError, match=r"not a tabnn model directory \(its tabnn.json is not"):
        save_model_dir(folder, {}, _tensors())
    (folder / "thesis.txt").unlink()
    with pytest.raises(UsageError, match="its tabnn.json is not a tabnn model's"):
        save_model_dir(folder, {}, _tensors())
    assert [p.name for p in folder.iterdir()] == [META_FILE]


def test_the_refusal_lists_ten_foreign_entries_then_counts(saved: Path):
    for i in range(13):
        (saved / f"f{i:02d}.txt").write_text("x")
    refusal = artifact.replace_refusal(saved)
    assert "f09.txt and 3 more. Move them out" in refusal and "f10.txt" not in refusal


def test_save_replaces_reports_evaluations_and_leftover_temporaries(tmp_path: Path):
    target = save_model_dir(tmp_path / "m", {}, _tensors(), extra_files={"roc.png": b"1"})
    for name in ["report.json", "report.html", ".report.html.123.0badf00d.tmp"]:
        (target / name).write_text("x")
    (target / "evaluations" / "test.csv").mkdir(parents=True)
    for name in artifact.REPORT_FILES:
        (target / "evaluations" / "test.csv" / name).write_text("x")
    assert artifact.replace_refusal(target) is None
    save_model_dir(target, {"v": 2}, _tensors())
    assert sorted(p.name for p in target.iterdir()) == [WEIGHTS_FILE, META_FILE]


def test_save_refuses_foreign_files_inside_evaluations(saved: Path):
    (saved / "evaluations" / "test.csv").mkdir(parents=True)
    (saved / "evaluations" / "test.csv" / "notes.txt").write_text("mine")
    (saved / "evaluations" / "summary.txt").write_text("mine")
    with pytest.raises(UsageError, match="evaluations/summary.txt, evaluations/test.csv/notes.txt"):
        save_model_dir(saved, {}, _tensors())


def test_a_link_inside_a_model_directory_is_not_tabnns(saved: Path, tmp_path: Path):
    (tmp_path / "elsewhere.html").write_text("mine")
    (saved / "report.html").symlink_to(tmp_path / "elsewhere.html")
    assert "report.html" in artifact.replace_refusal(saved)


def test_out_is_checked_for_foreign_files_before_training(saved: Path):
    from tabnn.workflows.runs import check_model_out

    check_model_out(saved)  # a model directory of tabnn's own files may be replaced
    (saved / "thesis.txt").write_text("precious")
    with pytest.raises(UsageError, match=r"Cannot save the model to .*thesis\.txt"):
        check_model_out(saved)


# --------------------------------------------------------------------------- issue 9: recovery


def _leave_interrupted_save(tmp_path: Path, *, new: bool = True, old: bool = True) -> Path:
    """The state a kill between the two renames of a save leaves: the old model moved
    aside, the complete new one still staged, nothing at the model's path."""
    target = tmp_path / "model"
    if old:
        save_model_dir(tmp_path / "v1", {"v": 1}, _tensors())
        os.rename(tmp_path / "v1", tmp_path / ".model.old-0000abcd")
    if new:
        save_model_dir(tmp_path / "v2", {"v": 2}, _tensors())
        os.rename(tmp_path / "v2", tmp_path / ".model.tmp-1111abcd")
    return target


def test_a_load_after_a_kill_between_the_renames_restores_the_new_model(tmp_path: Path):
    target = _leave_interrupted_save(tmp_path)
    assert load_model_dir(target)[0]["v"] == 2
    assert _siblings(target) == [".model.old-0000abcd", "model"]
    save_model_dir(target, {"v": 3}, _tensors())  # the next save cleans the leftovers
    assert _siblings(target) == ["model"]
    assert read_meta(target)["v"] == 3


def test_a_load_restores_the_old_model_when_the_new_one_is_incomplete(tmp_path: Path):
    target = _leave_interrupted_save(tmp_path)
    (tmp_path / ".model.tmp-1111abcd" / META_FILE).write_text('{"format_version": 1')
    assert read_meta(target)["v"] == 1
    assert _siblings(target) == [".model.tmp-1111abcd", "model"]


def test_a_save_after_a_kill_restores_then_replaces_and_cleans_up(tmp_path: Path):
    target = _leave_interrupted_save(tmp_path, new=False)
    (tmp_path / ".model.tmp-2222abcd").mkdir()  # a staged copy that never got its files
    (tmp_path / ".model.tmp-notes").mkdir()  # not a name tabnn makes: left alone
    save_model_dir(target, {"v": 3}, _tensors())
    assert _siblings(target) == [".model.tmp-notes", "model"]
    assert read_meta(target)["v"] == 3


def test_nothing_complete_to_restore_keeps_the_hint(tmp_path: Path):
    (tmp_path / ".model.tmp-1111abcd").mkdir()
    with pytest.raises(InputNotFoundError, match=r"does not exist\. A save was interrupted"):
        load_model_dir(tmp_path / "model")
    assert _siblings(tmp_path / "model") == [".model.tmp-1111abcd"]


def test_a_real_kill_between_the_renames_is_recovered(tmp_path: Path):
    """A process killed (os._exit: no cleanup runs) right after the old model was moved
    aside; the next load finds the new model."""
    import subprocess
    import sys

    script = f"""
import os, torch
from tabnn.artifact.directory import save_model_dir
save_model_dir({str(tmp_path / "model")!r}, {{"v": 1}}, {{"w": torch.ones(2)}})
real, calls = os.rename, []
def rename(src, dst):
    calls.append(src)
    real(src, dst)
    if len(calls) == 1:
        os._exit(9)
os.rename = rename
save_model_dir({str(tmp_path / "model")!r}, {{"v": 2}}, {{"w": torch.ones(2)}})
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 9, done.stderr
    assert not (tmp_path / "model").exists()
    assert load_model_dir(tmp_path / "model")[0]["v"] == 2
