"""Reading tables (CSV/TSV, gzip, Parquet, ARFF) and choosing the target column(s).

Every reader returns a frame whose column names are stripped ``str``, whose text values are
stripped of padding whitespace, with ``?``, empty and ``NA`` as missing, and whose all-number
columns are numeric. Problems a user can fix raise :mod:`tabnn.errors` with a message that says
what was expected, what arrived and how to fix it.

Whether the first line of a text file holds column names is detected unless the caller says
(``header="auto"``, the default); :func:`detect_header` documents the rule.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import gzip
import io
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from tabnn.errors import DataError, InputNotFoundError, UsageError

MISSING_VALUES = ("?", "", "NA")
SEP_CANDIDATES = (",", ";", "\t", "|")
PARQUET_SUFFIXES = (".parquet", ".pq")
_SAMPLE_LINES = 50
_HEADER_SAMPLE_ROWS = 100  # data rows the first line is compared with
_MIN_POSITIONS = 3  # numbers in a row of 0, 1, 2, ... that count as column positions
_SAMPLE_BYTES = 1 << 16
_BLOCK_BYTES = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_LISTED = 20
_SEP_NAMES = {"\\t": "\t", "tab": "\t", "TAB": "\t"}
_SLICE = re.compile(r"^(-?\d*):(-?\d*)(?::(-?\d+))?$")
_INT = re.compile(r"^[+-]?\d+$")


Header = bool | Literal["auto"]


@dataclass(frozen=True)
class _TextSource:
    """What the sniffing pass learned about a delimited text file."""

    path: Path
    sep: str
    gzipped: bool
    header: bool  # the first line holds column names (as given, or detected)


# --------------------------------------------------------------------------- public API


def read_table(
    path: str | os.PathLike, *, sep: str | None = None, header: Header = "auto"
) -> pd.DataFrame:
    """Read a whole table from CSV/TSV (optionally gzip), Parquet or ARFF.

    Parameters
    ----------
    path : str or path-like
        The file. ``.parquet``/``.pq`` is read with pyarrow, ``.arff`` as ARFF, anything else
        as delimited text (gzip is detected from the content).
    sep : str, optional
        Delimiter of a text file; detected among ``,`` ``;`` tab and ``|`` when omitted.
    header : bool or "auto", default "auto"
        Whether the first line of a text file holds the column names; ``"auto"`` guesses it
        from the data (see :func:`detect_header`). Without one the columns are named
        ``"0"`` .. ``"n-1"``. Parquet and ARFF carry their names and ignore it.

    Returns
    -------
    pandas.DataFrame
        Stripped ``str`` column names; text stripped, ``?``/empty/``NA`` missing; all-number
        columns as int64 (integral, nothing missing) or float64.

    Raises
    ------
    InputNotFoundError
        The path does not exist or is a directory.
    UsageError
        ``header`` is not True, False or "auto".
    DataError
        The file is empty, has no data rows, is not UTF-8, has a ragged row, seems to use
        another delimiter, repeats a column name or cannot be parsed.

    Examples
    --------
    >>> frame = read_table("titanic/train.csv")  # doctest: +SKIP
    >>> frame["Age"].dtype  # doctest: +SKIP
    dtype('float64')
    >>> read_table("sonar/sonar.csv").columns[-1]  # header-less, detected  # doctest: +SKIP
    '60'
    """
    path = _existing_file(path)
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return _read_parquet(path)
    if suffix == ".arff":
        return _read_arff(path)
    source = _prepare_text(path, sep, header)
    frame = _parse_text(source, chunksize=None)
    return _finish_text_chunk(frame, source, names=None)


def iter_table_chunks(
    path: str | os.PathLike,
    *,
    sep: str | None = None,
    header: Header = "auto",
    chunksize: int = 50_000,
) -> Iterator[pd.DataFrame]:
    """Yield a table in frames of about ``chunksize`` rows, with bounded memory.

    The parsing rules are those of :func:`read_table`; dtypes may differ from chunk to chunk
    (a chunk without missing values keeps int64), which :meth:`Schema.check` evens out.
    ``header="auto"`` decides on the same first lines as :func:`read_table`, whatever the
    ``chunksize``, so both read a file the same way.

    Parameters
    ----------
    path : str or path-like
        CSV/TSV (optionally gzip), Parquet or ARFF file. ARFF comes as a single chunk.
    sep : str, optional
        Delimiter of a text file; detected when omitted.
    header : bool or "auto", default "auto"
        Whether the first line of a text file holds the column names (see
        :func:`detect_header` for "auto").
    chunksize : int, default 50_000
        Rows per chunk (with a header, the first text chunk is one row shorter).

    Yields
    ------
    pandas.DataFrame
        One chunk of rows, with the same column names in every chunk.

    Examples
    --------
    >>> n = sum(len(c) for c in iter_table_chunks("adult.data", header=False))  # doctest: +SKIP
    """
    if chunksize < 1:
        raise UsageError(f"chunksize must be a positive integer. Got {chunksize} instead.")
    path = _existing_file(path)
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        yield from _iter_parquet(path, chunksize)
    elif suffix == ".arff":
        yield _read_arff(path)
    else:
        yield from _iter_text(path, sep=sep, header=header, chunksize=chunksize)


def detect_header(path: str | os.PathLike, *, sep: str | None = None) -> bool:
    """Guess whether the first line of a text file holds column names.

    The first line is compared with up to 100 data lines below it, cell by cell, after the
    same parsing as :func:`read_table` (stripped, ``?``/empty/``NA`` missing). The first
    rule that applies decides:

    1. **Header** when a column whose other values are all numbers has a first-line cell
       that is text (neither a number nor missing): ``PassengerId`` above ``1, 2, 3``.
       A data row has a number there; this is the strongest sign.
    2. **Header** when the first line's numbers are column positions, ``0, 1, 2, ...`` or
       ``1, 2, 3, ...`` (at least 3 of them), as pandas writes an unnamed array.
    3. **No header** when a first-line cell repeats another one: names are unique.
    4. **No header** when any first-line cell is a number: names are rarely numbers, so a
       header whose numeric columns are all named by numbers (years such as ``2019,2020``)
       is read as data. Pass ``header=True`` (``--header``) for such a file.
    5. Otherwise (no number on the first line, e.g. an all-text table): each text column
       with few distinct values (at most half of its values distinct) votes: the first-line
       cell is one of its values (data) or not (a name). **Header** when the names
       outvote the values, or when no column votes.

    Parquet and ARFF files carry their column names: True.

    Parameters
    ----------
    path : str or path-like
        The file.
    sep : str, optional
        Delimiter of a text file; detected when omitted.

    Returns
    -------
    bool
        True when the first line is taken as column names.

    Raises
    ------
    InputNotFoundError, DataError
        As :func:`read_table`.

    Examples
    --------
    >>> detect_header("sonar/sonar.csv"), detect_header("titanic/train.csv")  # doctest: +SKIP
    (False, True)
    """
    path = _existing_file(path)
    if path.suffix.lower() in (*PARQUET_SUFFIXES, ".arff"):
        return True
    return _prepare_text(path, sep, "auto").header


def resolve_columns(frame: pd.DataFrame, spec: str) -> list[str]:
    """Turn a user's column spec into column names of ``frame``.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table whose columns are meant.
    spec : str
        Comma-separated items. Each is an exact column name, else a stripped case-insensitive
        name, else an integer index (``-1`` is the last column), else a slice of indices such
        as ``-6:`` or ``2:5``. An exact name wins over an index, so header-less tables
        (columns ``"0"`` .. ``"n-1"``) agree either way.

    Returns
    -------
    list of str
        The column names, in the order given, without repeats.

    Raises
    ------
    UsageError
        An item matches no column (with close matches), an index is out of range or a slice
        selects nothing.

    Examples
    --------
    >>> frame = pd.DataFrame(columns=["PassengerId", "Survived", "Age"])
    >>> resolve_columns(frame, "survived")
    ['Survived']
    >>> resolve_columns(frame, "-2:")
    ['Survived', 'Age']
    """
    columns = [str(c) for c in frame.columns]
    if spec in columns:  # a name that itself contains a comma
        return [spec]
    items = [item for item in str(spec).split(",") if item.strip()]
    if not items:
        raise UsageError(f"Expected a column name or index, got {spec!r}.")
    resolved: list[str] = []
    for item in items:
        for name in _resolve_item(columns, item):
            if name not in resolved:
                resolved.append(name)
    return resolved


def split_target(
    frame: pd.DataFrame, target: str, *, label_sep: str | None = None
) -> tuple[pd.DataFrame, pd.Series | pd.DataFrame]:
    """Split a table into features ``X`` and target ``y``.

    Parameters
    ----------
    frame : pandas.DataFrame
        The whole table.
    target : str
        Column spec as for :func:`resolve_columns`.
    label_sep : str, optional
        The single target column holds delimited label sets (``"jazz|calm"``); it becomes a
        0/1 frame with one column per label (sorted). An empty or missing cell means no labels
        (a CSV cannot tell the two apart).

    Returns
    -------
    X : pandas.DataFrame
        Every other column.
    y : pandas.Series or pandas.DataFrame
        A Series for one target column, a DataFrame for several (multi-label).

    Raises
    ------
    UsageError
        Unknown columns, or ``label_sep`` with several target columns.

    Examples
    --------
    >>> frame = pd.DataFrame({"x": [1, 2], "tags": ["jazz|calm", ""]})
    >>> X, y = split_target(frame, "tags", label_sep="|")
    >>> y.to_dict("list")
    {'calm': [1, 0], 'jazz': [1, 0]}
    """
    names = resolve_columns(frame, target)
    X = frame.drop(columns=names)
    if label_sep is not None:
        if len(names) > 1:
            raise UsageError(
                f"A label separator needs one target column holding label sets, "
                f"got {len(names)}: {', '.join(names)}. Drop --label-sep for 0/1 label columns."
            )
        return X, _explode_labels(frame[names[0]], label_sep)
    if len(names) == 1:
        return X, frame[names[0]]
    return X, frame[names]


# --------------------------------------------------------------------------- files


def _existing_file(path: str | os.PathLike) -> Path:
    """The path as a Path, or InputNotFoundError when it is missing or a directory."""
    path = Path(path)
    if path.is_dir():
        raise InputNotFoundError(f"Expected a data file, but {str(path)!r} is a directory.")
    if not path.exists():
        raise InputNotFoundError(f"Data file {str(path)!r} not found. Check the path.")
    return path


def _is_gzip(path: Path) -> bool:
    """True when the file starts with the gzip magic bytes (whatever its suffix)."""
    with open(path, "rb") as handle:
        return handle.read(2) == _GZIP_MAGIC


def _open_binary(path: Path, gzipped: bool):
    """Open the raw bytes, decompressing gzip."""
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def _check_utf8(path: Path, gzipped: bool) -> None:
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
        raise DataError(f"Could not read {path.name}: {_reason(err)}.") from None


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


def _prepare_text(path: Path, sep: str | None, header: Header) -> _TextSource:
    """Validate the encoding, refuse empty files, settle the delimiter and the header."""
    if header not in (True, False, "auto"):
        raise UsageError(f"header must be True, False or 'auto'. Got {header!r} instead.")
    gzipped = _is_gzip(path)
    _check_utf8(path, gzipped)
    lines = _read_sample(path, gzipped)
    if not lines:
        raise DataError(f"{path.name} is empty: expected a header line and data rows.")
    if sep is None:
        sep = _detect_sep(lines)
    else:
        sep = _normalise_sep(sep)
        _check_user_sep(path, lines, sep)
    source = _TextSource(path=path, sep=sep, gzipped=gzipped, header=header is True)
    if header == "auto":
        first_rows = _parse_text(source, chunksize=None, nrows=_HEADER_SAMPLE_ROWS + 1)
        source = replace(source, header=_looks_like_header(first_rows))
    return source


def _parse_text(source: _TextSource, *, chunksize: int | None, nrows: int | None = None):
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


def _parse_error(source: _TextSource, err: Exception) -> DataError:
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


def _iter_text(path: Path, *, sep: str | None, header: Header, chunksize: int):
    """Yield finished chunks of a delimited text file."""
    source = _prepare_text(path, sep, header)
    names: list[str] | None = None
    rows = 0
    reader = _parse_text(source, chunksize=chunksize)
    with reader:
        while True:
            try:
                raw = next(reader)
            except StopIteration:
                break
            except pd.errors.ParserError as err:
                raise _parse_error(source, err) from None
            chunk = _finish_text_chunk(raw, source, names=names, check_rows=False)
            names = list(chunk.columns)
            rows += len(chunk)
            if len(chunk):
                yield chunk
    if rows == 0:
        _raise_no_rows(source.path)


def _finish_text_chunk(
    raw: pd.DataFrame,
    source: _TextSource,
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
        _raise_no_rows(source.path)
    raw = raw.reset_index(drop=True)
    raw.columns = names
    return _clean_text_columns(raw)


def _raise_no_rows(path: Path) -> None:
    """Raise the 'header only' error."""
    raise DataError(f"{path.name} has a header but no data rows. Expected at least one row.")


def _header_names(cells: list, path: Path) -> list[str]:
    """Stripped column names; blanks get pandas' 'Unnamed: i'; duplicates are refused."""
    names = []
    for i, cell in enumerate(cells):
        name = "" if pd.isna(cell) else str(cell).strip()
        names.append(name or f"Unnamed: {i}")
    _check_unique(names, path)
    return names


