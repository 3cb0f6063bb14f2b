"""Property-based fuzzing (issue 9): small hostile tables through the command line and the
estimator, and the promises that must hold whatever the data.

Hypothesis draws tables of 5-60 rows and 1-6 feature columns of mixed types (floats with
NaN, infinities, huge and tiny numbers; integers, some beyond int64; booleans; categories;
odd strings: empty, spaces, unicode, commas, quotes, ``?``, ``NA``, quoted newlines; now
and then a nested column of lists or dicts), odd
column names (unicode, spaces, numbers such as ``-1``, sometimes a duplicate), a binary,
multi-class (sometimes with a one-row class) or multi-label target, sometimes with missing
labels, and new rows to predict (unseen categories, missing values, infinities, extra or
absent columns). The command line reads them mostly as CSV, sometimes as TSV, gzip,
Parquet (nested columns as lists or structs), ARFF, or CSV named ``.arff``. The promises:

- command line (``tabnn train -q --no-report --epochs 2``, sometimes with another
  ``--scaling``, ``--seed``, ``--threshold auto``, ``--ensemble 2`` or ``--class-weight
  balanced``, then ``tabnn predict`` when it trained): exit code 0, 1 or 2; no exception
  escapes and no traceback is printed; a failure prints nothing on stdout and leaves the
  directory as it was (no model directory, no predictions file); a quiet train that
  succeeds prints nothing; written predictions have one row per data row and finite
  probabilities in [0, 1] that sum to 1 per row (each label's in [0, 1] for multi-label);
- estimator (``TabNNClassifier(hidden=[8], epochs=2)`` with the same parameters, ``fit``
  then ``predict_proba``): succeeds or raises a ``TabnnError``, nothing else;
  probabilities as above, one row per input row.

The properties are the functions ``check_cli`` and ``check_estimator`` on a ``Table`` drawn
by ``tables()``; the tests below run a fixed set of derandomized examples (``make test``)
and require that a share of them train and predict, and a share be refused (a generator
whose tables all fail, or all pass, would check little); ``benchmarks/fuzz.py`` runs many
more with random seeds and lists every distinct failure.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import math
import os
import tempfile
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest
import typer.main
from hypothesis import HealthCheck, event, given, note, seed, settings
from hypothesis import strategies as st
from test_cli import assert_fails, runner, snapshot

from tabnn import TabNNClassifier
from tabnn.cli import app
from tabnn.errors import TabnnError

TASKS = ("binary", "multiclass", "multilabel")
TRAIN = ("-q", "--no-report", "--epochs", "2")
ESTIMATOR = {"hidden": [8], "epochs": 2}
# estimator parameters a table may set, and the train options that set them
OPTIONS = {
    "scaling": "scaling",
    "random_state": "seed",
    "threshold": "threshold",
    "n_members": "ensemble",
    "class_weight": "class-weight",
}
SUM_TOLERANCE = 1e-6

# --------------------------------------------------------------------------- odd values

HUGE = [1e300, -1e308, 1.7976931348623157e308, -1e300]
TINY = [1e-300, -1e-300, 5e-324, 0.0, -0.0]
INFINITE = [math.inf, -math.inf]
# "1e999" reads as a number, infinity in disguise; "nan" is text that pandas calls NaN
INFINITE_TEXT = ["inf", "-inf", "1e999", "Infinity"]
BIG_INTS = [2**63, -(2**63) - 1, 10**30, 10**31 - 1]
ODD_STRINGS = [
    "",
    " ",
    "  padded  ",
    "?",
    "NA",
    "N/A",
    "null",
    "None",
    "nan",
    "NaN",
    "a,b",
    'say "hi"',
    "'",
    '"',
    "é",
    "名前",
    "🙂",
    "İ",
    "\u200b",
    "\u2028",
    "\x85",
    "\t",
    "x\ny",
    "True",
    "0",
    "-1",
    "1.5",
    "1,5",
    "2021-03-04",
    ";",
    "|",
    "#",
    "\\",
    "=1+1",
]
ODD_NAMES = [
    "x",
    "Age",
    "feature 1",
    " padded ",
    "température",
    "名前",
    "🙂",
    "-1",
    "0",
    "2",
    "1.5",
    "a,b",
    'q"uote',
    "?",
    "NA",
    "",
    "row",
    "prediction",
    "labels",
    "proba_yes",
    "Unnamed: 0",
    "target",
    "TARGET",
    "x\ny",
    "-6:",
]
# text of names and strings: any character but surrogates and control characters (NUL;
# a carriage return, which the CSV writer would not quote); those that matter, such as a
# newline (quoted) or a tab, are in ODD_STRINGS
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=6)
LABEL_SETS = [
    ["no", "yes"],
    [0, 1],
    [False, True],
    [-1, 1],
    ["a,b", 'q"x'],
    [" padded", "é"],
    ["名前", "🙂"],
    ["1.5", "2.5"],
    ["NA", "ok"],  # "NA" reads as a missing label
    ["low", "mid", "high"],
    [1, 2, 3, 4],
    ["A", "B", "C", "D", "E", "F"],
    ["x", "X", "x "],  # equal once stripped or case-folded
]
UNSEEN = ["never seen", "ünseen", "?", 123456.5, -7, True, "inf"]

# --------------------------------------------------------------------------- tables


@dataclass
class Column:
    """One column: its name, what it holds and how the estimator's DataFrame stores it."""

    name: str
    kind: str
    values: list
    dtype: str = "infer"  # or category, string, nullable (estimator only)


