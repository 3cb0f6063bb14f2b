"""Tests for tabnn.features.schema: inference on real tables, the predict-time gate, target
encoding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabnn.data import iter_table_chunks, read_table, split_target
from tabnn.errors import DataError, ModelError, SchemaError, UsageError
from tabnn.features.labels import canonical_text
from tabnn.features.schema import Schema, drop_missing_targets, infer_schema

DATA = Path(__file__).resolve().parent / "data"


def schema_for(path: Path, target: str, **kwargs) -> Schema:
    """Read, split, drop missing targets and infer, as the command line does."""
    read = {k: kwargs.pop(k) for k in ("header", "sep") if k in kwargs}
    X, y = split_target(read_table(path, **read), target)
    X, y, _ = drop_missing_targets(X, y)
    return infer_schema(X, y, **kwargs)


def roundtrip(schema: Schema) -> Schema:
    return Schema.from_dict(json.loads(json.dumps(schema.to_dict())))


# --------------------------------------------------------------------------- real tables


@pytest.fixture(scope="module")
def titanic() -> Schema:
    return schema_for(DATA / "titanic" / "train.csv", "Survived")


def test_titanic_kinds(titanic):
    assert titanic.task == "binary"
    assert titanic.target == ["Survived"]
    assert titanic.classes == [0, 1] and all(type(c) is int for c in titanic.classes)
    assert titanic.numeric == ["Age", "Fare"]
    assert titanic.categorical == ["Pclass", "Sex", "SibSp", "Parch", "Embarked"]
    assert titanic.features == ["Age", "Fare", "Pclass", "Sex", "SibSp", "Parch", "Embarked"]
    assert titanic.dropped == {
        "PassengerId": "unique per row: looks like an ID",
        "Name": "free text (mean 27 characters)",
        "Ticket": "high cardinality: 681 distinct values in 891 rows",
        "Cabin": "high cardinality: 147 distinct values in 204 non-missing rows",
    }


def test_titanic_test_csv_in_chunks_passes_the_gate(titanic):
    # test.csv has no Survived, a missing Fare and int columns that may turn float.
    chunks = list(iter_table_chunks(DATA / "titanic" / "test.csv", chunksize=100))
    checked = pd.concat([titanic.check(c) for c in chunks], ignore_index=True)
    assert checked.shape == (418, 7)
    assert checked.columns.tolist() == titanic.features
    assert checked["Fare"].isna().sum() == 1
    assert set(checked["Pclass"]) == {"1", "2", "3"}


def test_network_logs():
    schema = schema_for(DATA / "network_logs" / "Network_logs.csv", "Intrusion", drop=["Scan_Type"])
    assert schema.task == "binary" and schema.classes == [0, 1]
    assert schema.numeric == ["Payload_Size"]
    assert schema.categorical == ["Port", "Request_Type", "Protocol", "User_Agent", "Status"]
    assert list(schema.dropped) == ["Source_IP", "Destination_IP", "Scan_Type"]
    assert schema.dropped["Scan_Type"] == "dropped by user"


def test_sonar():
    schema = schema_for(DATA / "sonar" / "sonar.csv", "-1", header=False)
    assert len(schema.numeric) == 60 and schema.categorical == [] and schema.dropped == {}
    assert (schema.task, schema.classes, schema.target) == ("binary", ["M", "R"], ["60"])


def test_emotions_multilabel():
    schema = schema_for(DATA / "multilabel" / "emotions.arff", "-6:")
    assert schema.task == "multilabel"
    assert schema.classes == schema.target
    assert schema.classes[0] == "amazed-suprised" and len(schema.classes) == 6
    assert len(schema.numeric) == 72 and schema.categorical == []
    X, y = split_target(read_table(DATA / "multilabel" / "emotions.arff"), "-6:")
    encoded = schema.encode_target(y)
    assert encoded.dtype == np.float32 and encoded.shape == (593, 6)
    assert encoded[0].tolist() == [0, 1, 1, 0, 0, 0]


def test_adult_without_header():
    schema = schema_for(DATA / "adult" / "adult.data", "-1", header=False)
    assert schema.classes == ["<=50K", ">50K"]
    assert schema.target == ["14"]
    assert "1" in schema.categorical and "0" in schema.numeric


def test_cleveland_multiclass_with_question_marks():
    schema = schema_for(DATA / "heart" / "processed.cleveland.data", "-1", header=False)
    assert (schema.task, schema.classes) == ("multiclass", [0, 1, 2, 3, 4])


# --------------------------------------------------------------------------- JSON round trip


@pytest.mark.parametrize(
    "classes",
    [[0, 1], ["M", "R"], [0.5, 1.5, 2.5], [False, True], ["<=50K", ">50K"]],
    ids=["ints", "strings", "floats", "bools", "adult"],
)
def test_json_roundtrip_keeps_label_types(classes):
    task = "multiclass" if len(classes) > 2 else "binary"
    schema = Schema(["a"], ["b"], {"id": "unique per row: looks like an ID"}, task, ["y"], classes)
    back = roundtrip(schema)
    assert back == schema
    assert [type(c) for c in back.classes] == [type(c) for c in classes]


def test_inferred_classes_are_plain_python(titanic):
    assert json.loads(json.dumps(titanic.to_dict())) == titanic.to_dict()
    assert roundtrip(titanic) == titanic
    assert list(roundtrip(titanic).dropped) == list(titanic.dropped)  # order kept


@pytest.mark.parametrize(
    ("change", "match"),
    [({"task": "regression"}, "unknown task 'regression'"), ({"classes": None}, "lacks classes")],
    ids=["task", "missing-key"],
)
def test_from_dict_rejects_malformed(change, match):
    d = Schema(["a"], [], {}, "binary", ["y"], [0, 1]).to_dict() | change
    d = {k: v for k, v in d.items() if v is not None}
    with pytest.raises(ModelError, match=match):
        Schema.from_dict(d)


# --------------------------------------------------------------------------- check


SCHEMA = Schema(["Age", "Fare"], ["Pclass", "Sex"], {}, "binary", ["Survived"], [0, 1])


def test_check_selects_orders_and_types():
    frame = pd.DataFrame(
        {
            "Sex": ["male", " female "],
            "extra": [1, 2],
            "Fare": [7, 8],
            "Pclass": [3, 1],
            "Age": ["22", " ? "],
        }
    )
    out = SCHEMA.check(frame)
    assert out.columns.tolist() == ["Age", "Fare", "Pclass", "Sex"]
    assert out["Age"].dtype == np.float64 and np.isnan(out["Age"].iloc[1])
    assert out["Fare"].dtype == np.float64
    assert out["Pclass"].tolist() == ["3", "1"]
    assert out["Sex"].tolist() == ["male", "female"]
    assert frame.columns.tolist()[0] == "Sex"  # the input is left alone


def test_check_missing_columns():
    with pytest.raises(
        SchemaError, match="Columns seen at fit time, yet now missing:\n- Age\n- Sex"
    ):
        SCHEMA.check(pd.DataFrame({"Fare": [1.0], "Pclass": [1]}))


def test_check_bad_number_names_column_row_and_value():
    frame = pd.DataFrame(
        {
            "Age": ["1", "", "abc"],
            "Fare": [1.0, 2.0, 3.0],
            "Pclass": [1, 2, 3],
            "Sex": ["m", "f", "m"],
        }
    )
    with pytest.raises(SchemaError, match=r"Column 'Age' .* data row 2 \(0-based\).*'abc'"):
        SCHEMA.check(frame)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([3, 1], ["3", "1"]),
        ([3.0, np.nan], ["3", None]),
        (["3", " 3.0 "], ["3", "3"]),
        ([True, False], ["True", "False"]),
        (["a", "?"], ["a", None]),
        ([0.25, None], ["0.25", None]),
        (pd.Categorical(["x", None]), ["x", None]),
    ],
    ids=["int", "int-gained-nan", "numeric-text", "bool", "question-mark", "float", "category"],
)
def test_check_canonical_categories(values, expected):
    schema = Schema([], ["c"], {}, "binary", ["y"], [0, 1])
    out = schema.check(pd.DataFrame({"c": values}))
    assert out["c"].tolist() == expected
    assert all(v is None or type(v) is str for v in out["c"])


def test_canonical_text_agrees_across_types():
    assert canonical_text(pd.Series([3, 3.0, "3", "03", "1e3"])).tolist() == [
        "3",
        "3",
        "3",
        "3",
        "1000",
    ]


# --------------------------------------------------------------------------- targets


def test_encode_binary_and_decode():
    schema = Schema(["x"], [], {}, "binary", ["y"], ["M", "R"])
    encoded = schema.encode_target(pd.Series(["R", "M", "R"]))
    assert encoded.dtype == np.float32 and encoded.tolist() == [1.0, 0.0, 1.0]
    assert schema.decode(np.array([1, 0])).tolist() == ["R", "M"]


def test_encode_numeric_labels_compare_canonically():
    schema = Schema(["x"], [], {}, "multiclass", ["y"], [0, 1, 2])
    encoded = schema.encode_target(pd.Series([2.0, 0.0, 1.0]))
    assert encoded.dtype == np.int64 and encoded.tolist() == [2, 0, 1]
    decoded = schema.decode(encoded)
    assert decoded.tolist() == [2, 0, 1] and decoded.dtype.kind == "i"


def test_encode_unknown_label():
    schema = Schema(["x"], [], {}, "binary", ["income"], ["<=50K", ">50K"])
    with pytest.raises(DataError, match=r"label '<=50K\.', which was not seen at fit time"):
        schema.encode_target(pd.Series(["<=50K", "<=50K."]))


def test_encode_missing_label():
    schema = Schema(["x"], [], {}, "binary", ["y"], ["a", "b"])
    with pytest.raises(DataError, match="1 missing labels"):
        schema.encode_target(pd.Series(["a", None]))


def test_encode_multilabel_reorders_columns_and_refuses_other_values():
    schema = Schema(["x"], [], {}, "multilabel", ["a", "b"], ["a", "b"])
    y = pd.DataFrame({"b": [1, 0], "a": [True, False]})
    assert schema.encode_target(y).tolist() == [[1.0, 1.0], [0.0, 0.0]]
    passthrough = np.array([[0, 1], [1, 1]])
    assert schema.decode(passthrough).tolist() == passthrough.tolist()
    with pytest.raises(DataError, match="Label column 'b' must hold 0/1"):
        schema.encode_target(pd.DataFrame({"a": [1, 0], "b": [2, 0]}))


def test_drop_missing_targets_series():
    X = pd.DataFrame({"a": [1, 2, 3]}, index=[10, 11, 12])
    X2, y2, dropped = drop_missing_targets(X, pd.Series(["x", None, "y"], index=X.index))
    assert dropped == 1
    assert X2["a"].tolist() == [1, 3] and y2.tolist() == ["x", "y"]
    assert X2.index.tolist() == [0, 1]


def test_drop_missing_targets_multilabel_any_nan():
    y = pd.DataFrame({"a": [1, np.nan, 0], "b": [0, 1, np.nan]})
    X2, y2, dropped = drop_missing_targets(pd.DataFrame({"x": [1, 2, 3]}), y)
    assert dropped == 2 and X2["x"].tolist() == [1]


def test_drop_missing_targets_all_missing():
    with pytest.raises(DataError, match="All 3 rows have a missing target"):
        drop_missing_targets(pd.DataFrame({"x": [1, 2, 3]}), pd.Series([None, np.nan, None]))


def test_label_sep_flow_to_multilabel():
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "tags": ["jazz|calm", "", None, "calm"]})
    X, y = split_target(frame, "tags", label_sep="|")
    X, y, dropped = drop_missing_targets(X, y)
    schema = infer_schema(X, y)
    assert dropped == 0  # an empty or missing label set means "none of the labels"
    assert (schema.task, schema.classes) == ("multilabel", ["calm", "jazz"])
    assert schema.encode_target(y).tolist() == [[1, 1], [0, 0], [0, 0], [1, 0]]


# --------------------------------------------------------------------------- target errors


def y_series(values, name="y") -> pd.Series:
    return pd.Series(values, name=name)


X50 = pd.DataFrame({"f": np.arange(50) % 7 * 1.5})


def test_single_class_message():
    with pytest.raises(DataError) as info:
        infer_schema(X50, y_series(["a"] * 50))
    assert str(info.value) == (
        "Target 'y' has a single class ('a' in all 50 rows); "
        "classification needs at least two classes."
    )


def test_continuous_target():
    with pytest.raises(DataError, match="looks continuous.*Bin it"):
        infer_schema(X50, y_series(np.linspace(0, 1, 50)))


def test_float_target_with_few_values_is_fine():
    schema = infer_schema(X50, y_series(np.arange(50) % 3 * 0.5))
    assert schema.classes == [0.0, 0.5, 1.0] and schema.task == "multiclass"


def test_integral_float_target_gets_int_classes():
    schema = infer_schema(X50, y_series(np.arange(50) % 2 * 1.0))
    assert schema.classes == [0, 1] and all(type(c) is int for c in schema.classes)


@pytest.mark.parametrize(
    ("values", "task", "expected"),
    [
        (["a", "b"] * 25, None, "binary"),
        (["a", "b", "c", "d", "e"] * 10, None, "multiclass"),
        (["a", "b"] * 25, "multiclass", "multiclass"),
        ([True, False] * 25, None, "binary"),
    ],
    ids=["two", "five", "forced-multiclass", "bools"],
)
def test_task_inferred_or_forced(values, task, expected):
    assert infer_schema(X50, y_series(values), task=task).task == expected


@pytest.mark.parametrize(
    ("y", "task", "match"),
    [
        (y_series(["a", "b", "c", "d", "e"] * 10), "binary", "needs 2 classes.*has 5"),
        (y_series(["a", "b"] * 25), "multilabel", "several 0/1 target columns or a label sep"),
        (y_series(["a", "b"] * 25), "regression", "task must be one of"),
        (pd.DataFrame({"a": [0, 1] * 25, "b": [1, 0] * 25}), "binary", "needs one target column"),
    ],
    ids=["binary-too-many", "multilabel-series", "unknown-task", "binary-several-columns"],
)
def test_task_usage_errors(y, task, match):
    with pytest.raises(UsageError, match=match):
        infer_schema(X50, y, task=task)


def test_multilabel_column_not_binary():
    y = pd.DataFrame({"happy": [0, 1] * 25, "sad": ["x", "y"] * 25})
    with pytest.raises(DataError, match=r"Label column 'sad' must hold 0/1.*'x', 'y'"):
        infer_schema(X50, y)


# --------------------------------------------------------------------------- feature rules


N = 40


@pytest.mark.parametrize(
    ("values", "kind", "reason"),
    [
        (["x"] * N, None, "constant (always 'x')"),
        ([7] * (N - 1) + [None], None, "constant (always 7.0)"),
        ([None] * N, None, "all values missing"),
        (list(range(100, 100 + N)), None, "unique per row: looks like an ID"),
        (list(range(0, 3 * N, 3)), None, "unique per row: looks like an ID"),
        ([(i * 7) % N * 3 for i in range(N)], "numeric", ""),
        ([i % 20 for i in range(N)], "categorical", ""),
        ([i % 21 for i in range(N)], "numeric", ""),
        ([i % 2 + 0.5 for i in range(N)], "numeric", ""),
        ([f"u{i}" for i in range(N)], None, "unique per row: looks like an ID"),
        (
            [f"Mr. Somebody Quite Long number {i}" for i in range(N)],
            None,
            "free text (mean 33 characters)",
        ),
        ([f"t{i % 30}" for i in range(N)], None, "high cardinality: 30 distinct values in 40 rows"),
        ([f"t{i % 5}" for i in range(N)], "categorical", ""),
        ([i % 2 == 0 for i in range(N)], "categorical", ""),
        (
            pd.to_datetime(["2024-01-01", "2024-01-02"] * (N // 2)),
            None,
            "unsupported type datetime64",
        ),
    ],
    ids=[
        "constant",
        "constant-number",
        "all-missing",
        "int-id",
        "spaced-increasing-ints",
        "spaced-shuffled-ints",
        "few-ints",
        "many-ints",
        "floats",
        "text-id",
        "free-text",
        "high-cardinality",
        "text",
        "bool",
        "datetime",
    ],
)
def test_feature_rules(values, kind, reason):
    X = pd.DataFrame({"f": values, "keep": np.arange(N) * 0.5})
    schema = infer_schema(X, y_series([0, 1] * (N // 2)))
    if kind is None:
        assert schema.dropped["f"].startswith(reason)
    else:
        assert "f" in getattr(schema, kind)


def test_small_table_unique_text_stays_categorical():
    X = pd.DataFrame({"f": ["a", "b", "c", "d"], "g": [1.0, 2.0, 3.0, 4.0]})
    assert infer_schema(X, y_series([0, 1, 0, 1])).categorical == ["f"]


def test_overrides():
    X = pd.DataFrame(
        {
            "few": [i % 3 for i in range(N)],
            "flt": [i % 4 * 0.5 for i in range(N)],
            "id": range(N),
            "txt": [str(i % 5) for i in range(N)],
        }
    )
    schema = infer_schema(
        X,
        y_series([0, 1] * (N // 2)),
        drop=["txt"],
        categorical=["flt", "id", "txt"],
        numeric=["few"],
    )
    assert schema.numeric == ["few"]
    assert schema.categorical == ["flt", "id"]
    assert schema.dropped == {"txt": "dropped by user"}


def test_numeric_override_on_text_fails_early():
    X = pd.DataFrame({"t": ["1", "2", "oops"], "g": [1.0, 2.0, 3.0]})
    with pytest.raises(DataError, match=r"Column 't' was forced numeric, but data row 2 .*'oops'"):
        infer_schema(X, y_series([0, 1, 0]), numeric=["t"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"drop": ["Tickt"]}, r"drop: column 'Tickt' not found\. Did you mean 'Ticket'\?"),
        ({"categorical": ["Pclas"]}, r"categorical: column 'Pclas' not found.*'Pclass'"),
        ({"numeric": ["nothing"]}, r"numeric: column 'nothing' not found\. Available"),
        ({"drop": ["Survived"]}, "'Survived' is the target"),
        ({"categorical": ["Age"], "numeric": ["Age"]}, "both categorical and numeric: Age"),
    ],
    ids=["drop", "categorical", "numeric", "target", "both"],
)
def test_override_usage_errors(kwargs, match):
    X, y = split_target(read_table(DATA / "titanic" / "train.csv"), "Survived")
    with pytest.raises(UsageError, match=match):
        infer_schema(X, y, **kwargs)


def test_no_features_left_lists_reasons():
    X = pd.DataFrame({"id": range(N), "c": ["x"] * N})
    with pytest.raises(
        DataError, match="(?s)every column was dropped:.*- id: unique per row.*- c: constant"
    ):
        infer_schema(X, y_series([0, 1] * (N // 2)))


def test_no_features_at_all():
    with pytest.raises(DataError, match="only the target"):
        infer_schema(pd.DataFrame(index=range(4)), y_series([0, 1, 0, 1]))


def test_an_unseen_label_message_stays_short_with_many_classes():
    schema = Schema(["x"], [], {}, "multiclass", ["y"], [f"class-{i}" for i in range(1000)])
    with pytest.raises(DataError) as error:
        schema.encode_target(pd.Series(["class-1", "rare"]))
    message = str(error.value)
    assert "label 'rare', which was not seen" in message and "(990 more)" in message
    assert len(message) < 400  # not 7.7 KB listing every class
