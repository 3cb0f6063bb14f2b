"""Save and load a model directory: plain data only, written atomically, verified whole.

A model directory holds ``model.safetensors`` (named tensors) and ``tabnn.json`` (a JSON
dict with everything else), plus optional extra files such as reports. ``tabnn.json``
records the SHA-256 of every other file and, under ``meta_sha256``, of its own content;
every read checks them all, and ``tabnn.json`` must be byte for byte as tabnn wrote it.
:func:`save_model_dir` and :func:`load_model_dir` store a dict and named tensors;
:func:`save` and :func:`load` a fitted estimator, whose sizes are checked against the
weights before anything is allocated.

Nothing here pickles or unpickles, and loading never executes code from the artifact:
tensors go through safetensors, everything else through strict JSON.
"""

import hashlib
import json
import os
import platform
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import pandas as pd
import safetensors
import safetensors.torch
import torch

from .. import __version__
from ..errors import InputNotFoundError, ModelError, TabnnError, UsageError
from ..estimator.twin_choice import twins_info
from ..io import (
    checksum_mismatch,
    dump_json,
    leftovers,
    load_json,
    plain_name,
    restore_leftover,
    to_jsonable,
    unknown_entries,
    write_dir_atomic,
)
from .rebuild import (
    META_FILE,
    WEIGHTS_FILE,
    check_parts_agree,
    check_types,
    network_from_tensors,
    saved_temperature,
    saved_threshold,
    saved_twins,
)

FORMAT_VERSION = 1
MIN_READER_VERSION = "0.1.0"  # the oldest tabnn that reads what this one writes
DIGEST_KEY = "meta_sha256"  # tabnn.json's own SHA-256: see meta_digest
# Files tabnn writes in a model directory besides those tabnn.json lists, and the folder of
# evaluate's reports (evaluations/<data file>/report.*)
REPORT_FILES = ("report.json", "report_arrays.safetensors", "report.html")
EVALUATIONS = "evaluations"
# Keys that save_model_dir writes and read_meta insists on (DIGEST_KEY has its own message).
REQUIRED_KEYS = ("format_version", "tabnn_version", "versions", "created", "checksums")
# Distribution names whose versions go into every artifact, to explain a result later.
_VERSIONED_PACKAGES = ("torch", "numpy", "pandas", "scikit-learn", "safetensors")

PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------- versions


def package_versions() -> dict[str, str | None]:
    """Versions of tabnn, Python and the libraries whose behaviour shapes a model: keys
    ``tabnn``, ``torch``, ``numpy``, ``pandas``, ``scikit-learn``, ``safetensors`` and
    ``python``; ``None`` for a package that is not installed."""
    versions: dict[str, str | None] = {"tabnn": __version__}
    for name in _VERSIONED_PACKAGES:
        # Package metadata, not imports: asking for a version should not import sklearn.
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = None
    versions["python"] = platform.python_version()
    return versions


def data_fingerprint(frame: pd.DataFrame) -> dict[str, Any]:
    """A short, stable description of a table: ``{"rows": int, "columns": [str, ...],
    "sha256": str}``. The hash covers the column names and every value (not the index),
    using ``pd.util.hash_pandas_object``, whose per-row hashes do not depend on the run,
    the platform or ``PYTHONHASHSEED``.

    >>> fp = data_fingerprint(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}))
    >>> fp["rows"], fp["columns"], len(fp["sha256"])
    (2, ['a', 'b'], 64)
    """
    fingerprint = Fingerprint()
    fingerprint.add(frame)
    return fingerprint.result()


