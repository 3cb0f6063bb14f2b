"""Save and load a model directory: plain data only, written atomically.

A model directory holds ``model.safetensors`` (named tensors) and ``tabnn.json`` (a JSON
dict with everything else), plus optional extra files such as reports. This module is
generic: it knows nothing about models, it stores a dict and named tensors.

Nothing here pickles or unpickles, and loading never executes code from the artifact:
tensors go through safetensors, everything else through strict JSON.
"""

import hashlib
import json
import os
import platform
from collections.abc import Mapping
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import pandas as pd
import safetensors
import safetensors.torch
import torch

from . import __version__
from .errors import InputNotFoundError, ModelError, UsageError
from .io import dump_json, to_jsonable, write_dir_atomic

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
META_FILE = "tabnn.json"

# Keys that save_model_dir writes and read_meta insists on.
REQUIRED_KEYS = ("format_version", "tabnn_version", "versions", "created", "checksums")

# Distribution names whose versions go into every artifact, to explain a result later.
_VERSIONED_PACKAGES = ("torch", "numpy", "pandas", "scikit-learn", "safetensors")

PathLike = str | os.PathLike[str]


def _reject_constant(name: str) -> None:
    """Refuse NaN and Infinity when reading: tabnn never writes them, strict JSON has none."""
    raise ValueError(f"{name} is not valid in strict JSON")


# --------------------------------------------------------------------------- versions


def package_versions() -> dict[str, str | None]:
    """Versions of tabnn, Python and the libraries whose behaviour shapes a model.

    Returns
    -------
    dict of str to str or None
        Keys ``tabnn``, ``torch``, ``numpy``, ``pandas``, ``scikit-learn``,
        ``safetensors`` and ``python``; ``None`` for a package that is not installed.

    Examples
    --------
    >>> package_versions()["tabnn"] == __version__
    True
    """
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
    """A short, stable description of a table: its size, columns and a content hash.

    The hash covers the column names and every value (not the index), using
    ``pd.util.hash_pandas_object``, whose per-row hashes do not depend on the run,
    the platform or ``PYTHONHASHSEED``.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table, usually the training data.

    Returns
    -------
    dict
        ``{"rows": int, "columns": [str, ...], "sha256": str}``.

    Examples
    --------
    >>> fp = data_fingerprint(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}))
    >>> fp["rows"], fp["columns"], len(fp["sha256"])
    (2, ['a', 'b'], 64)
    """
    columns = [str(c) for c in frame.columns]
    row_hashes = pd.util.hash_pandas_object(frame, index=False)
    digest = hashlib.sha256()
    # Names first, so the same values under other column names give another hash.
    digest.update(json.dumps(columns).encode("utf-8"))
    # Fixed little-endian bytes keep the digest equal across platforms.
    digest.update(row_hashes.to_numpy(dtype="<u8").tobytes())
    return {"rows": int(len(frame)), "columns": columns, "sha256": digest.hexdigest()}


# --------------------------------------------------------------------------- save


def save_model_dir(
    path: PathLike,
    meta: dict,
    tensors: Mapping[str, torch.Tensor],
    *,
    extra_files: Mapping[str, bytes | str] | None = None,
) -> Path:
    """Write a model directory atomically: a crash never leaves a half-written model.

    Everything is written into a fresh hidden directory next to ``path``, flushed to
    disk and then renamed into place. An existing model directory at ``path`` is
    renamed aside first and deleted only once the new one is in place.

    Parameters
    ----------
    path : str or os.PathLike
        The model directory to create or replace. Missing parent directories are made.
    meta : dict
        Anything JSON can hold (see :func:`to_jsonable`). A copy is stored with
        ``format_version``, ``tabnn_version``, ``versions``, ``created`` and
        ``checksums`` added (replacing any such keys in ``meta``).
    tensors : mapping of str to torch.Tensor
        Named tensors, stored in ``model.safetensors`` (moved to the CPU first).
    extra_files : mapping of str to bytes or str, optional
        More files to store, such as reports, by plain file name; text is UTF-8.

    Returns
    -------
    pathlib.Path
        The model directory.

    Raises
    ------
    UsageError
        If ``path`` is a file, a symbolic link or a non-empty directory that is not a
        tabnn model directory, or an extra file has a name that cannot be used.
    TypeError
        If ``meta`` holds a value with no JSON form or a tensor is not a tensor.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "model"
    >>> save_model_dir(target, {"task": "binary"}, {"w": torch.zeros(2, 3)}).name
    'model'
    >>> load_model_dir(target)[1]["w"].shape
    torch.Size([2, 3])
    """
    target = Path(os.path.abspath(path))
    replace = _check_save_target(target, shown=path)
    files = _serialise(meta, tensors, extra_files or {})
    target.parent.mkdir(parents=True, exist_ok=True)
    write_dir_atomic(target, files, replace=replace)
    return target


