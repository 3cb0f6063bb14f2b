"""Writing files so that a crash never leaves a half-written one, and values as strict JSON.

Every file tabnn writes goes through here: a model directory (a staging directory renamed
into place), a report or predictions file (a temporary sibling renamed into place). The
temporary names are fresh rather than ``mkstemp``'s, whose 0600 mode would make the result
private to its writer: the umask decides, as for any file. A directory write killed between
its renames leaves hidden siblings; :func:`leftovers` finds them and the next successful
write of that directory removes them.
"""

from __future__ import annotations

import glob
import hashlib
import json
import math
import os
import re
import secrets
import shutil
from collections.abc import Callable, Collection, Iterator, Mapping
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


def load_json(data: bytes) -> Any:
    """Parse strict JSON from UTF-8 bytes: ``NaN`` and ``Infinity``, which tabnn never
    writes, are refused (ValueError, as for bad JSON, bad UTF-8 or absurd nesting)."""
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except RecursionError as error:
        raise ValueError("JSON nested too deeply") from error


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid in strict JSON")


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


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks (memory stays small for any size)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def plain_name(name: Any) -> bool:
    """Whether ``name`` names a file inside a directory: no path, not hidden, not empty."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and not (name.startswith(".") or "/" in name or "\\" in name)
    )


def checksum_mismatch(
    directory: Path, checksums: Mapping[str, Any], known: Mapping[str, bytes]
) -> tuple[str, str] | None:
    """The first entry of ``checksums`` (file name -> SHA-256 hex) that ``directory`` does
    not match, as ``(name, why)``: why is "invalid" (not a plain name and a string),
    "missing" or "modified"; None when all match. A file in ``known`` is hashed from
    those bytes, any other read in blocks."""
    for name, expected in checksums.items():
        if not plain_name(name) or not isinstance(expected, str):
            return name, "invalid"
        path = Path(directory) / name
        if not path.is_file():
            return name, "missing"
        data = known.get(name)
        actual = hashlib.sha256(data).hexdigest() if data is not None else file_sha256(path)
        if actual != expected.lower():
            return name, "modified"
    return None


def temporary_sibling(path: Path) -> Path:
    """A fresh hidden name next to ``path`` for a file that is renamed onto it later."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def remove_orphans(path: Path) -> list[Path]:
    """Delete the temporary siblings of ``path`` whose writer is gone (a ``kill -9`` gives
    it no chance to clean up); a live process's are left alone. -> what was removed."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.[0-9a-f]{{8}}\.tmp")
    removed = []
    for sibling in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        match = pattern.fullmatch(sibling.name)
        if match and not _alive(int(match.group(1))) and sibling.is_file():
            sibling.unlink(missing_ok=True)
            removed.append(sibling)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


@contextmanager
def reported_as(path: Path) -> Iterator[None]:
    """Name ``path`` in an OSError of the block that names one of its hidden siblings
    (``temporary_sibling``'s, ``atomic_dir``'s, or a file inside one): "Permission denied"
    must name the file or folder the user asked for, not a name they never gave."""
    hidden = str(path.with_name(f".{path.name}."))
    try:
        yield
    except OSError as error:
        if error.filename is None or not str(error.filename).startswith(hidden):
            raise
        raise OSError(error.errno, f"{error.strerror}; cannot write", str(path)) from error


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` to write to; on success it is renamed onto
    ``path``, on any error it is removed and ``path`` is left as it was. An error about the
    temporary file names ``path`` (``reported_as``)."""
    path = Path(path)
    remove_orphans(path)
    temp = temporary_sibling(path)
    try:
        with reported_as(path):
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
    first and deleted only once the new one is in place; any failure restores it. Once it
    is in place, the :func:`leftovers` of earlier interrupted writes are removed."""
    with atomic_dir(target, replace=replace) as staging:
        for name, data in files.items():
            write_synced(staging / name, data)


@contextmanager
def atomic_dir(target: Path, *, replace: bool) -> Iterator[Path]:
    """Yield a fresh hidden sibling of ``target`` (``.NAME.tmp-XXXXXXXX``) to fill; when
    the block ends it is flushed and renamed onto ``target`` as :func:`write_dir_atomic`
    does, and on any error (Ctrl-C included) it is deleted, ``target`` left as it was. An
    error about the hidden sibling names ``target`` (``reported_as``)."""
    with reported_as(Path(target)):
        staging = _fresh_sibling(target, "tmp")
        try:
            yield staging
            fsync_dir(staging)
            _move_into_place(staging, target, replace)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    remove_leftovers(target)


def leftovers(target: str | os.PathLike) -> list[Path]:
    """The hidden siblings interrupted writes of directory ``target`` left behind: staged
    copies (``.NAME.tmp-XXXXXXXX``, each complete only if its write finished), newest
    first, then moved-aside old ones (``.NAME.old-XXXXXXXX``), newest first. Only real
    directories with exactly these names count: never a link, a file or a user's name."""
    target = Path(os.path.abspath(target))
    if not target.parent.is_dir():
        return []
    found: dict[str, list[Path]] = {"tmp": [], "old": []}
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(tmp|old)-[0-9a-f]{{8}}")
    for entry in target.parent.iterdir():
        match = pattern.fullmatch(entry.name)
        if match and entry.is_dir() and not entry.is_symlink():
            found[match.group(1)].append(entry)
    newest_first = {kind: sorted(paths, key=_mtime, reverse=True) for kind, paths in found.items()}
    return newest_first["tmp"] + newest_first["old"]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def remove_leftovers(target: str | os.PathLike) -> None:
    """Delete every leftover of :func:`leftovers` (a link inside one is removed, never
    followed)."""
    for path in leftovers(target):
        shutil.rmtree(path, ignore_errors=True)


