"""Delimited text files (CSV, TSV, gzip): sniffing the delimiter, the encoding and whether
the first line holds column names, then parsing in one piece or in chunks."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ..errors import DataError, UsageError
from .cells import (
    check_unique,
    clean_text_columns,
    error_reason,
    flat_text,
    raise_no_rows,
    text_and_numbers,
)

SEP_CANDIDATES = (",", ";", "\t", "|")


_SAMPLE_LINES = 50
_HEADER_SAMPLE_ROWS = 100  # data rows the first line is compared with
_MIN_POSITIONS = 3  # numbers in a row of 0, 1, 2, ... that count as column positions
_SAMPLE_BYTES = 1 << 16
_BLOCK_BYTES = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_LISTED = 20
_SEP_NAMES = {"\\t": "\t", "tab": "\t", "TAB": "\t"}


Header = bool | Literal["auto"]


@dataclass(frozen=True)
class TextSource:
    """What the sniffing pass learned about a delimited text file."""

    path: Path
    sep: str
    gzipped: bool
    header: bool  # the first line holds column names (as given, or detected)


def _is_gzip(path: Path) -> bool:
    """True when the file starts with the gzip magic bytes (whatever its suffix)."""
    with open(path, "rb") as handle:
        return handle.read(2) == _GZIP_MAGIC


def _open_binary(path: Path, gzipped: bool):
    """Open the raw bytes, decompressing gzip."""
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def check_utf8(path: Path, gzipped: bool) -> None:
    """Stream the file once so a non-UTF-8 byte is reported with its offset and line."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = lines = 0  # bytes and newlines before the current block
    try:
        with _open_binary(path, gzipped) as handle:
            while block := handle.read(_BLOCK_BYTES):
                # The decoder keeps the start of a character cut by the block boundary;
                # positions in its error count from those pending bytes.
                pending = decoder.getstate()[0]
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as err:
                    _raise_not_utf8(path, pending + block, offset - len(pending), lines, err)
                offset += len(block)
                lines += block.count(b"\n")
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as err:  # a multi-byte character cut off at the very end
        raise DataError(
            f"{path.name} is not UTF-8 text: it ends inside a multi-byte character "
            f"({err.reason}). Re-save the file as UTF-8."
        ) from None
    except (OSError, EOFError) as err:
        raise DataError(f"Could not read {path.name}: {error_reason(err)}.") from None


def _raise_not_utf8(path: Path, data: bytes, offset: int, lines: int, err) -> None:
    """Raise DataError naming the first undecodable byte of ``data`` (at file ``offset``)."""
    line = lines + data.count(b"\n", 0, err.start) + 1
    raise DataError(
        f"{path.name} is not UTF-8 text: byte 0x{data[err.start]:02X} at offset "
        f"{offset + err.start} (line {line}) cannot be decoded. Re-save the file as UTF-8 "
        f"(for example 'CSV UTF-8' in Excel, or `iconv -f latin1 -t utf-8`)."
    ) from None


def _read_sample(path: Path, gzipped: bool) -> list[str]:
    """The first lines of the file (BOM removed), at most ~64 KiB worth."""
    with _open_binary(path, gzipped) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        sample = text.read(_SAMPLE_BYTES)
    lines = sample.splitlines()
    if len(sample) == _SAMPLE_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut in the middle
    return [line for line in lines[:_SAMPLE_LINES] if line.strip()]


# --------------------------------------------------------------------------- delimiters


def _field_counts(lines: list[str], sep: str) -> list[int]:
    """Fields per line for one delimiter, honouring quotes."""
    reader = csv.reader(lines, delimiter=sep, skipinitialspace=True)
    try:
        return [len(row) for row in reader]
    except csv.Error:
        return [0]


def _consistent_seps(lines: list[str]) -> list[tuple[str, int]]:
    """Candidates that split every sample line into the same number (> 1) of fields."""
    found = []
    for sep in SEP_CANDIDATES:
        counts = _field_counts(lines, sep)
        if counts and counts[0] > 1 and len(set(counts)) == 1:
            found.append((sep, counts[0]))
    return found