class Fingerprint:
    """``data_fingerprint`` of a table given in consecutive parts (a stream's chunks). A
    row's hash depends on its columns' types, so the parts give the whole table's digest
    when each types its columns as the whole table does; a part without missing values,
    in a column of integers that has some elsewhere, holds int64 where the whole table
    holds float64, and its rows hash otherwise."""

    def __init__(self) -> None:
        self.rows = 0
        self.columns: list[str] | None = None
        self.digest = hashlib.sha256()

    def add(self, frame: pd.DataFrame) -> None:
        if self.columns is None:
            self.columns = [str(c) for c in frame.columns]
            # Names first, so the same values under other column names give another hash.
            self.digest.update(json.dumps(self.columns).encode("utf-8"))
        row_hashes = pd.util.hash_pandas_object(frame, index=False)
        # Fixed little-endian bytes keep the digest equal across platforms.
        self.digest.update(row_hashes.to_numpy(dtype="<u8").tobytes())
        self.rows += len(frame)

    def result(self) -> dict[str, Any]:
        return {"rows": self.rows, "columns": self.columns, "sha256": self.digest.hexdigest()}


# --------------------------------------------------------------------------- save


def save_model_dir(
    path: PathLike,
    meta: dict,
    tensors: Mapping[str, torch.Tensor],
    *,
    extra_files: Mapping[str, bytes | str] | None = None,
) -> Path:
    """Write a model directory atomically: a crash never leaves a half-written model.

    Everything is written into a fresh hidden directory next to ``path`` (missing parents
    are made), flushed to disk and renamed into place. An existing model directory at
    ``path`` is renamed aside first and deleted only once the new one is in place; it may
    hold only what tabnn writes (:func:`replace_refusal`, else UsageError). When ``path``
    is missing because a save was killed between its renames, that model is restored first.

    ``meta`` is anything JSON can hold (see :func:`to_jsonable`; TypeError otherwise); a
    copy is stored with ``format_version``, ``tabnn_version``, ``min_reader_version``,
    ``versions``, ``created``, ``checksums`` and ``meta_sha256`` added. ``tensors`` go to
    ``model.safetensors`` (on the CPU); ``extra_files`` (plain name -> bytes, or text
    stored as UTF-8) beside it, such as reports. Returns the directory.
    """
    target = Path(os.path.abspath(path))
    if not target.exists() and not target.is_symlink():
        restore_leftover(target, _verifies)
    refusal = replace_refusal(target)
    if refusal:
        raise UsageError(f"Refusing to overwrite '{path}': {refusal}")
    files = _serialise(meta, tensors, extra_files or {})
    target.parent.mkdir(parents=True, exist_ok=True)
    write_dir_atomic(target, files, replace=target.is_dir())
    return target


def replace_refusal(path: PathLike) -> str | None:
    """Why a model may not be saved at ``path`` (sentences), or None when it may: when
    ``path`` is missing, an empty directory, or a tabnn model directory (its ``tabnn.json``
    has a ``format_version``) holding only what tabnn writes there (its files, the files
    its checksums list, REPORT_FILES and ``evaluations/`` of report folders)."""
    target = Path(path)
    if target.is_symlink():
        return "it is a symbolic link. Save to the directory it points to, or choose another path."
    if not target.exists():
        return None
    if not target.is_dir():
        return "it is a file, not a model directory. Choose another path."
    if not any(target.iterdir()):
        return None
    raw, meta = _model_meta_or_none(target / META_FILE)
    if meta is None:
        found = f"its {META_FILE} is not a tabnn model's" if (target / META_FILE).exists() else ""
        return (
            "it is a non-empty directory that is not a tabnn model directory "
            f"({found or f'no {META_FILE}'}). Choose another path or remove it."
        )
    checksums = meta.get("checksums")  # trusted only from a tabnn.json that verifies
    verified = isinstance(checksums, dict) and sealed(raw, meta)
    ours = {META_FILE, WEIGHTS_FILE, *REPORT_FILES, *(checksums if verified else {})}
    foreign = unknown_entries(target, ours, {EVALUATIONS: REPORT_FILES})
    if not foreign:
        return None
    more = f" and {len(foreign) - 10} more" if len(foreign) > 10 else ""
    return (
        "it holds files tabnn did not write, which replacing the model would delete: "
        f"{', '.join(foreign[:10])}{more}. Move them out or choose another path."
    )


def _model_meta_or_none(meta_file: Path) -> tuple[bytes, dict | None]:
    """The bytes of ``meta_file`` and the JSON object in them if it is a tabnn model's
    (has a format_version), else None."""
    try:
        raw = meta_file.read_bytes()
        meta = load_json(raw)
    except (OSError, ValueError):  # ValueError covers bad UTF-8 and bad JSON
        return b"", None
    ours = isinstance(meta, dict) and "format_version" in meta and not meta_file.is_symlink()
    return raw, meta if ours else None


