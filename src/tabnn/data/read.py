"""Reading tables: CSV/TSV (optionally gzip), Parquet and ARFF, whole or in chunks, and
how the command line asks for them (``ReadOptions``)."""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import DataError, InputNotFoundError, TabnnError, TabnnWarning, UsageError
from .cells import check_unique, clean_text, error_reason, existing_file, raise_no_rows
from .text import Header, check_utf8, finish_text_chunk, iter_text, parse_text, prepare_text

PARQUET_SUFFIXES = (".parquet", ".pq")
# the files of a directory read as one table (see table_files)
TABLE_SUFFIXES = (*PARQUET_SUFFIXES, ".csv", ".tsv", ".gz")


@dataclass
class ReadOptions:
    """How to read a table and find its target.

    ``header=None`` means: detected from the data when training (see
    :func:`detect_header`), and for evaluate/predict whatever the model's
    training file had.
    """

    sep: str | None = None
    header: bool | None = None
    target: str | None = None
    label_sep: str | None = None


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
    path = existing_file(path)
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return _read_parquet(path)
    if suffix == ".arff":
        return _read_arff(path)
    source = prepare_text(path, sep, header)
    frame = parse_text(source, chunksize=None)
    return finish_text_chunk(frame, source, names=None)


def iter_table_chunks(
    path: str | os.PathLike,
    *,
    sep: str | None = None,
    header: Header = "auto",
    chunksize: int = 50_000,
    columns: list[str] | None = None,
    arrow: bool = False,
) -> Iterator[pd.DataFrame]:
    """Yield a table in frames of about ``chunksize`` rows, with bounded memory.

    The parsing rules are those of :func:`read_table`; dtypes may differ from chunk to chunk
    (a chunk without missing values keeps int64), which :meth:`Schema.check` evens out.
    ``header="auto"`` decides on the same first lines as :func:`read_table`, whatever the
    ``chunksize``, so both read a file the same way.

    Parameters
    ----------
    path : str or path-like
        CSV/TSV (optionally gzip), Parquet or ARFF file, or a directory of such files, read
        one after the other in name order (see :func:`table_files`). ARFF comes as a single
        chunk.
    sep : str, optional
        Delimiter of a text file; detected when omitted.
    header : bool or "auto", default "auto"
        Whether the first line of a text file holds the column names (see
        :func:`detect_header` for "auto").
    chunksize : int, default 50_000
        Rows per chunk (with a header, the first text chunk is one row shorter; a chunk
        never spans two files).
    columns : list of str, optional
        The columns needed (stripped names): a Parquet file whose columns include them all
        is read for these only; otherwise, and for text, every column is read.
    arrow : bool, default False
        Yield the chunks of Parquet files as pyarrow ``RecordBatch`` es with stripped,
        unique column names instead of frames (:func:`batch_frame` turns one into the frame
        that would have come); text and ARFF chunks stay frames.

    Yields
    ------
    pandas.DataFrame
        One chunk of rows, with the same column names in every chunk of a file.

    Examples
    --------
    >>> n = sum(len(c) for c in iter_table_chunks("adult.data", header=False))  # doctest: +SKIP
    """
    if chunksize < 1:
        raise UsageError(f"chunksize must be a positive integer. Got {chunksize} instead.")
    for file in table_files(path):
        suffix = file.suffix.lower()
        if suffix in PARQUET_SUFFIXES:
            yield from _iter_parquet(file, chunksize, columns, arrow)
        elif suffix == ".arff":
            yield _read_arff(file)
        else:
            yield from iter_text(file, sep=sep, header=header, chunksize=chunksize)


def table_files(path: str | os.PathLike) -> list[Path]:
    """The files of a table: the file itself, or a directory's table files (``*.parquet``,
    ``*.pq``, ``*.csv``, ``*.tsv``, ``*.gz``) in name order, as Spark and Hive lay out
    ``part-*`` files; names starting with ``.`` or ``_`` (``_SUCCESS``, ``.crc``) and
    sub-directories are skipped.

    Raises
    ------
    InputNotFoundError
        The path does not exist, or is a directory without table files.
    UsageError
        A directory that mixes Parquet and text files.
    """
    path = Path(path)
    if not path.is_dir():
        return [existing_file(path)]
    files = sorted(
        p
        for p in path.iterdir()
        if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES and not p.name.startswith((".", "_"))
    )
    if not files:
        raise InputNotFoundError(
            f"'{path}' is a directory without table files; expected *.parquet or *.csv files "
            f"(names starting with . or _ are skipped)."
        )
    parquet = [p.name for p in files if p.suffix.lower() in PARQUET_SUFFIXES]
    if parquet and len(parquet) < len(files):
        text = [p.name for p in files if p.suffix.lower() not in PARQUET_SUFFIXES]
        raise UsageError(
            f"'{path}' mixes Parquet files ({_few(parquet)}) with text files ({_few(text)}); "
            f"expected files of one kind. Move one kind elsewhere."
        )
    return files