def _detect_sep(lines: list[str]) -> str:
    """Pick the delimiter: the consistent candidate with most fields, else the best guess."""
    consistent = _consistent_seps(lines)
    if consistent:
        return max(consistent, key=lambda pair: pair[1])[0]

    # A ragged row in the sample: prefer the candidate most lines agree with, so the
    # parser later reports the odd line instead of reading a single column.
    def score(sep: str) -> tuple[float, int]:
        counts = _field_counts(lines, sep)
        if counts[0] < 2:
            return (0.0, 0)
        return (counts.count(counts[0]) / len(counts), counts[0])

    best = max(SEP_CANDIDATES, key=score)
    return best if score(best)[1] > 1 else ","


def _normalise_sep(sep: str) -> str:
    """Accept ``\\t``/``tab`` for a tab; a delimiter is one character."""
    sep = _SEP_NAMES.get(sep, sep)
    if len(sep) != 1:
        raise UsageError(f"A delimiter is a single character, got {sep!r}. Try ',' ';' '\\t'.")
    return sep


def _check_user_sep(path: Path, lines: list[str], sep: str) -> None:
    """Refuse a delimiter that yields one column when another one clearly fits."""
    if _field_counts(lines[:1], sep)[0] > 1:
        return
    better = [(s, n) for s, n in _consistent_seps(lines) if s != sep]
    if better:
        right, fields = max(better, key=lambda pair: pair[1])
        raise DataError(
            f"Reading {path.name} with delimiter {sep!r} gives a single column, while "
            f"{right!r} splits every line into {fields} fields. Use --sep {right!r} "
            f"(or leave --sep out to detect it)."
        )


# --------------------------------------------------------------------------- delimited text


def prepare_text(path: Path, sep: str | None, header: Header) -> TextSource:
    """Validate the encoding, refuse empty files, settle the delimiter and the header."""
    if header not in (True, False, "auto"):
        raise UsageError(f"header must be True, False or 'auto'. Got {header!r} instead.")
    gzipped = _is_gzip(path)
    check_utf8(path, gzipped)
    lines = _read_sample(path, gzipped)
    if not lines:
        raise DataError(f"{path.name} is empty: expected a header line and data rows.")
    if sep is None:
        sep = _detect_sep(lines)
    else:
        sep = _normalise_sep(sep)
        _check_user_sep(path, lines, sep)
    source = TextSource(path=path, sep=sep, gzipped=gzipped, header=header is True)
    if header == "auto":
        first_rows = parse_text(source, chunksize=None, nrows=_HEADER_SAMPLE_ROWS + 1)
        source = replace(source, header=_looks_like_header(first_rows))
    return source


def parse_text(source: TextSource, *, chunksize: int | None, nrows: int | None = None):
    """Run pandas' C parser with every value as text; our own rules come afterwards."""
    # header=None keeps the header as row 0: pandas would otherwise rename duplicates
    # ("a.1") and, given names, silently turn surplus fields into an index.
    try:
        return pd.read_csv(
            source.path,
            sep=source.sep,
            header=None,
            dtype=str,
            na_filter=False,
            skipinitialspace=True,
            index_col=False,
            encoding="utf-8-sig",
            compression="gzip" if source.gzipped else None,
            chunksize=chunksize,
            nrows=nrows,
        )
    except pd.errors.ParserError as err:
        raise _parse_error(source, err) from None


_FIELDS_ERROR = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def _parse_error(source: TextSource, err: Exception) -> DataError:
    """Translate pandas' tokenizer message into ours."""
    match = _FIELDS_ERROR.search(str(err))
    if match:
        expected, line, seen = match.groups()
        return DataError(
            f"{source.path.name}, line {line}: expected {expected} fields (as in the first "
            f"line), saw {seen}. Quote values that contain the delimiter {source.sep!r}, "
            f"or fix the row."
        )
    detail = str(err).replace("Error tokenizing data. C error: ", "").strip()
    return DataError(f"Could not parse {source.path.name} as delimited text: {detail}.")