def _check_unique(names: list[str], path: Path) -> None:
    """Refuse repeated column names: a column must be addressable by its name."""
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        listed = ", ".join(repeated)
        raise DataError(
            f"{path.name} has duplicate column names: {listed}. Each column needs a unique "
            f"name; rename the repeats."
        )


def _clean_text_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Strip text, mark ``?``/empty/``NA`` missing and make all-number columns numeric."""
    return pd.DataFrame({name: _clean_text(frame[name]) for name in frame.columns})


def _clean_text(column: pd.Series) -> pd.Series:
    """One column of text values -> stripped text or int64/float64 numbers."""
    text = column.astype("str").str.strip()
    text = text.where(~text.isin(MISSING_VALUES))
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().sum() != text.notna().sum():
        return text
    return _tight_numeric(numbers.astype("float64"))


def _tight_numeric(numbers: pd.Series) -> pd.Series:
    """int64 when every value is an integer that fits and none is missing; else float64."""
    values = numbers.to_numpy()
    complete = len(values) > 0 and np.isfinite(values).all()
    if complete and (values % 1 == 0).all() and (np.abs(values) < 2**63).all():
        return numbers.astype("int64")
    return numbers


# --------------------------------------------------------------------------- header detection


def _looks_like_header(raw: pd.DataFrame) -> bool:
    """The rule of :func:`detect_header`, on a file's first lines parsed as text."""
    text, kinds = _cell_kinds(raw)
    first, first_kinds = text.iloc[0], kinds.iloc[0]
    rest = [text.iloc[1:, j][kinds.iloc[1:, j] != "missing"].tolist() for j in range(raw.shape[1])]
    numeric = (kinds.iloc[1:] != "text").all() & (kinds.iloc[1:] == "number").any()
    if ((first_kinds == "text") & numeric).any():
        return True
    numbers = first[first_kinds == "number"].astype(float).tolist()
    if _are_positions(numbers):
        return True
    names = first[first_kinds != "missing"]
    if names.duplicated().any() or numbers:
        return False
    return _text_votes_for_header(first, first_kinds, rest)