@contextmanager
def naming(file: Path | None) -> Iterator[None]:
    """Name ``file`` in a data or usage error raised in the block: among a directory's
    files, a message that names only a column or a row does not say which file to fix.
    ``None`` (a table of one file, which the user named) changes nothing."""
    try:
        yield
    except (DataError, UsageError) as error:
        if file is None or file.name in str(error):
            raise
        raise type(error)(f"{file.name}: {error}") from None


def parquet_kinds(path: Path) -> dict[str, str | None]:
    """What each column of a Parquet file holds, from its footer: ``numbers``, ``text``,
    ``booleans``, ``dates or times`` or the Arrow type's name; None for a column of nulls
    only, which fits any kind."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as err:  # pyarrow raises several unrelated types for a bad file
        raise _bad_parquet(path, err) from None
    kinds = {}
    for field in schema:
        kind = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        kinds[str(field.name).strip()] = _arrow_kind(kind)
    return kinds


def _arrow_kind(kind) -> str | None:
    import pyarrow as pa

    checks = {
        "numbers": (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal),
        "text": (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view),
        "booleans": (pa.types.is_boolean,),
        "dates or times": (pa.types.is_temporal,),
    }
    if pa.types.is_null(kind):
        return None
    return next((name for name, tests in checks.items() if any(t(kind) for t in tests)), str(kind))


def count_rows(path: str | os.PathLike) -> int | None:
    """The number of data rows of a Parquet file or directory, from the files' footers
    (nothing else is read); None for text files, whose rows are known only once read, and
    for a path that cannot be read (reading it says why)."""
    try:
        files = table_files(path)
        if any(p.suffix.lower() not in PARQUET_SUFFIXES for p in files):
            return None
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(p).metadata.num_rows for p in files)
    except Exception:  # pyarrow raises several unrelated types for a damaged file
        return None


def batch_frame(batch, path: str | os.PathLike) -> pd.DataFrame:
    """A record batch from ``iter_table_chunks(..., arrow=True)`` as the frame the reader
    gives without ``arrow`` (nested values as JSON text); ``path`` names the source in
    notes."""
    return _named(_arrow_to_pandas(batch, Path(path)), Path(path))


def _few(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


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
    path = existing_file(path)
    if path.suffix.lower() in (*PARQUET_SUFFIXES, ".arff"):
        return True
    return prepare_text(path, sep, "auto").header


def _read_parquet(path: Path) -> pd.DataFrame:
    """Read a Parquet file with pyarrow; names become stripped str."""
    import pyarrow.parquet as pq

    try:
        # ParquetFile rather than read_table: the dataset API rejects duplicate names
        # with an obscure message before our own check could name them.
        table = pq.ParquetFile(path).read()
    except Exception as err:  # pyarrow raises several unrelated types for a bad file
        raise _bad_parquet(path, err) from None
    frame = _named(_arrow_to_pandas(table, path), path)
    if frame.empty and len(frame.columns):
        raise_no_rows(path)
    return frame


def _iter_parquet(
    path: Path, chunksize: int, columns: list[str] | None = None, arrow: bool = False
) -> Iterator:
    """Yield record batches of a Parquet file as frames (or as batches with stripped
    names, with ``arrow``), reading only ``columns`` when the file has them all."""
    import pyarrow.parquet as pq

    try:
        # pre_buffer (pyarrow's default) fetches column chunks ahead: 2.5x the memory
        parquet = pq.ParquetFile(path, pre_buffer=False)
        names = parquet.schema_arrow.names
        stripped = [str(name).strip() for name in names]
        check_unique(stripped, path)
        selected = None
        if columns is not None and set(columns) <= set(stripped):
            wanted = set(columns)
            selected = [n for n, s in zip(names, stripped) if s in wanted]
        for batch in parquet.iter_batches(batch_size=chunksize, columns=selected):
            if arrow:
                yield batch.rename_columns([str(name).strip() for name in batch.schema.names])
            else:
                yield _named(_arrow_to_pandas(batch, path), path)
    except TabnnError:
        raise
    except (OSError, ValueError) as err:
        raise _bad_parquet(path, err) from None


def _arrow_to_pandas(table, path: Path) -> pd.DataFrame:
    """An Arrow table or record batch as a frame, decimal columns as float64 and nested
    columns (lists, structs, maps) as the JSON text of each value.

    A cell of a frame must be a plain value: a list or a dict cannot be counted, compared
    or looked up in a vocabulary. Refusing the file would leave no way to train on its
    other columns (``--drop`` applies after reading), so each such value becomes its JSON
    text, the same at training and at prediction time, and the schema then treats the
    column as any text column (a category, or dropped with its reason); a note says so.
    """
    import pyarrow as pa

    # pandas' conversion fails obscurely on repeated names: name them first
    check_unique([str(name).strip() for name in table.schema.names], path)
    nested = [i for i, f in enumerate(table.schema) if pa.types.is_nested(f.type)]
    frame = table.to_pandas()
    for i, field in enumerate(table.schema):
        if pa.types.is_decimal(field.type):  # numbers, which as Decimal objects read as text
            frame.isetitem(i, table.column(i).cast(pa.float64()).to_numpy(zero_copy_only=False))
    for i in nested:
        field = table.schema.field(i)
        values = table.column(i).to_pylist()
        frame.iloc[:, i] = pd.Series([_json_text(v) for v in values], dtype=object).to_numpy()
        warnings.warn(
            f"{path.name}: column {field.name!r} holds {field.type} values; each is read as "
            f"its JSON text (a category, or dropped as the schema decides).",
            TabnnWarning,
            stacklevel=4,
        )
    return frame


def _json_text(value) -> str | None:
    """One nested Parquet value as JSON text (None stays missing)."""
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, default=str)


def _bad_parquet(path: Path, err: Exception) -> DataError:
    """The message for a Parquet file pyarrow cannot read."""
    return DataError(
        f"Could not read {path.name} as Parquet: {error_reason(err)}. Expected a Parquet "
        f"file; rename it if it holds CSV text."
    )


def _named(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Give a frame stripped str column names, refusing duplicates."""
    names = [str(c).strip() for c in frame.columns]
    check_unique(names, path)
    frame.columns = names
    return frame


