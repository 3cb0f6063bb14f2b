"""The models a server holds: each loaded once from its directory, named, and asked for
predictions as a table of rows (what both protocols read their requests into)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..artifact import directory as artifact
from ..errors import ModelError, TabnnError, UsageError
from ..features.drift import describe, outside_training
from ..features.fast_encode import CheckedRows, checked_columns, checked_frame
from ..features.preprocess import EncodedInputs

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

    def check(self, table: Table) -> CheckedRows:
        """A request's rows, checked on their own (a missing column, text or a boolean in a
        numeric column are tabnn's errors, which the caller answers with a 400) and encoded.
        A few rows of plain values skip pandas (``fast_encode``)."""
        estimator = self.estimator
        rows = checked_columns(estimator, table) if isinstance(table, dict) else None
        if rows is None:
            frame = pd.DataFrame(table) if isinstance(table, dict) else table
            rows = checked_frame(estimator, frame)
        return rows

    def predict_checked(self, rows: CheckedRows) -> Prediction:
        """Checked rows -> their prediction. The rows passed every check, so a failure here
        is the model's (weights that are not finite): a 500 that says so, never a 400."""
        estimator = self.estimator
        try:
            proba = estimator.predict_proba(rows.inputs) if self.onnx is None else self.onnx(rows)
        except TabnnError as error:
            raise RequestError(
                500, f"Model {self.name!r} failed on rows that passed every check (the model's "
                f"fault, not the request's): {error}",
            ) from None  # fmt: skip
        outside = outside_training(estimator.preprocessor_, *rows)
        threshold = estimator.threshold_
        if self.task == "multilabel":
            labels = (proba >= threshold).astype(np.int64)
        elif self.task == "binary":
            labels = estimator.classes_[(proba[:, 1] >= threshold).astype(int)]
        else:
            labels = estimator.classes_[proba.argmax(1)]
        return Prediction(labels, proba, outside)

    def predict(self, table: Table) -> Prediction:
        return self.predict_checked(self.check(table))

    def refuse_if_broken(self) -> None:
        """Refuse to serve a model that cannot answer a row of missing values (every model
        tabnn trains can): weights that are not finite would fail every request."""
        try:
            self.predict({name: [None] for name in self.features})
        except RequestError as error:
            raise ModelError(
                f"Cannot serve {self.directory}: it gives no finite probabilities for a row of "
                f"missing values, so it would fail every request ({error.message})."
            ) from None

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


def table_rows(table: Table) -> int:
    if isinstance(table, pd.DataFrame):
        return len(table)
    return len(next(iter(table.values()), []))


def concat_rows(parts: list[CheckedRows]) -> CheckedRows:
    """Several requests' checked rows as one block, for one forward pass."""
    if len(parts) == 1:
        return parts[0]
    texts = [[t for part in parts for t in part.texts[j]] for j in range(len(parts[0].texts))]
    inputs = EncodedInputs(
        np.concatenate([part.inputs.numeric for part in parts]),
        np.concatenate([part.inputs.categorical for part in parts]),
    )
    return CheckedRows(np.concatenate([part.numeric for part in parts]), texts, inputs)


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
    models = {}
    for name, directory in parse_model_specs(specs):
        models[name] = ServedModel(name, directory, runtime)
        models[name].refuse_if_broken()
    return models