def _serialise(
    meta: dict, tensors: Mapping[str, torch.Tensor], extra_files: Mapping[str, bytes | str]
) -> dict[str, bytes]:
    """Every file's bytes, the JSON last; done in memory so bad input touches no disk."""
    if not isinstance(meta, Mapping):
        raise TypeError(f"meta must be a dict, got {type(meta).__name__}.")
    files = {WEIGHTS_FILE: _tensor_bytes(tensors)}
    for name, content in extra_files.items():
        _check_extra_name(name)
        files[name] = content.encode("utf-8") if isinstance(content, str) else bytes(content)
    checksums = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    full_meta = {
        **meta,
        "format_version": FORMAT_VERSION,
        "tabnn_version": __version__,
        "min_reader_version": MIN_READER_VERSION,
        "versions": package_versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "checksums": checksums,
    }
    full_meta = to_jsonable(full_meta, "meta")  # the digest is of exactly what is written
    full_meta[DIGEST_KEY] = meta_digest(full_meta)
    files[META_FILE] = dump_json(full_meta)
    return files


def meta_digest(meta: Mapping) -> str:
    """The SHA-256 that ``tabnn.json`` records of itself under ``meta_sha256``: of the
    canonical JSON (:func:`tabnn.io.dump_json`) of ``meta`` without that key. It catches
    accidents and edits; whoever edits on purpose can recompute it, as tests do (and
    write the file with ``dump_json``: see :func:`sealed`)."""
    unsigned = {key: value for key, value in meta.items() if key != DIGEST_KEY}
    try:
        return hashlib.sha256(dump_json(unsigned)).hexdigest()
    except RecursionError:  # nested deeper than tabnn ever writes: matches no digest
        return ""


def sealed(raw: bytes, meta: Mapping) -> bool:
    """Whether ``raw``, the bytes of a ``tabnn.json``, are exactly what a save writes for
    ``meta``, the JSON they hold: its canonical JSON, whose digest it records.

    The digest alone is of the parsed content, and parsing loses things: ``1e400`` is an
    infinity, which canonical JSON writes as null, a repeated key keeps its last value,
    ``1.00`` is ``1.0``. Asking for the canonical bytes too means that two files that
    differ in any byte cannot both pass, so no edit keeps a valid digest."""
    try:
        canonical = dump_json(meta)
    except RecursionError:  # nested deeper than tabnn ever writes
        return False
    return raw == canonical and meta.get(DIGEST_KEY) == meta_digest(meta)


def _tensor_bytes(tensors: Mapping[str, torch.Tensor]) -> bytes:
    """The safetensors file as bytes, so its checksum is of exactly what gets written."""
    prepared = {}
    for name, tensor in tensors.items():
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            raise TypeError(f"tensors must map str to torch.Tensor, got {name!r}: {type(tensor)}.")
        # safetensors needs dense CPU memory; GPU or strided views would fail or mislead.
        prepared[name] = tensor.detach().to("cpu").contiguous()
    return safetensors.torch.save(prepared, metadata={"format": "pt"})


def _check_extra_name(name: str) -> None:
    """Extra files are plain names inside the directory: no paths, no hidden or reserved names."""
    if not plain_name(name) or name in (WEIGHTS_FILE, META_FILE):
        raise UsageError(
            f"Cannot store an extra file named {name!r}: use a plain file name other than "
            f"{WEIGHTS_FILE!r} and {META_FILE!r}, not starting with '.'."
        )


# --------------------------------------------------------------------------- load