def _read_arff(path: Path) -> pd.DataFrame:
    """Read an ARFF file; nominal values come out as text (then numbers when all numeric)."""
    from scipy.io import arff

    check_utf8(path, gzipped=False)
    _check_arff_layout(path)
    try:
        with open(path, encoding="utf-8-sig") as handle:
            records, meta = arff.loadarff(handle)
    except (ValueError, NotImplementedError, arff.ParseArffError) as err:
        raise DataError(f"Could not read {path.name} as ARFF: {error_reason(err)}.") from None
    except (StopIteration, IndexError):  # scipy's words for a missing part, a short row
        raise DataError(
            f"Could not read {path.name} as ARFF: a data row has fewer values than the "
            f"@attribute lines declare, or a part of the file is missing."
        ) from None
    if not meta.names():
        raise DataError(f"{path.name} declares no usable @attribute columns.")
    frame = _named(pd.DataFrame(records), path)
    if frame.empty:
        raise_no_rows(path)
    for name, kind in zip(frame.columns, meta.types(), strict=True):
        if kind != "numeric":  # nominal values arrive as bytes
            frame[name] = clean_text(frame[name].map(_from_bytes))
    return frame


_ARFF_COMMENT = "%"


def _check_arff_layout(path: Path) -> None:
    """Refuse, naming what is there, a file that is not dense ARFF: ARFF starts with an
    ``@relation`` line, declares ``@attribute`` lines and has its rows after ``@data``;
    sparse ARFF (rows such as ``{0 1.5, 3 yes}``) is not supported."""
    seen: list[str] = []  # the directives met, in order
    with open(path, encoding="utf-8-sig") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line or line.startswith(_ARFF_COMMENT):
                continue
            if not seen and not re.match(r"@relation\b", line, re.IGNORECASE):
                shown = line if len(line) <= 60 else line[:57] + "..."
                raise DataError(
                    f"{path.name} is not a valid ARFF file: expected an @relation line first "
                    f"(then @attribute lines and @data), found {shown!r} on line {number}. "
                    f"If it holds delimited text, name it .csv (or .tsv)."
                )
            if "@data" in seen:
                if line.startswith("{"):
                    raise DataError(
                        f"{path.name} is sparse ARFF (rows such as {line[:30]!r} on line "
                        f"{number}), which is not supported: write it as dense ARFF "
                        f"(every value in order) or as CSV."
                    )
                return
            seen.append(line.split()[0].lower())
    if "@data" not in seen:
        raise DataError(
            f"{path.name} is not a valid ARFF file: expected @attribute lines and a @data "
            f"line before the rows; found no @data line."
        )


def _from_bytes(value) -> str:
    """Decode one ARFF nominal value."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


# --------------------------------------------------------------------------- columns