def restore_leftover(target: str | os.PathLike, usable: Callable[[Path], bool]) -> bool:
    """Rename onto a missing ``target`` the first of its :func:`leftovers` that ``usable``
    accepts (so a complete staged copy wins over a moved-aside one); whether one was."""
    for candidate in leftovers(target):
        if not usable(candidate):
            continue
        try:
            os.rename(candidate, target)
        except OSError:
            continue
        fsync_dir(Path(os.path.abspath(target)).parent)
        return True
    return False


# temporary_sibling's names: what a killed atomic write of a file leaves
_TEMPORARY = re.compile(r"\.(.+)\.\d+\.[0-9a-f]{8}\.tmp")


def unknown_entries(
    directory: Path, files: Collection[str], folders: Mapping[str, Collection[str]]
) -> list[str]:
    """What ``directory`` holds besides the plain ``files`` and the ``folders`` (name ->
    the files each of its sub-folders may hold), counting the temporary files of atomic
    writes of these files as known and links as unknown: sorted relative names, a
    directory's with a trailing ``/``.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name in ("a.json", "notes.txt", "runs/x/a.json", "runs/x/b.csv"):
    ...     (folder / name).parent.mkdir(parents=True, exist_ok=True)
    ...     _ = (folder / name).write_text("")
    >>> unknown_entries(folder, {"a.json"}, {"runs": {"a.json"}})
    ['notes.txt', 'runs/x/b.csv']
    """
    unknown = []
    for entry in sorted(Path(directory).iterdir()):
        if entry.name not in folders or not _real_dir(entry):
            if not _known_file(entry, files):
                unknown.append(_shown(entry))
            continue
        for sub in sorted(entry.iterdir()):
            prefix = f"{entry.name}/{sub.name}"
            if not _real_dir(sub):
                unknown.append(prefix)
                continue
            known = folders[entry.name]
            unknown += [
                f"{prefix}/{_shown(p)}" for p in sorted(sub.iterdir()) if not _known_file(p, known)
            ]
    return unknown


def _real_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _shown(path: Path) -> str:
    return path.name + ("/" if _real_dir(path) else "")


def _known_file(entry: Path, names: Collection[str]) -> bool:
    if not entry.is_file() or entry.is_symlink():
        return False
    temporary = _TEMPORARY.fullmatch(entry.name)
    return (temporary.group(1) if temporary else entry.name) in names


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
