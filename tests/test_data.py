"""Tests for tabnn.data: reading real and nasty tables, resolving columns, splitting targets."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabnn.data import (
    detect_header,
    iter_table_chunks,
    read_table,
    resolve_columns,
    split_target,
    text,
)
from tabnn.errors import DataError, InputNotFoundError, UsageError

DATA = Path(__file__).resolve().parent / "data"


def write(tmp_path: Path, text: str | bytes, name: str = "t.csv") -> Path:
    """Write a small file (bytes as they are, text as UTF-8 without newline translation)."""
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


# --------------------------------------------------------------------------- real files


def test_titanic_crlf_quotes_and_dtypes():
    frame = read_table(DATA / "titanic" / "train.csv")
    assert frame.shape == (891, 12)
    assert frame["Name"].iloc[0] == "Braund, Mr. Owen Harris"  # quoted comma kept
    assert frame["Embarked"].iloc[0] == "S"  # no trailing "\r" from CRLF
    assert frame["PassengerId"].dtype == np.int64
    assert frame["Age"].dtype == np.float64
    assert frame["Age"].isna().sum() == 177
    assert frame["Cabin"].isna().sum() == 687
    assert all(isinstance(c, str) for c in frame.columns)


def test_adult_no_header_padding_and_question_marks():
    frame = read_table(DATA / "adult" / "adult.data", header=False)
    assert frame.shape == (32561, 15)  # the blank last line is no row
    assert list(frame.columns) == [str(i) for i in range(15)]
    assert frame["1"].iloc[2] == "Private"
    assert set(frame["14"]) == {"<=50K", ">50K"}
    assert frame["1"].isna().sum() == 1836  # "?" is missing after stripping " ?"
    assert frame["0"].dtype == np.int64


def test_heart_byte_order_mark_removed():
    frame = read_table(DATA / "heart" / "heart.csv")
    assert frame.columns[0] == "age"
    assert frame["age"].dtype == np.int64
    assert frame["oldpeak"].dtype == np.float64


def test_bank_semicolons_detected():
    frame = read_table(DATA / "bank_marketing" / "bank.csv")
    assert frame.shape == (4521, 17)
    assert frame.columns[:3].tolist() == ["age", "job", "marital"]
    assert set(frame["y"]) == {"no", "yes"}


@pytest.mark.parametrize(
    "sep", [None, "\t", "\\t", "tab"], ids=["detected", "tab", "escaped", "word"]
)
def test_pmlb_gzip_tabs(sep):
    frame = read_table(DATA / "pmlb" / "ecoli.tsv.gz", sep=sep)
    assert frame.shape == (327, 8)
    assert frame["target"].dtype == np.int64
    assert frame["mcg"].dtype == np.float64


def test_sonar_no_header():
    frame = read_table(DATA / "sonar" / "sonar.csv", header=False)
    assert frame.shape == (208, 61)
    assert frame.columns[-1] == "60"
    assert set(frame["60"]) == {"M", "R"}
    assert (frame.dtypes[:60] == np.float64).all()


def test_emotions_arff_nominal_values_are_not_bytes():
    frame = read_table(DATA / "multilabel" / "emotions.arff")
    assert frame.shape == (593, 78)
    labels = frame.iloc[:, -6:]
    assert labels.columns[0] == "amazed-suprised"
    assert (labels.dtypes == np.int64).all()
    assert set(np.unique(labels.to_numpy())) == {0, 1}
    assert (frame.dtypes[:72] == np.float64).all()  # declared numeric stays float


def test_adult_in_chunks_matches_whole_file():
    chunks = list(iter_table_chunks(DATA / "adult" / "adult.data", header=False, chunksize=5000))
    assert len(chunks) == 7
    assert sum(len(c) for c in chunks) == 32561
    assert all(list(c.columns) == [str(i) for i in range(15)] for c in chunks)
    whole = read_table(DATA / "adult" / "adult.data", header=False)
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)


def test_gzip_chunks_keep_header_names():
    chunks = list(iter_table_chunks(DATA / "pmlb" / "ecoli.tsv.gz", chunksize=100))
    assert [len(c) for c in chunks] == [99, 100, 100, 28]  # row 0 of the first is the header
    assert all(c.columns[-1] == "target" for c in chunks)


def test_arff_is_one_chunk():
    chunks = list(iter_table_chunks(DATA / "multilabel" / "emotions.arff", chunksize=10))
    assert [c.shape for c in chunks] == [(593, 78)]


# --------------------------------------------------------------------------- parquet


def test_parquet_names_become_stripped_str(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame({" a ": [1, 2, 3], "b": ["x", "y", None]}).to_parquet(path)
    frame = read_table(path)
    assert list(frame.columns) == ["a", "b"]
    assert frame["a"].tolist() == [1, 2, 3]
    assert frame["b"].isna().tolist() == [False, False, True]


@pytest.mark.parametrize("suffix", [".parquet", ".pq"], ids=["parquet", "pq"])
def test_parquet_chunks(tmp_path, suffix):
    path = tmp_path / f"t{suffix}"
    pd.DataFrame({"a": range(250), "b": ["x"] * 250}).to_parquet(path)
    chunks = list(iter_table_chunks(path, chunksize=100))
    assert [len(c) for c in chunks] == [100, 100, 50]
    assert list(chunks[0].columns) == ["a", "b"]


def test_parquet_duplicate_names(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "dup.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["x", "x"]), path)
    with pytest.raises(DataError, match="duplicate column names: x"):
        read_table(path)


@pytest.mark.parametrize(
    "reader", [read_table, lambda p: list(iter_table_chunks(p))], ids=["read", "chunks"]
)
def test_unreadable_parquet(tmp_path, reader):
    path = write(tmp_path, "a,b\n1,2\n", "fake.parquet")
    with pytest.raises(DataError, match="Could not read fake.parquet as Parquet"):
        reader(path)


# --------------------------------------------------------------------------- nasty text


def test_crlf_quotes_padding_and_missing_markers(tmp_path):
    text = 'id , name,score\r\n1, "Doe, J",3\r\n2,  ?  ,NA\r\n3,Roe,\r\n'
    frame = read_table(write(tmp_path, text))
    assert list(frame.columns) == ["id", "name", "score"]
    assert frame["name"].tolist()[0] == "Doe, J"
    assert frame["name"].isna().tolist() == [False, True, False]
    assert frame["score"].dtype == np.float64
    assert frame["score"].isna().tolist() == [False, True, True]


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        (["1", "2"], "int64"),
        (["1.0", " 2.0 "], "int64"),
        (["1", "?"], "float64"),
        (["1.5", "2"], "float64"),
        (["", "NA"], "float64"),
        (["1", "x"], "str"),
        (["True", "False"], "str"),
    ],
    ids=["ints", "integral-floats", "int-with-missing", "floats", "all-missing", "mixed", "bools"],
)
def test_numeric_dtype_rules(tmp_path, values, dtype):
    frame = read_table(
        write(tmp_path, "k,v\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    )
    assert str(frame["v"].dtype) == dtype


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"], ids=["comma", "semicolon", "tab", "pipe"])
def test_delimiter_detected(tmp_path, sep):
    rows = [["a", "b", "c"], ["1", "x y", "2.5"], ["2", "z", "3.5"]]
    frame = read_table(write(tmp_path, "".join(sep.join(r) + "\n" for r in rows)))
    assert list(frame.columns) == ["a", "b", "c"]
    assert frame["b"].tolist() == ["x y", "z"]


def test_detection_ignores_commas_inside_quotes(tmp_path):
    text = 'a;b\n"1,5";"x,y"\n"2,5";z\n'
    frame = read_table(write(tmp_path, text))
    assert frame["b"].tolist() == ["x,y", "z"]


def test_single_column_file(tmp_path):
    frame = read_table(write(tmp_path, "label\na\nb\n"))
    assert frame.columns.tolist() == ["label"]
    assert len(frame) == 2


def test_no_header_names_and_blank_header_cell(tmp_path):
    path = write(tmp_path, ",a\n0,1\n1,2\n")
    assert read_table(path).columns.tolist() == ["Unnamed: 0", "a"]
    assert read_table(path, header=False).columns.tolist() == ["0", "1"]


def test_chunks_header_only_in_first_chunk(tmp_path):
    path = write(tmp_path, "a,b\n" + "".join(f"{i},x{i}\n" for i in range(10)))
    chunks = list(iter_table_chunks(path, chunksize=4))
    assert sum(len(c) for c in chunks) == 10
    assert pd.concat(chunks)["a"].tolist() == list(range(10))


# --------------------------------------------------------------------------- header detection

# every shared data file, with whether its first line holds names and the table's shape
REAL_HEADERS = [
    ("sonar/sonar.csv", False, (208, 61)),
    ("adult/adult.data", False, (32561, 15)),
    ("adult/adult-test.csv", False, (16281, 15)),
    ("iris/iris.csv", False, (150, 5)),
    ("wdbc/wdbc.data", False, (569, 32)),
    ("heart/processed.cleveland.data", False, (303, 14)),
    ("titanic/train.csv", True, (891, 12)),
    ("titanic/test.csv", True, (418, 11)),
    ("titanic/gender_submission.csv", True, (418, 2)),
    ("heart/heart.csv", True, (303, 14)),
    ("bank_marketing/bank.csv", True, (4521, 17)),
    ("mushroom/mushrooms.csv", True, (8124, 23)),  # all text: names are not among the values
    ("network_logs/Network_logs.csv", True, (8846, 10)),
    ("pmlb/spambase.tsv.gz", True, (4601, 58)),  # names 0..56 and target
    ("pmlb/ecoli.tsv.gz", True, (327, 8)),
    ("pmlb/optdigits.tsv.gz", True, (5620, 65)),
    ("multilabel/emotions.arff", True, (593, 78)),
]


@pytest.mark.parametrize(
    "name, header, shape", REAL_HEADERS, ids=[name for name, _, _ in REAL_HEADERS]
)
def test_header_detected_on_every_real_file(name, header, shape):
    assert detect_header(DATA / name) is header
    frame = read_table(DATA / name)  # "auto" by default
    assert frame.shape == shape
    if not header:
        assert frame.columns.tolist() == [str(i) for i in range(shape[1])]


def test_detected_no_header_reads_as_header_false():
    path = DATA / "sonar" / "sonar.csv"
    pd.testing.assert_frame_equal(read_table(path), read_table(path, header=False))
    assert read_table(path).iloc[0, 0] == 0.02  # the first line is a row, not names


@pytest.mark.parametrize(
    "name", ["sonar/sonar.csv", "titanic/train.csv", "iris/iris.csv", "pmlb/ecoli.tsv.gz"]
)
def test_chunks_detect_like_read_table_whatever_the_chunk_size(name):
    # chunks far smaller than the lines detection looks at must not change its answer
    chunks = list(iter_table_chunks(DATA / name, chunksize=7))
    whole = read_table(DATA / name)
    assert all(list(c.columns) == list(whole.columns) for c in chunks)
    assert sum(len(c) for c in chunks) == len(whole)
    assert pd.concat(chunks, ignore_index=True).astype(whole.dtypes).equals(whole)


def text_table(header: str | None, rows: list[str]) -> str:
    return "\n".join(([header] if header else []) + rows) + "\n"


COLORS = ["red,small,yes", "blue,large,no", "red,large,no", "green,small,yes"] * 5
NUMBERS = [f"{i % 7}.5,{i * 3 % 11}.25,{i % 2}" for i in range(30)]

SYNTHETIC_HEADERS = [
    ("text-with-names", text_table("colour,size,label", COLORS), True),
    ("text-without-names", text_table(None, COLORS), False),
    ("text-rare-first-value", text_table(None, ["violet,small,yes", *COLORS]), False),
    ("free-text-with-names", "name,city\nAnn Lee,Oslo\nBo Ek,Rome\nCy Ng,Lima\n", True),
    ("numbers-with-names", text_table("x,y,label", NUMBERS), True),
    ("numbers-without-names", text_table(None, NUMBERS), False),
    ("names-are-positions", text_table("0,1,2", NUMBERS), True),
    ("positions-from-one", text_table("1,2,3", NUMBERS), True),
    (
        "pandas-index-column",
        text_table(",0,1,2", [f"{i},{r}" for i, r in enumerate(NUMBERS)]),
        True,
    ),
    ("years-as-names", "country,2019,2020\nFR,1.5,2.5\nES,3.5,1.25\nIT,2.0,3.5\n", False),
    ("repeated-first-cells", "a,a,1\nb,c,2\nd,e,3\n", False),
    ("missing-marker-first", text_table(None, ["?,1.5,1", *NUMBERS]), False),
    ("text-in-a-number-column", "id,score\n1,0.5\n2,0.7\n", True),
]


@pytest.mark.parametrize(
    "text, header", [case[1:] for case in SYNTHETIC_HEADERS], ids=[c[0] for c in SYNTHETIC_HEADERS]
)
def test_header_detection_rules(tmp_path, text, header):
    path = write(tmp_path, text)
    assert detect_header(path) is header
    assert read_table(path).columns.tolist() == read_table(path, header=header).columns.tolist()


def test_numeric_names_need_an_explicit_header(tmp_path):
    """A header whose numeric columns are all named by numbers looks like data (rule 4):
    ``header=True`` (``--header`` on the command line) reads it as names."""
    path = write(tmp_path, "country,2019,2020\nFR,1.5,2.5\nES,3.5,1.25\n")
    assert read_table(path).shape == (3, 3)
    named = read_table(path, header=True)
    assert named.columns.tolist() == ["country", "2019", "2020"]
    assert named["2019"].tolist() == [1.5, 3.5]


def test_explicit_header_overrides_detection(tmp_path):
    sonar = DATA / "sonar" / "sonar.csv"
    assert read_table(sonar, header=True).shape == (207, 61)
    assert read_table(DATA / "titanic" / "train.csv", header=False).shape == (892, 12)


@pytest.mark.parametrize("reader", [read_table, iter_table_chunks], ids=["read", "chunks"])
def test_bad_header_value(tmp_path, reader):
    with pytest.raises(UsageError, match="header must be True, False or 'auto'. Got 'yes'"):
        list(reader(write(tmp_path, "a,b\n1,2\n"), header="yes"))


# --------------------------------------------------------------------------- errors


READERS = [read_table, lambda p, **kw: list(iter_table_chunks(p, **kw))]
READER_IDS = ["read", "chunks"]


@pytest.mark.parametrize("reader", READERS, ids=READER_IDS)
def test_missing_path(tmp_path, reader):
    with pytest.raises(InputNotFoundError, match="not found"):
        reader(tmp_path / "nope.csv")


@pytest.mark.parametrize("reader", READERS, ids=READER_IDS)
def test_directory(tmp_path, reader):
    with pytest.raises(InputNotFoundError, match="is a directory"):
        reader(tmp_path)


@pytest.mark.parametrize(
    "text", ["", "\n\n", "\r\n  \r\n"], ids=["zero-bytes", "newlines", "blank"]
)
@pytest.mark.parametrize("reader", READERS, ids=READER_IDS)
def test_empty_file(tmp_path, reader, text):
    with pytest.raises(DataError, match="t.csv is empty"):
        reader(write(tmp_path, text))


@pytest.mark.parametrize("reader", READERS, ids=READER_IDS)
def test_header_only(tmp_path, reader):
    with pytest.raises(DataError, match="has a header but no data rows"):
        reader(write(tmp_path, "a,b,c\r\n"))


def test_empty_gzip(tmp_path):
    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress(b""))
    with pytest.raises(DataError, match="is empty"):
        read_table(path)


def test_corrupt_gzip(tmp_path):
    path = write(tmp_path, b"\x1f\x8b\x08\x00garbage", "t.tsv.gz")
    with pytest.raises(DataError, match="Could not read t.tsv.gz"):
        read_table(path)


@pytest.mark.parametrize("reader", READERS, ids=READER_IDS)
def test_not_utf8(tmp_path, reader):
    path = write(tmp_path, "a,b\n1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"byte 0xE9 at offset 9 \(line 2\).*Re-save .* as UTF-8"):
        reader(path)


def test_not_utf8_offset_across_read_blocks(tmp_path, monkeypatch):
    # Small blocks so that "é" (2 bytes) straddles a boundary before the bad byte.
    monkeypatch.setattr(text, "_BLOCK_BYTES", 5)
    path = write(tmp_path, "a,b\né,x\n".encode() + b"1,\xff\n")
    with pytest.raises(DataError, match=r"byte 0xFF at offset 11 \(line 3\)"):
        read_table(path)


def test_not_utf8_cut_at_end(tmp_path):
    path = write(tmp_path, b"a,b\n1," + "é".encode()[:1])
    with pytest.raises(DataError, match="ends inside a multi-byte character"):
        read_table(path)


@pytest.mark.parametrize("reader", READERS, ids=READER_IDS)
def test_too_many_fields(tmp_path, reader):
    path = write(tmp_path, "a,b,c\n1,2,3\n4,5,6,7\n")
    with pytest.raises(DataError, match="line 3: expected 3 fields .*saw 4"):
        reader(path)


def test_too_many_fields_far_down_in_chunks(tmp_path):
    rows = "".join(f"{i},{i}\n" for i in range(300))
    path = write(tmp_path, "a,b\n" + rows + "1,2,3\n")
    with pytest.raises(DataError, match="line 302: expected 2 fields"):
        list(iter_table_chunks(path, chunksize=50))


def test_unterminated_quote(tmp_path):
    with pytest.raises(DataError, match="Could not parse t.csv"):
        read_table(write(tmp_path, 'a,b\n1,"oops\n2,3\n'))


@pytest.mark.parametrize("reader", READERS, ids=READER_IDS)
def test_wrong_delimiter_suggests_the_right_one(tmp_path, reader):
    path = write(tmp_path, "a,b,c\n1,2,3\n4,5,6\n")
    with pytest.raises(DataError, match="single column.*Use --sep ','"):
        reader(path, sep=";")


def test_wrong_delimiter_on_real_bank():
    with pytest.raises(DataError, match="Use --sep ';'"):
        read_table(DATA / "bank_marketing" / "bank.csv", sep=",")


def test_multi_character_sep(tmp_path):
    with pytest.raises(UsageError, match="single character"):
        read_table(write(tmp_path, "a,b\n1,2\n"), sep=",,")


@pytest.mark.parametrize("header", ["a,b,a", "a, b ,b"], ids=["exact", "after-strip"])
def test_duplicate_column_names(tmp_path, header):
    path = write(tmp_path, header + "\n1,2,3\n")
    with pytest.raises(DataError, match="duplicate column names: (a|b)"):
        read_table(path)


def test_bad_arff(tmp_path):
    path = write(tmp_path, "@relation x\n@attribute a weird\n@data\n1\n", "t.arff")
    with pytest.raises(DataError, match="Could not read t.arff as ARFF"):
        read_table(path)


# --------------------------------------------------------------------------- resolve_columns

TITANIC_COLUMNS = ["PassengerId", "Survived", "Pclass", "Name", "Sex", "Age"]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("Survived", ["Survived"]),
        (" survived ", ["Survived"]),
        ("1", ["Survived"]),
        ("-1", ["Age"]),
        ("-2:", ["Sex", "Age"]),
        ("2:4", ["Pclass", "Name"]),
        ("::-1", TITANIC_COLUMNS[::-1]),
        ("Age, sex,0", ["Age", "Sex", "PassengerId"]),
        ("Age,-1,age", ["Age"]),
    ],
    ids=[
        "exact",
        "case-space",
        "index",
        "negative",
        "tail-slice",
        "slice",
        "step",
        "mixed",
        "dedupe",
    ],
)
def test_resolve_columns(spec, expected):
    assert resolve_columns(pd.DataFrame(columns=TITANIC_COLUMNS), spec) == expected


def test_exact_name_wins_over_index():
    frame = pd.DataFrame(columns=["b", "0", "a"])
    assert resolve_columns(frame, "0") == ["0"]
    assert resolve_columns(frame, "2") == ["a"]


def test_name_with_comma():
    assert resolve_columns(pd.DataFrame(columns=["x", "a,b"]), "a,b") == ["a,b"]


@pytest.mark.parametrize(
    ("columns", "spec", "match"),
    [
        (
            TITANIC_COLUMNS,
            "Survivd",
            r"Column 'Survivd' not found\. Did you mean 'Survived'\? "
            r"Available: PassengerId, Survived, Pclass",
        ),
        ([f"c{i}" for i in range(50)], "zz", r"Available: c0, .*c19, \.\.\. \(30 more\)"),
        (TITANIC_COLUMNS, "6", "out of range: the table has 6 columns"),
        (TITANIC_COLUMNS, "-7", "out of range: the table has 6 columns"),
        (TITANIC_COLUMNS, "8:", "selects no columns: the table has 6 columns"),
        (TITANIC_COLUMNS, "::0", "step of 0"),
        (["age", "Age"], "AGE", "matches several columns"),
        (TITANIC_COLUMNS, " , ", "Expected a column name or index"),
    ],
    ids=[
        "typo",
        "wide",
        "too-big",
        "too-negative",
        "empty-slice",
        "zero-step",
        "ambiguous",
        "blank",
    ],
)
def test_resolve_columns_errors(columns, spec, match):
    with pytest.raises(UsageError, match=match):
        resolve_columns(pd.DataFrame(columns=columns), spec)


# --------------------------------------------------------------------------- split_target


def test_split_one_target_is_series():
    frame = read_table(DATA / "titanic" / "train.csv")
    X, y = split_target(frame, "survived")
    assert isinstance(y, pd.Series) and y.name == "Survived"
    assert "Survived" not in X.columns and X.shape == (891, 11)


def test_split_emotions_labels_is_frame():
    X, y = split_target(read_table(DATA / "multilabel" / "emotions.arff"), "-6:")
    assert isinstance(y, pd.DataFrame) and y.shape == (593, 6)
    assert X.shape == (593, 72)


def test_label_sep_explodes_sorted_labels():
    frame = pd.DataFrame({"x": [1, 2, 3, 4], "tags": ["jazz|calm", "", "calm", " rock | jazz"]})
    X, y = split_target(frame, "tags", label_sep="|")
    assert X.columns.tolist() == ["x"]
    assert y.columns.tolist() == ["calm", "jazz", "rock"]
    assert y.to_numpy().tolist() == [[1, 1, 0], [0, 0, 0], [1, 0, 0], [0, 1, 1]]
    assert (y.dtypes == np.int64).all()


def test_label_sep_missing_cell_is_the_empty_label_set():
    frame = pd.DataFrame({"x": [1, 2, 3], "tags": ["a;b", None, ""]})
    _, y = split_target(frame, "tags", label_sep=";")
    assert y.to_numpy().tolist() == [[1, 1], [0, 0], [0, 0]]


def test_label_sep_with_several_targets():
    frame = pd.DataFrame({"x": [1], "a": ["p"], "b": ["q"]})
    with pytest.raises(UsageError, match="one target column.*got 2: a, b"):
        split_target(frame, "a,b", label_sep="|")


def test_label_sep_without_labels():
    frame = pd.DataFrame({"x": [1, 2], "tags": ["", " | "]})
    with pytest.raises(DataError, match="holds no labels"):
        split_target(frame, "tags", label_sep="|")


def test_split_unknown_target():
    with pytest.raises(UsageError, match="Did you mean 'Survived'"):
        split_target(read_table(DATA / "titanic" / "train.csv"), "Survivd")
