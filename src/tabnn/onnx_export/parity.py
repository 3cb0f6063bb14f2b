"""Parity between an exported graph and the estimator it came from.

``onnx_inputs`` turns a table into the graph's inputs the way ``predict_proba`` reads it;
``table_parity`` compares the graph's outputs with ``predict_proba`` and ``predict`` on a
table; ``probe_parity`` does so on synthetic rows made from the fitted statistics alone
(each column's centre and spread, far-out values, a missing value per column, unseen and
missing categories), which is what ``tabnn export`` checks before it keeps a file.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from ..features.encoding import Encoding, encoding_of
from ..features.frames import as_frame
from ..features.preprocess import encode_frame
from .build import LABEL, PROBABILITIES

PROBE_ROWS = 16
UNSEEN = "<a category never seen in training>"
FAR_OUT = 50.0  # spreads from the centre: beyond anything training saw


class Parity(NamedTuple):
    """How the graph's outputs compare with the estimator's on some rows."""

    largest_difference: float  # of the probabilities, absolute
    same_labels: bool
    rows: int

    def holds(self, tolerance: float) -> bool:
        return self.same_labels and self.largest_difference <= tolerance


def inputs_of(encoding: Encoding, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The graph's inputs for a frame of the encoding's columns: float64 numbers (NaN
    missing), text with "" for a missing category."""
    feed = {name: np.asarray(frame[name], dtype=np.float64) for name in encoding.numeric}
    for name in encoding.categorical:
        column = frame[name].astype(object)
        text = column.where(column.notna(), "").astype(str)
        feed[name] = np.asarray(text, dtype=object)
    return feed


def onnx_inputs(estimator, X) -> dict[str, np.ndarray]:
    """The graph's inputs for a table as ``predict_proba`` takes it: its columns checked
    against the schema (date columns become their numeric parts, categories their
    canonical text: 3, 3.0 and "3" all read "3")."""
    frame = estimator.schema_.check(as_frame(estimator, X, reset=False))
    return inputs_of(encoding_of(estimator), frame)


def run(session, feed: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, labels) from an onnxruntime session."""
    proba, labels = session.run([PROBABILITIES, LABEL], feed)
    return proba, labels


def compare(session, feed: dict, proba: np.ndarray, labels: np.ndarray) -> Parity:
    onnx_proba, onnx_labels = run(session, feed)
    if onnx_proba.shape != proba.shape or np.shape(onnx_labels) != np.shape(labels):
        return Parity(float("inf"), False, len(proba))
    difference = float(np.abs(onnx_proba - proba).max()) if proba.size else 0.0
    same = np.array_equal(np.asarray(onnx_labels).astype(str), np.asarray(labels).astype(str))
    return Parity(difference, bool(same), len(proba))


def table_parity(session, estimator, X) -> Parity:
    """The graph against ``predict_proba(X)`` and ``predict(X)`` on a table."""
    return compare(
        session, onnx_inputs(estimator, X), estimator.predict_proba(X), estimator.predict(X)
    )


def probe_frame(encoding: Encoding, rows: int = PROBE_ROWS) -> pd.DataFrame:
    """Synthetic rows over the encoding's columns (date parts included): values around
    each column's centre, the fill value, one far out, one missing per column, quantile
    knots exactly (ties), and for each categorical column seen, unseen and missing ones."""
    rng = np.random.default_rng(0)
    columns: dict[str, object] = {}
    for j, name in enumerate(encoding.numeric):
        center, spread = encoding.centers[j], encoding.scales[j]
        x = center + spread * rng.normal(scale=1.5, size=rows)
        x[0], x[1] = encoding.medians[j], center - FAR_OUT * spread
        if encoding.quantiles:
            x[2] = encoding.quantiles[j][len(encoding.quantiles[j]) // 2]
        x[3 + j % (rows - 3)] = np.nan
        columns[name] = x
    for j, (name, vocabulary) in enumerate(zip(encoding.categorical, encoding.vocabularies)):
        text = [vocabulary[i] for i in rng.integers(0, len(vocabulary), rows)]
        unseen = UNSEEN
        while unseen in vocabulary:
            unseen += "?"
        text[j % rows], text[(j + 1) % rows] = unseen, None
        columns[name] = pd.Series(text, dtype=object)
    return pd.DataFrame(columns, columns=[*encoding.numeric, *encoding.categorical])


def twin_frame(encoding: Encoding, twins, rows: int = PROBE_ROWS) -> pd.DataFrame:
    """The first ``rows`` rows a twin member stores (``tabnn.nn.twins``), as a table of
    the encoding's columns: rows whose twin the graph must find."""
    keys = twins.keys[:rows]
    n_numeric = len(encoding.numeric)
    columns: dict[str, object] = {}
    for j, name in enumerate(encoding.numeric):
        columns[name] = np.where(keys[:, n_numeric + j] == 1, np.nan, keys[:, j])
    for j, (name, vocabulary) in enumerate(zip(encoding.categorical, encoding.vocabularies)):
        codes = keys[:, 2 * n_numeric + j].astype(np.int64)
        columns[name] = pd.Series([vocabulary[c - 1] for c in codes], dtype=object)
    return pd.DataFrame(columns, columns=[*encoding.numeric, *encoding.categorical])


def probe_parity(session, estimator) -> Parity:
    """The graph against ``predict_proba`` and ``predict`` on ``probe_frame``'s rows, and
    on rows the twin member stores where the model has one, which go to the estimator
    through its own encoding."""
    encoding = encoding_of(estimator)
    frame = probe_frame(encoding)
    twins = getattr(estimator, "twins_", None)
    if twins is not None:
        frame = pd.concat([frame, twin_frame(encoding, twins)], ignore_index=True)
    encoded = encode_frame(encoding, frame)
    return compare(
        session,
        inputs_of(encoding, frame),
        estimator.predict_proba(encoded),
        estimator.predict(encoded),
    )
