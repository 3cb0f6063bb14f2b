"""A directory of prediction parts: ``part-00000.parquet``, ``part-00001.parquet``, ...,
written as the rows come and put in place whole.

The parts go into a hidden sibling of the output (``.OUT.tmp-XXXXXXXX``), which is renamed
onto the output only once every row is written, so a reader never sees half of it, and
an error, Ctrl-C or SIGTERM deletes it (what a ``kill -9`` leaves, the next write of the
same output removes). Each part holds up to ``PART_ROWS`` rows in row groups of one input
chunk each. ``_tabnn_predictions.json`` is written last: it says which parts there are and
how many rows each holds, and marks the directory as tabnn's, so a later prediction may
replace it and nothing else. Its leading ``_`` makes Spark, pyarrow datasets, pandas and
DuckDB skip it when they read the directory.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from .. import __version__
from ..errors import UsageError
from ..io import atomic_dir, dump_json, load_json, unknown_entries

MANIFEST = "_tabnn_predictions.json"
FORMAT = "tabnn-predictions"
PART_ROWS = 1_000_000  # a part is closed once it holds at least this many rows


def is_parts_output(out: Path) -> bool:
    """Whether ``-o OUT`` asks for a directory of parts: an existing directory, or a
    name without a suffix (``preds``, not ``preds.csv``)."""
    return out.is_dir() or not out.suffix


def check_parts_out(out: Path) -> bool:
    """Refuse (UsageError, exit 2) an output in the way: a link, or a directory holding
    anything but an earlier prediction of tabnn's. -> whether ``out`` exists (so the new
    parts replace it)."""
    if out.is_symlink():
        raise UsageError(f"--out '{out}' is a link; give a new directory name.")
    if not out.exists():
        return False
    if not out.is_dir():
        raise UsageError(f"--out '{out}' is a file; give a directory name for the parts.")
    entries = list(out.iterdir())
    if not entries:
        return True
    manifest = _manifest(out)
    parts = [part["name"] for part in manifest.get("parts", [])] if manifest else []
    in_way = (
        unknown_entries(out, {MANIFEST, *parts}, {})
        if manifest
        else sorted(entry.name + ("/" if entry.is_dir() else "") for entry in entries)
    )
    if in_way:
        shown = ", ".join(in_way[:5]) + (f" and {len(in_way) - 5} more" if len(in_way) > 5 else "")
        raise UsageError(
            f"--out '{out}' exists and is not an earlier output of tabnn predict (expected "
            f"an empty directory, or one holding {MANIFEST} and the parts it lists); "
            f"found {shown}. Give a new directory name, or move these away."
        )
    return True


def _manifest(directory: Path) -> dict | None:
    """The manifest of a tabnn prediction directory, or None when there is none (or it
    is not one)."""
    path = directory / MANIFEST
    if not path.is_file() or path.is_symlink():
        return None
    try:
        data = load_json(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    if not isinstance(data.get("parts"), list):
        return None
    if not all(isinstance(p, dict) and isinstance(p.get("name"), str) for p in data["parts"]):
        return None
    return data


class PartsWriter:
    """Append prediction tables; on a clean exit they are in ``out``, else nowhere.

    >>> with PartsWriter(Path("preds"), replace=False, about={}) as parts:  # doctest: +SKIP
    ...     parts.write(table)
    """

    def __init__(self, out: Path, *, replace: bool, about: dict) -> None:
        self.out, self.replace, self.about = out, replace, about
        self.parts: list[dict] = []
        self.rows = 0
        self._writer = None
        self._staging = None
        self._context = None

    def __enter__(self) -> PartsWriter:
        self._context = atomic_dir(self.out, replace=self.replace)
        self._staging = self._context.__enter__()
        return self

    def write(self, table) -> None:
        """Append one ``pyarrow.Table`` of predictions (one row group), starting a new
        part when the current one holds PART_ROWS rows."""
        import pyarrow.parquet as pq

        if self._writer is not None and self.parts[-1]["rows"] >= PART_ROWS:
            self._close_part()
        if self._writer is None:
            name = f"part-{len(self.parts):05d}.parquet"
            self._writer = pq.ParquetWriter(self._staging / name, table.schema)
            self.parts.append({"name": name, "rows": 0})
        self._writer.write_table(table.cast(self._writer.schema))
        self.parts[-1]["rows"] += table.num_rows
        self.rows += table.num_rows

    def _close_part(self) -> None:
        self._writer.close()
        self._writer = None

    def __exit__(self, kind, error, traceback) -> bool:
        try:
            if self._writer is not None:
                self._close_part()
            if kind is None:
                manifest = {
                    "format": FORMAT,
                    "format_version": 1,
                    "tabnn_version": __version__,
                    "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    **self.about,
                    "rows": self.rows,
                    "parts": self.parts,
                }
                (self._staging / MANIFEST).write_bytes(dump_json(manifest))
        except BaseException as failure:
            self._context.__exit__(type(failure), failure, failure.__traceback__)
            raise
        return bool(self._context.__exit__(kind, error, traceback))
