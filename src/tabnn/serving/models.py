"""The models a server holds: each loaded once from its directory, named, and asked for
predictions as a table of rows (what both protocols read their requests into)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import artifact
from ..drift import describe, outside_training
from ..errors import UsageError
from ..fast_encode import checked_columns, checked_frame

# a request's rows: columns as lists (what the protocols' JSON holds), or a frame (CSV)
Table = dict[str, list] | pd.DataFrame
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class RequestError(Exception):
    """A request the client must fix: answered with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Prediction:
    """What the model says about some rows: ``labels`` (single-label tasks: the label of
    each row in its original value; multi-label: a 0/1 matrix, one column per label),
    ``probabilities`` (rows, classes or labels) and, per row, the (column, kind) inputs
    ``outside`` what training saw (``drift``)."""

    labels: np.ndarray
    probabilities: np.ndarray
    outside: list[list[tuple[str, str]]]


class ServedModel:
    """One saved model, loaded for serving: its name, version (the first 12 hex digits of
    its ``tabnn.json`` digest, so a retrained model is a new version), the columns a request
    must hold and the classes its answers name."""

    def __init__(self, name: str, directory: Path, runtime: str = "torch") -> None:
        self.name, self.directory = name, directory
        self.estimator = artifact.load(directory)
        self.onnx = None
        if runtime == "onnx":
            from .onnx_runtime import OnnxProbabilities

            self.onnx = OnnxProbabilities(self.estimator)
        meta = self.estimator.metadata_
        self.version = str(meta.get("meta_sha256", ""))[:12] or "1"
        schema = self.estimator.schema_
        self.task = self.estimator.task_
        self.classes = list(schema.classes)
        self.numeric = set(schema.numeric)
        self.features = list(schema.features)

    def input_datatype(self, column: str) -> str:
        """Open Inference Protocol datatype of a feature: FP64 for numbers, BYTES for
        categories and dates."""
        return "FP64" if column in self.numeric else "BYTES"

    def label_datatype(self) -> str:
        """Datatype of the ``label`` output: the classes' own kind."""
        return datatype_of(np.asarray(self.estimator.classes_))

    def predict(self, table: Table) -> Prediction:
        """Rows (a frame, or columns as lists) -> their prediction; tabnn's own errors (a
        missing column, text in a numeric column) name what is wrong, and the caller
        answers them with a 400. A few rows of plain values skip pandas (``fast_encode``)."""
        estimator = self.estimator
        rows = checked_columns(estimator, table) if isinstance(table, dict) else None
        if rows is None:
            rows = checked_frame(
                estimator, pd.DataFrame(table) if isinstance(table, dict) else table
            )
        proba = estimator.predict_proba(rows.inputs) if self.onnx is None else self.onnx(rows)
        outside = outside_training(estimator.preprocessor_, *rows)
        threshold = estimator.threshold_
        if self.task == "multilabel":
            labels = (proba >= threshold).astype(np.int64)
        elif self.task == "binary":
            labels = estimator.classes_[(proba[:, 1] >= threshold).astype(int)]
        else:
            labels = estimator.classes_[proba.argmax(1)]
        return Prediction(labels, proba, outside)

    def records(self, prediction: Prediction, outside: bool = False) -> list[dict]:
        """A prediction as one JSON object a row, as ``tabnn predict`` writes its columns:
        ``prediction`` (or ``labels``, the names of the predicted labels),
        ``proba_<class>`` and, when asked, ``outside_training``."""
        names = [str(c) for c in self.classes]
        rows = []
        for i, (label, proba) in enumerate(zip(prediction.labels, prediction.probabilities)):
            if self.task == "multilabel":
                row = {"labels": [n for n, on in zip(names, label) if on]}
            else:
                row = {"prediction": plain(label)}
            row.update({f"proba_{n}": float(p) for n, p in zip(names, proba)})
            if outside:
                row["outside_training"] = describe(prediction.outside[i])
            rows.append(row)
        return rows


def json_object(body: bytes) -> dict:
    """A request body that must be one JSON object (both protocols' JSON requests)."""
    try:
        request = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise RequestError(400, f"Expected a JSON object as the request body: {error}.") from None
    if not isinstance(request, dict):
        raise RequestError(400, f"Expected a JSON object; got a {type(request).__name__}.")
    return request


def columns_of_rows(where: str, rows: list[list], names: list[str], expected: str) -> dict:
    """Rows given as lists -> columns named ``names``; a row of another length is refused,
    ``expected`` saying what its values should be."""
    wrong = next((i for i, row in enumerate(rows) if len(row) != len(names)), None)
    if wrong is not None:
        raise RequestError(400, f"'{where}' row {wrong} has {len(rows[wrong])} values; {expected}.")
    return {name: [row[j] for row in rows] for j, name in enumerate(names)}


def table_rows(table: Table) -> int:
    if isinstance(table, pd.DataFrame):
        return len(table)
    return len(next(iter(table.values()), []))


def concat_tables(tables: list[Table]) -> Table:
    """Several requests' rows as one table (columns that some lack are left out: the
    merged prediction then fails, and each request is predicted alone)."""
    if all(isinstance(t, dict) for t in tables):
        shared = [c for c in tables[0] if all(c in t for t in tables[1:])]
        return {c: [v for t in tables for v in t[c]] for c in shared}
    frames = [pd.DataFrame(t) if isinstance(t, dict) else t for t in tables]
    return pd.concat(frames, ignore_index=True)


def datatype_of(values: np.ndarray) -> str:
    """The Open Inference Protocol datatype of a NumPy array's values."""
    kind = values.dtype.kind
    return {"b": "BOOL", "i": "INT64", "u": "UINT64", "f": "FP64"}.get(kind, "BYTES")


def plain(value):
    """A NumPy scalar -> the Python value JSON writes (``np.int64(3)`` -> ``3``)."""
    return value.item() if isinstance(value, np.generic) else value


def parse_model_specs(specs: list[str]) -> list[tuple[str, Path]]:
    """``DIR`` or ``NAME=DIR`` -> (name, directory); a name defaults to the directory's
    own. Names must be unique and fit in a URL path segment."""
    if not specs:
        raise UsageError("Name at least one model directory to serve.")
    named = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        directory = Path(path if sep else spec)
        name = name if sep else directory.resolve().name
        if not NAME_PATTERN.match(name):
            raise UsageError(
                f"Model name {name!r} (from {spec!r}) cannot name a URL: use letters, digits, "
                f"'.', '_' and '-', as in NAME=DIR."
            )
        named.append((name, directory))
    seen = [n for n, _ in named]
    twice = sorted({n for n in seen if seen.count(n) > 1})
    if twice:
        raise UsageError(f"Two models are named {', '.join(twice)}; name them apart with NAME=DIR.")
    return named


RUNTIMES = ("torch", "onnx")


def load_models(specs: list[str], runtime: str = "torch") -> dict[str, ServedModel]:
    """Every model of the specs, loaded and checked (a bad directory is the user's error);
    ``runtime``: what computes the probabilities, torch or onnxruntime."""
    if runtime not in RUNTIMES:
        raise UsageError(f"The runtime must be torch or onnx; got {runtime!r}.")
    return {
        name: ServedModel(name, directory, runtime) for name, directory in parse_model_specs(specs)
    }