def iter_text(path: Path, *, sep: str | None, header: Header, chunksize: int):
    """Yield finished chunks of a delimited text file."""
    source = prepare_text(path, sep, header)
    names: list[str] | None = None
    rows = 0
    reader = parse_text(source, chunksize=chunksize)
    with reader:
        while True:
            try:
                raw = next(reader)
            except StopIteration:
                break
            except pd.errors.ParserError as err:
                raise _parse_error(source, err) from None
            chunk = finish_text_chunk(raw, source, names=names, check_rows=False)
            names = list(chunk.columns)
            rows += len(chunk)
            if len(chunk):
                yield chunk
    if rows == 0:
        raise_no_rows(source.path)


def finish_text_chunk(
    raw: pd.DataFrame,
    source: TextSource,
    *,
    names: list[str] | None,
    check_rows: bool = True,
) -> pd.DataFrame:
    """Name the columns (from row 0 of the first chunk) and apply the value rules."""
    if names is None:
        if source.header:
            names = _header_names(raw.iloc[0].tolist(), source.path)
            raw = raw.iloc[1:]
        else:
            names = [str(i) for i in range(raw.shape[1])]
    if check_rows and raw.empty:
        raise_no_rows(source.path)
    raw = raw.reset_index(drop=True)
    raw.columns = names
    return clean_text_columns(raw)


def _header_names(cells: list, path: Path) -> list[str]:
    """Stripped column names; blanks get pandas' 'Unnamed: i'; duplicates are refused."""
    names = []
    for i, cell in enumerate(cells):
        name = "" if pd.isna(cell) else str(cell).strip()
        names.append(name or f"Unnamed: {i}")
    check_unique(names, path)
    return names


def _looks_like_header(raw: pd.DataFrame) -> bool:
    """The rule of :func:`detect_header`, on a file's first lines parsed as text."""
    text, kinds, values = _cell_kinds(raw)
    first, first_kinds = text[0], kinds[0]
    rest_kinds = kinds[1:]
    numeric = (rest_kinds != "text").all(axis=0) & (rest_kinds == "number").any(axis=0)
    if ((first_kinds == "text") & numeric).any():
        return True
    numbers = values[0][first_kinds == "number"].tolist()
    if _are_positions(numbers):
        return True
    names = pd.Series(first[first_kinds != "missing"])
    if names.duplicated().any() or numbers:
        return False
    rest = [text[1:, j][rest_kinds[:, j] != "missing"].tolist() for j in range(raw.shape[1])]
    return _text_votes_for_header(first, first_kinds, rest)


def _cell_kinds(raw: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stripped text of every cell, its kind ('missing', 'number' or 'text', by the value
    rules of ``clean_text``) and its value as a number (NaN when none): three (rows,
    columns) arrays, computed for all cells at once."""
    rows, width = raw.shape
    stripped, numbers = text_and_numbers(raw)
    missing = stripped.isna().to_numpy() | raw.isna().to_numpy().ravel(order="F")
    number = numbers.notna().to_numpy()
    kinds = np.where(missing, "missing", np.where(number, "number", "text"))
    # the text keeps the stripped markers ("?", "NA"): only the kinds call them missing
    text = flat_text(raw)
    values = numbers.to_numpy(dtype="float64", na_value=np.nan)
    return tuple(a.reshape(width, rows).T for a in (text, kinds, values))


def _are_positions(numbers: list[float]) -> bool:
    """Whether numbers count 0, 1, 2, ... or 1, 2, 3, ...: column names by position."""
    if len(numbers) < _MIN_POSITIONS:
        return False
    return any(numbers == list(range(start, start + len(numbers))) for start in (0, 1))


def _text_votes_for_header(first: pd.Series, kinds: pd.Series, rest: list[list[str]]) -> bool:
    """Rule 5: few-valued text columns vote; names win when they outvote values, or when
    no column can tell (a column of free text, such as names, has no say)."""
    names = values = 0
    for cell, kind, column in zip(first, kinds, rest):
        if kind != "text" or not column or len(set(column)) > len(column) // 2:
            continue
        if cell in column:
            values += 1
        else:
            names += 1
    return names > values or names == values == 0


# --------------------------------------------------------------------------- parquet / ARFF