def load_model_dir(path: PathLike) -> tuple[dict, dict[str, torch.Tensor]]:
    """Load a model directory written by :func:`save_model_dir`, checking it first:
    -> (the dict in ``tabnn.json``, the named tensors on the CPU).

    Only JSON and safetensors are parsed, so no code from the artifact runs. ``tabnn.json``
    is checked against its own digest and every file it lists against its SHA-256; the
    weights are read once, checked and parsed from those same bytes. When ``path`` is
    missing because a save was killed between its renames, that save's model is restored.
    InputNotFoundError if ``path`` does not exist; ModelError if it is not a complete tabnn
    model directory, comes from a newer tabnn or from one that wrote no digest, or any of
    its files was modified or is corrupt.
    """
    meta = _read_checked_meta(path)
    data = (Path(path) / WEIGHTS_FILE).read_bytes()  # memory: the file's own size
    _check_files(path, meta, weights=data)
    try:
        tensors = safetensors.torch.load(data)
    except (safetensors.SafetensorError, ValueError, TypeError) as error:
        raise ModelError(f"Cannot read the weights in '{path}': {error}.") from error
    return meta, tensors


def read_meta(path: PathLike) -> dict:
    """Read and check ``tabnn.json`` of a model directory, without loading the weights.
    Runs every check of :func:`load_model_dir` (the checksums read in blocks), not those of
    :func:`load` on what the dict holds (``tabnn info`` runs ``load`` itself)."""
    meta = _read_checked_meta(path)
    _check_files(path, meta)
    return meta


def _read_checked_meta(path: PathLike, *, recover: bool = True) -> dict:
    """Parse ``tabnn.json`` and check its format, required keys, reader version and digest
    (in this order: a newer format may digest otherwise, and says so first)."""
    directory = _existing_model_dir(path, recover)
    raw = (directory / META_FILE).read_bytes()
    try:
        meta = load_json(raw)
    except ValueError as error:  # bad UTF-8 too
        raise ModelError(f"'{path}' has a {META_FILE} that is not valid JSON: {error}.") from error
    if not isinstance(meta, dict):
        raise ModelError(f"'{path}' has a {META_FILE} that is not a JSON object.")
    _check_format_version(path, meta)
    missing = [key for key in REQUIRED_KEYS if key not in meta]
    if missing:
        raise ModelError(f"'{path}' has a {META_FILE} without required keys: {', '.join(missing)}.")
    _check_reader_version(path, meta)
    if not sealed(raw, meta):
        problem = (
            "does not match its digest (meta_sha256): it was edited after saving (a change "
            "to any byte counts, spaces included) or is corrupt"
            if DIGEST_KEY in meta
            else "has no digest (meta_sha256): it was saved by a development version of tabnn "
            "older than this model format"
        )
        raise ModelError(f"'{path}' has a {META_FILE} that {problem}. Save or train it again.")
    return meta


def _existing_model_dir(path: PathLike, recover: bool = True) -> Path:
    """``path`` as a directory holding both files (restored first when a save was killed
    between its renames), or an error saying what is wrong."""
    directory = Path(path)
    if not directory.exists() and not (recover and restore_leftover(directory, _verifies)):
        raise InputNotFoundError(
            f"Model directory '{path}' does not exist.{_interrupted_hint(directory)}"
        )
    if not directory.is_dir():
        raise ModelError(f"'{path}' is a file, not a tabnn model directory.")
    has_meta = (directory / META_FILE).is_file()
    has_weights = (directory / WEIGHTS_FILE).is_file()
    if has_meta and has_weights:
        return directory
    if has_meta or has_weights:
        present, absent = (META_FILE, WEIGHTS_FILE) if has_meta else (WEIGHTS_FILE, META_FILE)
        reason = f"it has {present} but no {absent}; it may be half-written or damaged"
    elif any(directory.iterdir()):
        reason = f"it has no {META_FILE} or {WEIGHTS_FILE}"
    else:
        reason = "it is empty"
    raise ModelError(
        f"'{path}' is not a tabnn model directory: {reason}.{_interrupted_hint(directory)}"
    )


def _interrupted_hint(directory: Path) -> str:
    """A sentence naming leftovers of an interrupted save next to ``directory``, if any."""
    names = ", ".join(sorted(p.name for p in leftovers(directory)))
    hint = f" A save was interrupted (half-written): {names} next to it may hold the previous"
    return f"{hint} or the new model." if names else ""