def _check_save_target(target: Path, shown: PathLike) -> bool:
    """Whether ``target`` exists and may be replaced; refuse anything that is not ours."""
    if target.is_symlink():
        raise UsageError(
            f"Refusing to overwrite '{shown}': it is a symbolic link. "
            "Save to the directory it points to, or choose another path."
        )
    if not target.exists():
        return False
    if not target.is_dir():
        raise UsageError(f"Refusing to overwrite '{shown}': it is a file, not a model directory.")
    if (target / META_FILE).is_file() or not any(target.iterdir()):
        return True
    raise UsageError(
        f"Refusing to overwrite '{shown}': it is a non-empty directory that is not a tabnn "
        f"model directory (no {META_FILE}). Choose another path or remove it."
    )


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
        "versions": package_versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "checksums": checksums,
    }
    files[META_FILE] = dump_json(full_meta)
    return files


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
    bad = (
        not isinstance(name, str)
        or name in ("", ".", "..", WEIGHTS_FILE, META_FILE)
        or name.startswith(".")
        or "/" in name
        or "\\" in name
    )
    if bad:
        raise UsageError(
            f"Cannot store an extra file named {name!r}: use a plain file name other than "
            f"{WEIGHTS_FILE!r} and {META_FILE!r}, not starting with '.'."
        )


# --------------------------------------------------------------------------- load


def load_model_dir(path: PathLike) -> tuple[dict, dict[str, torch.Tensor]]:
    """Load a model directory written by :func:`save_model_dir`, checking it first.

    Only JSON and safetensors are parsed, so no code from the artifact runs. The weights
    are read once, checked against the recorded SHA-256 and parsed from those same bytes.

    Parameters
    ----------
    path : str or os.PathLike
        The model directory.

    Returns
    -------
    meta : dict
        The contents of ``tabnn.json``.
    tensors : dict of str to torch.Tensor
        The named tensors, on the CPU.

    Raises
    ------
    InputNotFoundError
        If ``path`` does not exist.
    ModelError
        If ``path`` is not a complete tabnn model directory, comes from a newer tabnn,
        or its files were modified or are corrupt.

    Examples
    --------
    >>> import tempfile
    >>> target = save_model_dir(Path(tempfile.mkdtemp()) / "m", {"k": 1}, {"b": torch.ones(2)})
    >>> meta, tensors = load_model_dir(target)
    >>> meta["k"], tensors["b"].tolist()
    (1, [1.0, 1.0])
    """
    meta = _read_checked_meta(path)
    data = _read_checked_weights(path, meta)
    try:
        tensors = safetensors.torch.load(data)
    except (safetensors.SafetensorError, ValueError, TypeError) as error:
        raise ModelError(f"Cannot read the weights in '{path}': {error}.") from error
    return meta, tensors


def read_meta(path: PathLike) -> dict:
    """Read and check ``tabnn.json`` of a model directory, without loading the weights.

    Runs every check of :func:`load_model_dir`, including the weights checksum (cheap),
    so a model that ``tabnn info`` describes is one that loads.

    Parameters
    ----------
    path : str or os.PathLike
        The model directory.

    Returns
    -------
    dict
        The contents of ``tabnn.json``.

    Raises
    ------
    InputNotFoundError
        If ``path`` does not exist.
    ModelError
        As :func:`load_model_dir`.

    Examples
    --------
    >>> import tempfile
    >>> target = save_model_dir(Path(tempfile.mkdtemp()) / "m", {}, {"b": torch.ones(2)})
    >>> read_meta(target)["format_version"]
    1
    """
    meta = _read_checked_meta(path)
    _read_checked_weights(path, meta)
    return meta


def _read_checked_meta(path: PathLike) -> dict:
    """Parse ``tabnn.json`` and check its format version and required keys."""
    directory = _existing_model_dir(path)
    try:
        meta = json.loads(
            (directory / META_FILE).read_bytes().decode("utf-8"), parse_constant=_reject_constant
        )
    except (UnicodeDecodeError, ValueError) as error:
        raise ModelError(f"'{path}' has a {META_FILE} that is not valid JSON: {error}.") from error
    if not isinstance(meta, dict):
        raise ModelError(f"'{path}' has a {META_FILE} that is not a JSON object.")
    _check_format_version(path, meta)
    missing = [key for key in REQUIRED_KEYS if key not in meta]
    if missing:
        raise ModelError(f"'{path}' has a {META_FILE} without required keys: {', '.join(missing)}.")
    return meta