@dataclass
class Table:
    """A drawn table, how to train on it, and new rows to predict."""

    features: list[Column]
    targets: list[Column]  # one label column, or several 0/1 columns (multi-label)
    task: str  # what the target was drawn as (tabnn decides for itself)
    position: int  # the target columns sit before feature ``position``
    header: str  # "header" (--header), "auto" (detected) or "none" (--no-header)
    target_spec: str  # the --target value
    # rows to predict: a value for every column, then for each extra column; the file holds
    # the columns ``new_order`` picks (some may be absent, the order may change)
    new_values: list[list] = field(default_factory=list)
    extra_names: list[str] = field(default_factory=list)
    new_order: list[int] = field(default_factory=list)
    as_array: bool = False  # the estimator gets NumPy arrays instead of DataFrames
    fmt: str = "csv"  # the training file: csv, tsv, gz, parquet, arff, or arff-csv
    rows_fmt: str = "csv"  # the file of rows to predict: csv or parquet
    out_fmt: str = "csv"  # predict -o: csv or parquet
    # the estimator predicts the file's columns (less the target), else the fit columns
    estimator_rows_as_file: bool = False
    # estimator parameters beyond ESTIMATOR (scaling, random_state, threshold, n_members,
    # class_weight), given to train as the matching options
    params: dict = field(default_factory=dict)

    @property
    def columns(self) -> list[Column]:
        """Every column in file order."""
        return self.features[: self.position] + self.targets + self.features[self.position :]

    @property
    def n_rows(self) -> int:
        return len(self.features[0].values)

    def csv(self) -> str:
        """The training file."""
        columns = self.columns
        rows = [[c.values[i] for c in columns] for i in range(self.n_rows)]
        return csv_text([c.name for c in columns], rows, self.header != "none")

    @property
    def new_names(self) -> list[str]:
        names = [c.name for c in self.columns] + self.extra_names
        return [names[i] for i in self.new_order]

    @property
    def new_rows(self) -> list[list]:
        return [[row[i] for i in self.new_order] for row in self.new_values]

    @property
    def rows_header(self) -> bool:
        """Whether the file of rows to predict starts with the names (as the model expects
        when its training file had them)."""
        return self.header != "none" or self.fmt in ("parquet", "arff")

    def rows_csv(self) -> str:
        """The file of rows to predict, as CSV."""
        return csv_text(self.new_names, self.new_rows, self.rows_header)

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write the training file and the file of rows to predict -> their paths."""
        columns = self.columns
        names = [c.name for c in columns]
        rows = [[c.values[i] for c in columns] for i in range(self.n_rows)]
        suffix = {"tsv": ".tsv", "gz": ".csv.gz", "parquet": ".parquet"}.get(self.fmt, ".csv")
        data = directory / f"data{'.arff' if 'arff' in self.fmt else suffix}"
        if self.fmt == "parquet":
            write_parquet(data, names, rows)
        elif self.fmt == "arff":
            data.write_text(arff_text(names, rows), encoding="utf-8")
        else:
            text = csv_text(names, rows, self.header != "none", "\t" if self.fmt == "tsv" else ",")
            raw = text.encode("utf-8")
            data.write_bytes(gzip.compress(raw, mtime=0) if self.fmt == "gz" else raw)
        new = directory / f"rows.{self.rows_fmt}"
        if self.rows_fmt == "parquet":
            write_parquet(new, self.new_names, self.new_rows)
        else:
            new.write_text(self.rows_csv(), encoding="utf-8")
        return data, new

    def header_options(self) -> list[str]:
        return {"header": ["--header"], "auto": [], "none": ["--no-header"]}[self.header]

    def train_args(self, data, out) -> list:
        options = [f"--{OPTIONS[k]}={v}" for k, v in self.params.items()]
        target = f"--target={self.target_spec}"
        return ["train", data, target, *self.header_options(), *options, "-o", out]

    def estimator_data(self):
        """(X, y, rows) as a user of the estimator would pass them: DataFrames (arrays for
        a header-less table, sometimes); the rows to predict without the target columns."""
        targets = range(self.position, self.position + len(self.targets))
        if self.estimator_rows_as_file:
            keep = [i for i in self.new_order if i not in targets]
        else:
            keep = [i for i in range(len(self.columns)) if i not in targets]
        names = [c.name for c in self.columns] + self.extra_names
        if self.as_array:
            X = to_array([[c.values[i] for c in self.features] for i in range(self.n_rows)])
            rows = to_array([[row[i] for i in keep] for row in self.new_values])
        else:
            X = pd.DataFrame({i: frame_column(c) for i, c in enumerate(self.features)})
            X.columns = [c.name for c in self.features]
            rows = pd.DataFrame({i: [row[i] for row in self.new_values] for i in keep})
            rows.columns = [names[i] for i in keep]
        if self.task == "multilabel":
            y = pd.DataFrame({c.name: pd.Series(c.values, dtype="float64") for c in self.targets})
        else:
            y = pd.Series(self.targets[0].values, name=self.targets[0].name)
        return X, (y.to_numpy() if self.as_array else y), rows

    def describe(self) -> str:
        """Everything needed to reproduce a failure by hand."""
        kinds = ", ".join(f"{c.name!r}: {c.kind}/{c.dtype}" for c in self.features)
        return (
            f"task drawn: {self.task}; header: {self.header}; --target={self.target_spec!r}; "
            f"training file: {self.fmt}; rows file: {self.rows_fmt}; -o preds.{self.out_fmt}; "
            f"array input: {self.as_array}; estimator rows as in rows.csv: "
            f"{self.estimator_rows_as_file}; parameters: {self.params}\nfeatures: {kinds}\n"
            f"--- training file as CSV ({self.n_rows} rows)\n{self.csv()}"
            f"--- rows to predict as CSV ({len(self.new_rows)} rows)\n{self.rows_csv()}---"
        )


def cell_text(value) -> str:
    """A cell as the CSV file holds it: missing is empty, floats round-trip (inf, 1e-300)."""
    if missing(value):
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def csv_text(names: list[str], rows: list[list], header: bool, sep: str = ",") -> str:
    """Standard CSV: fields with the delimiter, a quote or a newline are quoted."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=sep, lineterminator="\n")
    if header:
        writer.writerow(names)
    for row in rows:
        writer.writerow([cell_text(v) for v in row])
    return buffer.getvalue()