def _verifies(directory: Path) -> bool:
    """Whether a model directory passes every check. A save killed between its renames is
    undone on the next load or save by ``restore_leftover(directory, _verifies)``: the newest
    staged model that verifies, else the moved-aside one (the next save removes the rest)."""
    try:
        _check_files(directory, _read_checked_meta(directory, recover=False))
    except (TabnnError, OSError):
        return False
    return True


def _check_format_version(path: PathLike, meta: dict) -> None:
    """Refuse a format this tabnn cannot read, telling the user to upgrade when newer."""
    version = meta.get("format_version")
    if version is None:
        raise ModelError(f"'{path}' has a {META_FILE} without required keys: format_version.")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelError(f"'{path}' has an invalid format_version {version!r} in {META_FILE}.")
    if version > FORMAT_VERSION:
        made_by = meta.get("tabnn_version", "an unknown version")
        raise ModelError(
            f"Model '{path}' was made by tabnn {made_by} (format {version}), newer than this "
            f"tabnn {__version__} (format {FORMAT_VERSION}): upgrade tabnn to load it."
        )


def _check_reader_version(path: PathLike, meta: dict) -> None:
    """Refuse a model whose ``min_reader_version`` (its ``tabnn_version`` when it has none)
    is newer than this tabnn."""
    made_by = meta["tabnn_version"]
    needed = meta.get("min_reader_version", made_by)
    release, this = _release(needed), _release(__version__) or (0,)
    if release is None:
        raise ModelError(f"'{path}' has an invalid tabnn version {needed!r} in {META_FILE}.")
    width = max(len(release), len(this))
    if release + (0,) * (width - len(release)) > this + (0,) * (width - len(this)):
        raise ModelError(
            f"Model '{path}' was made by tabnn {made_by} and needs tabnn {needed} or newer to "
            f"read it; this is tabnn {__version__}: upgrade tabnn to load it."
        )


def _release(version) -> tuple[int, ...] | None:
    """The leading dotted numbers of a version string ("0.10.2rc1" -> (0, 10, 2))."""
    match = re.match(r"\d+(\.\d+)*", version) if isinstance(version, str) else None
    return tuple(int(part) for part in match.group().split(".")) if match else None


def _check_files(path: PathLike, meta: dict, weights: bytes | None = None) -> None:
    """Check every file ``tabnn.json`` lists against its SHA-256 (the weights' from
    ``weights`` when given, the others read in blocks)."""
    checksums = meta["checksums"]
    if not isinstance(checksums, dict) or not isinstance(checksums.get(WEIGHTS_FILE), str):
        raise ModelError(f"'{path}' has a {META_FILE} without a checksum for {WEIGHTS_FILE}.")
    known = {} if weights is None else {WEIGHTS_FILE: weights}
    name, why = checksum_mismatch(Path(path), checksums, known) or (None, None)
    problem = {
        "invalid": f"has an invalid checksum entry {name!r} in {META_FILE}",
        "missing": f"has no {name}, which its {META_FILE} lists: it is incomplete or damaged",
        "modified": f"has a {name} that does not match the checksum in {META_FILE}: it was "
        "modified after saving or is corrupt",
    }.get(why)
    if problem:
        raise ModelError(f"'{path}' {problem}. Save or train the model again.")


# --------------------------------------------------------------------------- models