def _cell_kinds(raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stripped text of every cell and its kind, 'missing', 'number' or 'text', by the
    value rules of ``_clean_text``."""
    text = raw.apply(lambda column: column.astype("str").str.strip())
    missing = raw.isna() | text.isin(MISSING_VALUES)
    number = text.apply(lambda column: pd.to_numeric(column, errors="coerce")).notna()
    kinds = np.where(missing, "missing", np.where(number, "number", "text"))
    return text, pd.DataFrame(kinds, columns=raw.columns)


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


def _read_parquet(path: Path) -> pd.DataFrame:
    """Read a Parquet file with pyarrow; names become stripped str."""
    import pyarrow.parquet as pq

    try:
        # ParquetFile rather than read_table: the dataset API rejects duplicate names
        # with an obscure message before our own check could name them.
        table = pq.ParquetFile(path).read()
    except Exception as err:  # pyarrow raises several unrelated types for a bad file
        raise _bad_parquet(path, err) from None
    frame = _named(table.to_pandas(), path)
    if frame.empty and len(frame.columns):
        _raise_no_rows(path)
    return frame


def _iter_parquet(path: Path, chunksize: int) -> Iterator[pd.DataFrame]:
    """Yield record batches of a Parquet file as frames."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        for batch in parquet.iter_batches(batch_size=chunksize):
            yield _named(batch.to_pandas(), path)
    except (OSError, ValueError) as err:
        raise _bad_parquet(path, err) from None


def _bad_parquet(path: Path, err: Exception) -> DataError:
    """The message for a Parquet file pyarrow cannot read."""
    return DataError(
        f"Could not read {path.name} as Parquet: {_reason(err)}. Expected a Parquet "
        f"file; rename it if it holds CSV text."
    )


def _named(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Give a frame stripped str column names, refusing duplicates."""
    names = [str(c).strip() for c in frame.columns]
    _check_unique(names, path)
    frame.columns = names
    return frame


def _read_arff(path: Path) -> pd.DataFrame:
    """Read an ARFF file; nominal values come out as text (then numbers when all numeric)."""
    from scipy.io import arff

    _check_utf8(path, gzipped=False)
    try:
        with open(path, encoding="utf-8-sig") as handle:
            records, meta = arff.loadarff(handle)
    except (ValueError, NotImplementedError, arff.ParseArffError) as err:
        raise DataError(f"Could not read {path.name} as ARFF: {_reason(err)}.") from None
    frame = _named(pd.DataFrame(records), path)
    if frame.empty:
        _raise_no_rows(path)
    for name, kind in zip(frame.columns, meta.types(), strict=True):
        if kind != "numeric":  # nominal values arrive as bytes
            frame[name] = _clean_text(frame[name].map(_from_bytes))
    return frame


def _reason(err: Exception) -> str:
    """A library's message without its final period, to embed in ours."""
    return str(err).strip().rstrip(".")


def _from_bytes(value) -> str:
    """Decode one ARFF nominal value."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


# --------------------------------------------------------------------------- columns


def _resolve_item(columns: list[str], item: str) -> list[str]:
    """Names for one item of a column spec."""
    if item in columns:
        return [item]
    folded = item.strip().casefold()
    matches = [c for c in columns if c.strip().casefold() == folded]
    if len(matches) == 1:
        return matches
    if len(matches) > 1:
        raise UsageError(
            f"Column {item.strip()!r} matches several columns ignoring case: "
            f"{', '.join(matches)}. Give the exact name."
        )
    stripped = item.strip()
    if _INT.match(stripped):
        return [columns[_check_index(columns, int(stripped))]]
    slice_match = _SLICE.match(stripped)
    if slice_match:
        return _resolve_slice(columns, stripped, slice_match)
    raise UsageError(_not_found_message(columns, stripped))


def _check_index(columns: list[str], index: int) -> int:
    """A valid index into ``columns``, or UsageError naming the column count."""
    n = len(columns)
    if not -n <= index < n:
        raise UsageError(
            f"Column index {index} is out of range: the table has {n} columns "
            f"(indices 0..{n - 1}, or -{n}..-1 from the end)."
        )
    return index


def _resolve_slice(columns: list[str], text: str, match: re.Match) -> list[str]:
    """Names selected by a ``start:stop[:step]`` slice of indices."""
    start, stop, step = (int(g) if g else None for g in match.groups())
    if step == 0:
        raise UsageError(f"Column slice {text!r} has a step of 0; use a non-zero step.")
    chosen = columns[slice(start, stop, step)]
    if not chosen:
        raise UsageError(
            f"Column slice {text!r} selects no columns: the table has {len(columns)} columns."
        )
    return chosen


def _not_found_message(columns: list[str], name: str) -> str:
    """'Column X not found. Did you mean Y? Available: ...'."""
    return f"Column {name!r} not found.{did_you_mean(name, columns)} Available: {_listing(columns)}"


def did_you_mean(name: str, choices: list[str]) -> str:
    """' Did you mean 'x'?' for the closest choice (case-insensitive), else ''."""
    by_fold = {c.casefold(): c for c in reversed(choices)}
    close = difflib.get_close_matches(name.casefold(), list(by_fold), n=3, cutoff=0.6)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(by_fold[c]) for c in close) + "?"


def _listing(columns: list[str]) -> str:
    """Column names joined by commas, truncated for wide tables."""
    if len(columns) <= _MAX_LISTED:
        return ", ".join(columns)
    shown = ", ".join(columns[:_MAX_LISTED])
    return f"{shown}, ... ({len(columns) - _MAX_LISTED} more)"


# --------------------------------------------------------------------------- label sets


def _explode_labels(column: pd.Series, label_sep: str) -> pd.DataFrame:
    """One column of delimited label sets -> 0/1 frame, one sorted column per label.

    An empty cell is the empty label set (a row with none of the labels): in a CSV an
    empty cell cannot be told apart from a missing one, and "no label" is the common case.
    """
    if not label_sep:
        raise UsageError("The label separator must not be empty; try '|' or ';'.")
    sets = [set() if pd.isna(value) else _label_set(value, label_sep) for value in column]
    labels = sorted(set().union(*sets))
    if not labels:
        raise DataError(
            f"Target column {column.name!r} split on {label_sep!r} holds no labels. "
            f"Expected label sets such as 'jazz{label_sep}calm'."
        )
    matrix = np.array([[label in s for label in labels] for s in sets], dtype="int64")
    return pd.DataFrame(matrix, columns=labels, index=column.index)


def _label_set(value, label_sep: str) -> set[str]:
    """The labels of one cell; numbers read from text are rendered without '.0'."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return {part.strip() for part in str(value).split(label_sep) if part.strip()}