def to_array(matrix: list[list]) -> np.ndarray:
    """Rows as a NumPy array: float64 when every value is a number or missing, else object."""
    numbers = all(
        v is None or (isinstance(v, int | float) and not isinstance(v, bool))
        for row in matrix
        for v in row
    )
    return np.array(matrix, dtype="float64" if numbers else object)


def write_parquet(path: Path, names: list[str], rows: list[list]) -> None:
    """A Parquet file: each column typed as pyarrow sees it (numbers, booleans, lists,
    structs), as text when its values have no common type."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = []
    for j in range(len(names)):
        values = [None if missing(row[j]) else row[j] for row in rows]
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            arrays.append(pa.array([None if v is None else str(v) for v in values], pa.string()))
    pq.write_table(pa.Table.from_arrays(arrays, names=names), path)


def arff_quote(text: str) -> str:
    if text and not any(c in text for c in " ,{}'\"%\t\n?\\"):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def arff_text(names: list[str], rows: list[list]) -> str:
    """An ARFF file: numeric attributes for number columns, nominal ones for the rest."""
    lines = ["@relation fuzz", ""]
    numeric = []
    for j, name in enumerate(names):
        present = [row[j] for row in rows if not missing(row[j])]
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in present)
        numeric.append(numbers)
        if numbers:
            kind = "numeric"
        else:
            kind = "{" + ",".join(arff_quote(v) for v in sorted({str(v) for v in present})) + "}"
        lines.append(f"@attribute {arff_quote(name)} {kind}")
    lines += ["", "@data"]
    for row in rows:
        cells = [
            "?" if missing(v) else (cell_text(v) if numbers else arff_quote(str(v)))
            for v, numbers in zip(row, numeric)
        ]
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def frame_column(column: Column) -> pd.Series:
    """A column as a pandas user would hold it (None becomes NaN where pandas says so)."""
    series = pd.Series(column.values)
    conversions = {"category": "category", "string": "string"}
    if column.dtype == "nullable":
        conversions["nullable"] = {"int": "Int64", "bool": "boolean", "float": "Float64"}.get(
            column.kind, "string"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return (
                series.astype(conversions[column.dtype]) if column.dtype in conversions else series
            )
    except (TypeError, ValueError, OverflowError):
        return series


# --------------------------------------------------------------------------- strategies


def sometimes(percent: int):
    """True in about ``percent`` % of draws (not on a bound, which Hypothesis favours);
    shrinks to False."""
    return st.integers(0, 99).map(lambda i: 37 <= i < 37 + percent)


@st.composite
def odd_cells(draw, n: int, odd: list, percent: int = 30) -> dict[int, object]:
    """Some of ``n`` cells (row -> value) given odd values, in ``percent`` % of columns;
    shrinks towards none."""
    if not odd or not draw(sometimes(percent)):
        return {}
    pairs = st.tuples(st.integers(0, n - 1), st.sampled_from(odd))
    return dict(draw(st.lists(pairs, min_size=1, max_size=min(n, 8))))


def plain_values(kind: str, rng: np.random.Generator, n: int, pool: list) -> list:
    """Ordinary values of a column (from a seeded generator: varied, yet reproducible)."""
    if kind == "float":
        scale = 10.0 ** int(rng.integers(-2, 4))
        return [round(float(v), 3) for v in rng.normal(0, scale, n)]
    if kind == "int":
        high = int(rng.choice([3, 30, 1000]))
        return [int(v) for v in rng.integers(-high, high, n)]
    if kind == "bool":
        return [bool(v) for v in rng.random(n) < 0.5]
    if kind in ("category", "text"):
        return [pool[int(i)] for i in rng.integers(0, len(pool), n)]
    if kind == "mixed":
        choices = [round(float(rng.normal()), 2), int(rng.integers(-5, 5)), *pool]
        return [choices[int(i)] for i in rng.integers(0, len(choices), n)]
    if kind == "nested":
        if rng.random() < 0.5:
            return [[int(v) for v in rng.integers(-3, 3, rng.integers(0, 3))] for _ in range(n)]
        return [{"a": int(v)} for v in rng.integers(-3, 3, n)]
    return [pool[0]] * n  # constant


@st.composite
def feature_columns(draw, name: str, n: int) -> Column:
    kinds = ["float", "int", "category", "bool", "constant", "text", "mixed"]
    kind = "nested" if draw(sometimes(4)) else draw(st.sampled_from(kinds))
    strings = st.sampled_from(ODD_STRINGS) | TEXT
    if kind == "constant":
        pool = [draw(st.sampled_from([0, 1.5, "same", True, "", "?"]))]
    elif kind == "category" and draw(sometimes(25)):  # 16-30 categories: embedded
        prefix = draw(strings)
        pool = [f"{prefix}{i}" for i in range(draw(st.integers(16, 30)))]
    else:
        pool = draw(st.lists(strings, min_size=1, max_size=4 if kind == "category" else 12))
    values = plain_values(kind, np.random.default_rng(draw(st.integers(0, 2**16))), n, pool)
    infinite = INFINITE if draw(sometimes(10)) else []  # in training data: rare
    odd = {
        "float": HUGE + TINY + [math.nan] + infinite,
        "int": BIG_INTS,
        "category": ODD_STRINGS,
        "bool": ["yes", "TRUE", 1],
        "text": ODD_STRINGS + (INFINITE_TEXT if infinite else []),
        "mixed": ODD_STRINGS + HUGE + infinite,
        "nested": [[], {}, "[1, 2]"],
    }.get(kind, [])
    for i, value in draw(odd_cells(n, odd)).items():
        values[i] = value
    for i in draw(odd_cells(n, [None])):  # missing values
        values[i] = None
    dtype = draw(st.sampled_from(["infer", "infer", "infer", "category", "string", "nullable"]))
    return Column(name, kind, values, dtype)


@st.composite
def target_columns(draw, task: str, names: list[str], n: int) -> list[Column]:
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if task == "multilabel":
        columns = []
        for name in names:
            values = [int(v) for v in rng.random(n) < rng.uniform(0.1, 0.9)]
            columns.append(Column(name, "label", values))
    else:
        sizes = (2, 2) if task == "binary" else (3, 6)
        labels = draw(st.sampled_from([s for s in LABEL_SETS if sizes[0] <= len(s) <= sizes[1]]))
        values = [labels[int(i)] for i in rng.integers(0, len(labels), n)]
        if draw(sometimes(3)):  # a single class
            values = [labels[0]] * n
        elif task == "multiclass" and draw(sometimes(40)):  # one class with a single row
            rare = labels[-1]
            values = [labels[0] if v == rare else v for v in values]
            values[draw(st.integers(0, n - 1))] = rare
        columns = [Column(names[0], "label", values)]
    for column in columns:
        for i in draw(odd_cells(n, [None], percent=15)):  # missing labels
            column.values[i] = None
    return columns


@st.composite
def column_names(draw, k: int) -> list[str]:
    """``k`` odd names, distinct once stripped, sometimes with one repeated."""
    names = draw(
        st.lists(
            st.sampled_from(ODD_NAMES) | TEXT,
            min_size=k,
            max_size=k,
            unique_by=lambda s: s.strip(),
        )
    )
    if k > 1 and draw(sometimes(5)):
        i, j = draw(st.permutations(range(k)))[:2]
        names[j] = names[i]
    return names


def usable_name(name: str, names: list[str]) -> bool:
    """Whether --target can name this column unambiguously by its name."""
    key = name.strip().casefold()
    return (
        bool(key)
        and "," not in name
        and name.strip() not in ("?", "NA")
        and sum(n.strip().casefold() == key for n in names) == 1
    )


@st.composite
def target_spec(draw, table: Table) -> str:
    """--target as a name, a list of names, an index or a slice."""
    names = [c.name for c in table.columns]
    start, k = table.position, len(table.targets)
    wanted = [c.name for c in table.targets]
    style = draw(st.sampled_from(["name", "index", "negative"]))
    if style == "name" and table.header != "none" and all(usable_name(n, names) for n in wanted):
        return ",".join(wanted)
    if style == "negative":
        first = start - len(names)
        return f"{first}" if k == 1 else f"{first}:{first + k if first + k < 0 else ''}"
    return f"{start}" if k == 1 else f"{start}:{start + k}"


@st.composite
def new_rows(draw, table: Table) -> tuple[list[list], list[str], list[int]]:
    """Rows to predict: values seen in training, unseen ones, missing values, infinities,
    sometimes with an extra, an absent or reordered columns. -> (values of every column
    and then the extra ones, extra names, the order of the columns in the file)."""
    columns = table.columns
    m = draw(st.integers(1, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    rows = [[c.values[int(rng.integers(0, table.n_rows))] for c in columns] for _ in range(m)]
    extra = [draw(st.sampled_from(ODD_NAMES) | TEXT)] if draw(sometimes(10)) else []
    for row in rows:
        row.extend(UNSEEN[int(rng.integers(0, len(UNSEEN)))] for _ in extra)
    if draw(sometimes(40)):  # odd cells
        pool = UNSEEN + INFINITE + HUGE + TINY + INFINITE_TEXT + ODD_STRINGS + [None]
        where = st.tuples(st.integers(0, m - 1), st.integers(0, len(columns) - 1))
        for (i, j), value in draw(
            st.lists(st.tuples(where, st.sampled_from(pool)), min_size=1, max_size=6)
        ):
            rows[i][j] = value
    order = list(range(len(columns) + len(extra)))
    if table.header != "none":  # without a header, columns are known by position only
        if draw(sometimes(10)):  # an absent column
            del order[draw(st.integers(0, len(order) - 1))]
        if draw(sometimes(20)):
            order = draw(st.permutations(order))
    return rows, extra, order


@st.composite
def parameters(draw) -> dict:
    """Mostly the defaults; sometimes another scaling, seed, threshold, ensemble or
    class weighting."""
    params = {}
    if draw(sometimes(30)):
        params["scaling"] = draw(st.sampled_from(["robust", "quantile"]))
    if draw(sometimes(30)):
        params["random_state"] = draw(st.integers(1, 3))
    if draw(sometimes(10)):
        params["threshold"] = "auto"
    if draw(sometimes(10)):
        params["n_members"] = 2
    if draw(sometimes(10)):
        params["class_weight"] = "balanced"
    return params


@st.composite
def tables(draw) -> Table:
    """A small hostile table, its --target and rows to predict."""
    n = draw(st.integers(5, 60))
    n_features = draw(st.integers(1, 6))
    task = draw(st.sampled_from(TASKS))
    n_targets = draw(st.integers(2, 4)) if task == "multilabel" else 1
    names = draw(column_names(n_features + n_targets))
    features = [draw(feature_columns(name, n)) for name in names[:n_features]]
    targets = draw(target_columns(task, names[n_features:], n))
    position = draw(st.sampled_from([n_features, 0, draw(st.integers(0, n_features))]))
    header = draw(st.sampled_from(["header", "auto", "none"]))
    table = Table(features, targets, task, position, header, target_spec="")
    table.target_spec = draw(target_spec(table))
    table.new_values, table.extra_names, table.new_order = draw(new_rows(table))
    table.as_array = header == "none" and draw(st.booleans())
    table.estimator_rows_as_file = draw(sometimes(20))
    others = ["tsv", "gz", "parquet", "arff", "arff-csv"]
    table.fmt = "csv" if not draw(sometimes(30)) else draw(st.sampled_from(others))
    table.params = draw(parameters())
    table.rows_fmt = "parquet" if draw(sometimes(10)) else "csv"
    table.out_fmt = "parquet" if draw(sometimes(10)) else "csv"
    return table


# --------------------------------------------------------------------------- properties


class CommandCrashed(AssertionError):
    """An exception escaped a tabnn command (chained to it, traceback and all)."""


# typer's CliRunner builds the click command from the app on every call (about 25 ms, a
# sixth of an example's time): built once here
click_command = functools.cache(typer.main.get_command)


def cli(cwd: Path, *args):
    """Run ``tabnn ARGS`` in-process in ``cwd``, as test_cli's ``invoke`` does, but keep an
    escaped exception as the cause, so that its traceback (into src/tabnn) is shown and
    different crashes count as different bugs."""
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        with mock.patch("typer.testing._get_command", click_command):
            result = runner.invoke(app, [str(a) for a in args])
    finally:
        os.chdir(previous)
    error = result.exception
    if error is not None and not isinstance(error, SystemExit):
        raise CommandCrashed(f"tabnn {args[0]} raised {type(error).__name__}: {error}") from error
    output = result.stdout + result.stderr
    assert result.exit_code in (0, 1, 2), f"tabnn {args[0]} exit code {result.exit_code}"
    assert "Traceback" not in output, f"tabnn {args[0]} printed a traceback:\n{output}"
    return result


def failed_cleanly(result, tmp: Path, before: set[str]) -> None:
    """A failure: a message on stderr only, nothing written."""
    assert_fails(result, result.exit_code)
    assert snapshot(tmp) == before, f"files left after a failure: {snapshot(tmp) - before}"


def check_probabilities(proba: np.ndarray, multilabel: bool, n_rows: int) -> None:
    assert proba.shape[0] == n_rows, f"{proba.shape[0]} rows of probabilities for {n_rows}"
    assert proba.shape[1] >= (1 if multilabel else 2), f"probability columns: {proba.shape}"
    assert np.isfinite(proba).all(), f"non-finite probabilities:\n{proba}"
    assert ((proba >= 0) & (proba <= 1)).all(), f"probabilities outside [0, 1]:\n{proba}"
    if not multilabel:
        sums = proba.sum(axis=1)
        assert np.allclose(sums, 1.0, rtol=0, atol=SUM_TOLERANCE), f"row sums {sums}"


def check_prediction_file(path: Path, table: Table) -> None:
    if path.suffix == ".parquet":
        predictions = pd.read_parquet(path)
    else:
        predictions = pd.read_csv(path, dtype=str, keep_default_na=False)
    columns = list(predictions.columns)
    assert columns[:1] == ["row"] and columns[1] in ("prediction", "labels"), columns
    probability_columns = columns[2:]
    assert all(c.startswith("proba_") for c in probability_columns), columns
    proba = predictions[probability_columns].apply(pd.to_numeric, errors="coerce").to_numpy()
    n_rows = len(table.new_rows)
    if table.header == "auto" and table.rows_fmt == "csv" and len(predictions) == n_rows + 1:
        n_rows += 1  # the training file's first line was read as data: so is this one
    check_probabilities(proba.astype("float64"), columns[1] == "labels", n_rows)


def first_line(text: str) -> str:
    return " ".join(text.replace("│", " ").split("\n", 1)[0].split())


def check_cli(table: Table) -> tuple[str, str]:
    """``tabnn train`` then ``tabnn predict``: exit codes, no traceback, nothing written
    on failure, valid probabilities whenever predictions are written. -> (outcome, the
    first line of the refusal, if any)."""
    with tempfile.TemporaryDirectory(prefix="tabnn-fuzz-") as name:
        tmp = Path(name)
        data, rows = table.write(tmp)
        model, out = tmp / "model", tmp / f"preds.{table.out_fmt}"
        before = snapshot(tmp)
        result = cli(tmp, *table.train_args(data, model), *TRAIN)
        if result.exit_code != 0:
            failed_cleanly(result, tmp, before)
            assert not model.exists(), "a failed train left its model directory"
            return f"train exit {result.exit_code}", first_line(result.stderr)
        quiet = result.stdout + result.stderr
        assert quiet == "", f"train --quiet printed more than errors:\n{quiet}"
        before = snapshot(tmp)
        result = cli(tmp, "predict", model, rows, "-o", out)
        if result.exit_code != 0:
            failed_cleanly(result, tmp, before)
            return f"predict exit {result.exit_code}", first_line(result.stderr)
        check_prediction_file(out, table)
    return "predicted", ""


def check_estimator(table: Table) -> tuple[str, str]:
    """``TabNNClassifier.fit`` then ``predict_proba``: a TabnnError or valid probabilities,
    never another exception. -> (outcome, the first line of the refusal, if any)."""
    X, y, rows = table.estimator_data()
    clf = TabNNClassifier(**ESTIMATOR, **table.params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            clf.fit(X, y)
        except TabnnError as error:
            return f"fit raised {type(error).__name__}", first_line(str(error))
        try:
            proba = clf.predict_proba(rows)
        except TabnnError as error:
            return f"predict_proba raised {type(error).__name__}", first_line(str(error))
    check_probabilities(np.asarray(proba, dtype="float64"), clf.task_ == "multilabel", len(rows))
    return "predicted", ""


# --------------------------------------------------------------------------- tests


def examples(n: int) -> settings:
    """``n`` derandomized examples (the same on every run), no example database."""
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=False,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.function_scoped_fixture,
            HealthCheck.filter_too_much,  # unique column names are drawn by filtering
            HealthCheck.data_too_large,
        ],
    )


# Share of the examples that must end each way, or the generator has drifted: all refused
# (then the train and predict promises go unchecked) or all accepted (nothing hostile left).
# Derandomized, about half the command-line examples and three quarters of the estimator's
# predict.
MIN_PREDICTED = 0.3
MIN_REFUSED = 0.1


def run_examples(n: int, check, seeded: int) -> Counter:
    """``check`` on ``n`` tables drawn from seed ``seeded`` (the same on every run) -> how
    many ended in each outcome."""
    outcomes = Counter()

    @seed(seeded)
    @examples(n)
    @given(table=tables())
    def run(table: Table):
        note(table.describe())
        outcome = check(table)[0]
        event(outcome)
        outcomes[outcome] += 1

    run()
    return outcomes


def assert_both_outcomes(outcomes: Counter) -> None:
    """Enough examples predicted, and enough were refused."""
    total, predicted = outcomes.total(), outcomes["predicted"]
    assert predicted >= MIN_PREDICTED * total, f"too few predicted: {dict(outcomes)}"
    assert total - predicted >= MIN_REFUSED * total, f"too few refused: {dict(outcomes)}"


def test_assert_both_outcomes_rejects_a_degenerate_generator():
    assert_both_outcomes(Counter({"predicted": 5, "train exit 1": 5}))
    for degenerate in ({"train exit 1": 10}, {"predicted": 10}, {"predicted": 1, "fit": 9}):
        with pytest.raises(AssertionError):
            assert_both_outcomes(Counter(degenerate))


# about 0.2 s per command-line example and 0.04 s per estimator one on 2 cores, when they
# pass (shrinking a failure takes longer)


def test_command_line_fails_cleanly_or_predicts_valid_probabilities():
    assert_both_outcomes(run_examples(100, check_cli, seeded=1))


def test_estimator_raises_tabnn_errors_or_predicts_valid_probabilities():
    assert_both_outcomes(run_examples(200, check_estimator, seeded=2))