def save(estimator, path: PathLike, *, extra_meta: dict | None = None, extra_files=None) -> Path:
    """Save a fitted ``TabNNClassifier`` as a model directory (safetensors + JSON);
    ``extra_meta`` adds keys to ``tabnn.json`` (test metrics, the data's fingerprint...).
    ``load(save(clf, path))`` predicts exactly as ``clf``."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    history = estimator.history_
    meta = {
        "estimator": type(estimator).__name__,
        "params": estimator.get_params(),
        "schema": estimator.schema_.to_dict(),
        "preprocessor": estimator.preprocessor_.to_dict(),
        "model_config": estimator.model_config_.to_dict(),
        "train_config": estimator.train_config_.to_dict(),
        "history": {k: getattr(history, k) for k in ("best_epoch", "best_val_loss", "epochs")},
        "n_features_in": estimator.n_features_in_,
        "feature_names_in": getattr(estimator, "feature_names_in_", None),
        "threshold": threshold_info(estimator),
        "temperature": temperature_info(estimator),
        "twins": twins_info(estimator),
        **(extra_meta or {}),
    }
    tensors = dict(estimator.model_.state_dict())
    twins = getattr(estimator, "twins_", None)
    tensors.update(twins.tensors() if twins is not None else {})
    return save_model_dir(path, to_jsonable(meta, "meta"), tensors, extra_files=extra_files)


def threshold_info(estimator) -> dict:
    """The decision threshold a fitted estimator applies and how it was chosen, as stored
    under ``"threshold"`` in ``tabnn.json``: ``{"value": 0.37, "tuning": None}`` for a
    fixed threshold; ``tuning`` holds ``metric``, ``score``, ``precision``, ``recall``,
    ``rows`` (validation rows), ``members`` and ``members_per_row`` when it was chosen on
    validation rows (see ``TabNNClassifier.threshold_tuning_``)."""
    return {"value": estimator.threshold_, "tuning": estimator.threshold_tuning_}


def temperature_info(estimator) -> list[float] | None:
    """The temperatures a fitted estimator divides its logits by, as stored under
    ``"temperature"`` in ``tabnn.json``: a list of one number (binary, multi-class) or one
    per label (multi-label), or None when it was not calibrated (``calibrate=False``)."""
    temperature = getattr(estimator, "temperature_", None)
    return None if temperature is None else [float(t) for t in temperature]


def _check_params(path: PathLike, params: dict, known: dict) -> None:
    """Refuse estimator parameters that this tabnn does not have (a newer one's, a typo)."""
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ModelError(
            f"'{path}': its {META_FILE} has params.{unknown[0]}, which is not a parameter of "
            "this tabnn's TabNNClassifier. Save or train the model again."
        )


def load(path: PathLike):
    """Load a model directory into a fitted ``TabNNClassifier`` (no code from it runs).
    Beyond :func:`load_model_dir`'s checks, every value of ``tabnn.json`` read here must be
    of the type tabnn writes (``rebuild.check_types``: a ModelError names the key, what it
    holds and what was expected), its parts must agree on every size, and they must
    describe exactly the tensors in the weights file (compared on the meta device, which
    allocates nothing): the memory used is what the files justify."""
    from ..engine.config import History, TrainConfig
    from ..estimator.classifier import TabNNClassifier
    from ..features.preprocess import Preprocessor
    from ..features.schema import Schema
    from ..nn.config import ModelConfig

    meta, tensors = load_model_dir(path)
    check_types(path, meta)  # each value read below is of the type tabnn writes
    params = dict(meta["params"])
    _check_params(path, params, TabNNClassifier().get_params())
    try:
        parts = {
            "schema": Schema.from_dict(meta["schema"]),
            "preprocessor": Preprocessor.from_dict(meta["preprocessor"]),
            "model_config": ModelConfig.from_dict(meta["model_config"]),
            "train_config": TrainConfig(**meta["train_config"]),
            "history": History(**meta["history"]),
            "n_features_in": meta["n_features_in"],
            "feature_names_in": meta.get("feature_names_in"),
        }
        check_parts_agree(path, parts)
        twins = saved_twins(path, meta, tensors, parts)  # takes the twins.* tensors out
        parts["model"] = network_from_tensors(path, parts["model_config"], tensors)
    except ModelError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, OverflowError) as error:
        raise ModelError(  # what the type checks cannot tell before the rebuild
            f"'{path}' does not describe a model this tabnn can rebuild ({error}). Save or "
            "train the model again."
        ) from error
    threshold, tuning = saved_threshold(meta, path)
    schema = parts["schema"]
    outputs = len(schema.classes) if schema.task == "multilabel" else 1
    estimator = TabNNClassifier.from_fitted(
        params,
        **parts,
        threshold=threshold,
        threshold_tuning=tuning,
        temperature=saved_temperature(meta, path, outputs),
        twins=twins,
        twin_choice=(meta.get("twins") or {}).get("choice"),
    )
    estimator.metadata_ = meta
    return estimator
