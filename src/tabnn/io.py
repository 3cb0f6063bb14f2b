"""Writing files so that a crash never leaves a half-written one, and values as strict JSON.

Every file tabnn writes goes through here: a model directory (a staging directory renamed
into place), a report or predictions file (a temporary sibling renamed into place). The
temporary names are fresh rather than ``mkstemp``'s, whose 0600 mode would make the result
private to its writer: the umask decides, as for any file.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePath
from typing import Any

# --------------------------------------------------------------------------- JSON


def to_jsonable(obj: Any, where: str = "value", *, any_key: bool = False) -> Any:
    """Turn ``obj`` into plain Python that ``json.dumps(allow_nan=False)`` accepts.

    NumPy scalars and arrays and torch tensors become Python numbers and lists, tuples
    become lists, paths become strings, and NaN, infinities and pandas' missing values
    become ``None`` (JSON ``null``), because strict JSON has no NaN.

    Parameters
    ----------
    obj : Any
        A dict, list, tuple, str, number, bool, None, NumPy value, tensor or path,
        nested in any way. Dict keys must be strings or integers.
    where : str, default "value"
        How to name ``obj`` in the error message when something cannot be converted.
    any_key : bool, default False
        Store any dict key as its ``str`` (a report's per-class tables are keyed by class
        labels of any type); by default only strings and integers are keys.

    Returns
    -------
    Any
        The same structure made of dict, list, str, int, float, bool and None.

    Raises
    ------
    TypeError
        If a value (or dict key) has a type that has no JSON form.

    Examples
    --------
    >>> import numpy as np
    >>> to_jsonable({"auc": np.float32(0.5), "loss": float("nan"), "shape": (2, 3)})
    {'auc': 0.5, 'loss': None, 'shape': [2, 3]}
    """
    if isinstance(obj, Mapping):
        return {
            str(k) if any_key else _json_key(k, where): to_jsonable(
                v, f"{where}[{k!r}]", any_key=any_key
            )
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return [to_jsonable(v, f"{where}[{i}]", any_key=any_key) for i, v in enumerate(obj)]
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):
        # NumPy arrays and scalars (np.float64 is also a float: unwrapped first, so that only
        # plain Python comes out) and tensors, by duck type: this module imports neither
        return to_jsonable(obj.tolist(), where, any_key=any_key)
    if obj is None or isinstance(obj, str | bool | int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, PurePath):
        return str(obj)
    if _is_missing(obj):
        return None
    raise TypeError(f"Cannot store {where} of type {type(obj).__name__} as JSON.")


def _is_missing(obj: Any) -> bool:
    """pandas' NA and NaT, recognised without importing pandas unless it is loaded."""
    import sys

    pandas = sys.modules.get("pandas")
    return pandas is not None and (obj is pandas.NA or obj is pandas.NaT)


def _json_key(key: Any, where: str) -> str:
    """A dict key as a JSON object key: strings as they are, integers as decimal strings."""
    if isinstance(key, str):
        return key
    if isinstance(key, int) and not isinstance(key, bool):
        return str(key)
    if type(key).__name__.startswith(("int", "uint")) and hasattr(key, "item"):  # np.int64
        return str(int(key))
    raise TypeError(f"Cannot store key {key!r} of {where} as JSON: keys must be strings.")


def dump_json(obj: Any, *, indent: int = 2, sort_keys: bool = True) -> bytes:
    """Strict JSON (no NaN), indented so people can read and diff it, as UTF-8 bytes."""
    text = json.dumps(to_jsonable(obj, "meta"), allow_nan=False, sort_keys=sort_keys, indent=indent)
    return (text + "\n").encode("utf-8")


# --------------------------------------------------------------------------- files


def write_synced(path: Path, data: bytes) -> None:
    """Write and fsync one file, so a rename never publishes data still in a cache."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (a rename is durable only then); not possible on Windows."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_sibling(path: Path) -> Path:
    """A fresh hidden name next to ``path`` for a file that is renamed onto it later."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` to write to; on success it is renamed onto
    ``path``, on any error it is removed and ``path`` is left as it was."""
    path = Path(path)
    temp = temporary_sibling(path)
    try:
        yield temp
        os.replace(temp, path)
    finally:
        if temp.exists():
            temp.unlink()


def write_file_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary sibling renamed into place, making
    missing parent directories."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as temp:
        temp.write_bytes(data)


def write_dir_atomic(target: Path, files: Mapping[str, bytes], *, replace: bool) -> None:
    """Write a directory of files atomically: into a fresh hidden sibling, flushed to disk,
    then renamed onto ``target``. With ``replace`` an existing ``target`` is moved aside
    first and deleted only once the new one is in place; any failure restores it."""
    staging = _write_staging_dir(target, files)
    try:
        _move_into_place(staging, target, replace)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _write_staging_dir(target: Path, files: Mapping[str, bytes]) -> Path:
    """A fresh hidden sibling of ``target`` holding every file, flushed to disk."""
    staging = _fresh_sibling(target, "tmp")
    try:
        for name, data in files.items():
            write_synced(staging / name, data)
        fsync_dir(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def _fresh_sibling(target: Path, kind: str) -> Path:
    """Create ``.{name}.{kind}-XXXXXXXX`` next to ``target`` (mkdir honours the umask)."""
    for _ in range(100):
        candidate = target.with_name(f".{target.name}.{kind}-{secrets.token_hex(4)}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"Could not create a temporary directory next to '{target}'.")


def _move_into_place(staging: Path, target: Path, replace: bool) -> None:
    """Rename ``staging`` to ``target``; an old ``target`` is moved aside, then deleted."""
    if not replace:
        os.rename(staging, target)
        fsync_dir(target.parent)
        return
    # Reserve a unique name, then rename the old model onto it (an empty directory).
    aside = _fresh_sibling(target, "old")
    os.rmdir(aside)
    os.rename(target, aside)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(aside, target)
        raise
    fsync_dir(target.parent)
    shutil.rmtree(aside, ignore_errors=True)