def _existing_model_dir(path: PathLike) -> Path:
    """``path`` as a directory holding both files, or an error saying what is wrong."""
    directory = Path(path)
    if not directory.exists():
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
    absolute = Path(os.path.abspath(directory))
    if not absolute.parent.is_dir():
        return ""
    leftovers = sorted(
        p.name
        for pattern in (f".{absolute.name}.tmp-*", f".{absolute.name}.old-*")
        for p in absolute.parent.glob(pattern)
    )
    if not leftovers:
        return ""
    return (
        f" A save was interrupted (half-written): {', '.join(leftovers)} next to it "
        "may hold the previous or the new model."
    )


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


def _read_checked_weights(path: PathLike, meta: dict) -> bytes:
    """The weights file's bytes, after checking them against the recorded SHA-256."""
    checksums = meta["checksums"]
    expected = checksums.get(WEIGHTS_FILE) if isinstance(checksums, dict) else None
    if not isinstance(expected, str):
        raise ModelError(f"'{path}' has a {META_FILE} without a checksum for {WEIGHTS_FILE}.")
    data = (Path(path) / WEIGHTS_FILE).read_bytes()
    if hashlib.sha256(data).hexdigest() != expected.lower():
        raise ModelError(
            f"'{path}' has a {WEIGHTS_FILE} that does not match the checksum in {META_FILE}: "
            "it was modified after saving or is corrupt. Save or train the model again."
        )
    return data


# --------------------------------------------------------------------------- models


def save(estimator, path: PathLike, *, extra_meta: dict | None = None, extra_files=None) -> Path:
    """Save a fitted ``TabNNClassifier`` as a model directory (safetensors + JSON).

    ``extra_meta`` adds keys to ``tabnn.json``, such as test metrics, baselines and the
    training data's fingerprint.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn.datasets import load_iris
    >>> from tabnn import TabNNClassifier, load, save
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = TabNNClassifier(epochs=5).fit(X, y)
    >>> restored = load(save(clf, Path(tempfile.mkdtemp()) / "iris"))
    >>> bool((restored.predict_proba(X) == clf.predict_proba(X)).all())
    True
    """
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
        "history": {
            "best_epoch": history.best_epoch,
            "best_val_loss": history.best_val_loss,
            "epochs": history.epochs,
        },
        "n_features_in": estimator.n_features_in_,
        "feature_names_in": getattr(estimator, "feature_names_in_", None),
        "threshold": threshold_info(estimator),
        **(extra_meta or {}),
    }
    tensors = dict(estimator.model_.state_dict())
    return save_model_dir(path, to_jsonable(meta, "meta"), tensors, extra_files=extra_files)


def threshold_info(estimator) -> dict:
    """The decision threshold a fitted estimator applies and how it was chosen, as stored
    under ``"threshold"`` in ``tabnn.json``: ``{"value": 0.37, "tuning": None}`` for a
    fixed threshold; ``tuning`` holds ``metric``, ``score``, ``precision``, ``recall``,
    ``rows`` (validation rows), ``members`` and ``members_per_row`` when it was chosen on
    validation rows (see ``TabNNClassifier.threshold_tuning_``)."""
    return {"value": estimator.threshold_, "tuning": estimator.threshold_tuning_}


def _saved_threshold(meta: dict, path: PathLike) -> tuple[float, dict | None]:
    """The threshold in ``tabnn.json`` and how it was tuned; a model saved before
    thresholds could be tuned applies its ``threshold`` parameter."""
    saved = meta.get("threshold") or {"value": meta["params"].get("threshold"), "tuning": None}
    value = saved.get("value")
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
        raise ModelError(f"'{path}' has no usable decision threshold in {META_FILE}: {value!r}.")
    return float(value), saved.get("tuning")


def load(path: PathLike):
    """Load a model directory into a fitted ``TabNNClassifier`` (no code from it runs)."""
    from .engine.config import History, TrainConfig
    from .estimator import TabNNClassifier
    from .model import ModelConfig, TabularMLP
    from .preprocess import Preprocessor
    from .schema import Schema

    meta, tensors = load_model_dir(path)
    try:
        params = dict(meta["params"])
        TabNNClassifier(**params)  # unknown parameters are refused here
        model = TabularMLP(ModelConfig.from_dict(meta["model_config"]))
        model.load_state_dict(tensors, strict=True)
        parts = {
            "schema": Schema.from_dict(meta["schema"]),
            "preprocessor": Preprocessor.from_dict(meta["preprocessor"]),
            "model_config": model.config,
            "train_config": TrainConfig(**meta["train_config"]),
            "model": model,
            "history": History(**meta["history"]),
            "n_features_in": meta["n_features_in"],
            "feature_names_in": meta.get("feature_names_in"),
        }
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ModelError(
            f"'{path}' does not describe a model this tabnn can rebuild: {error}"
        ) from error
    threshold, tuning = _saved_threshold(meta, path)
    estimator = TabNNClassifier.from_fitted(
        params, **parts, threshold=threshold, threshold_tuning=tuning
    )
    estimator.metadata_ = meta
    return estimator
