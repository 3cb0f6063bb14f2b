"""The twin member (``tabnn.nn.twins``) as ONNX operators: each row's key compared with
every stored key, one column at a time, so the largest value is a (rows, stored rows)
matrix of booleans, never one as wide as the keys too. Stored keys are distinct, so a
row's matches pick at most one stored row, whose label sums and count a matrix product
fetches. Memory grows with rows x stored rows: predict many rows in batches."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from ..nn.twins import SMOOTHING, TwinMember
from .encoder import Encoded
from .graph import Graph


def blend_twins(g: Graph, twins: TwinMember, encoded: Encoded, proba: str, binary: bool) -> str:
    """The members' mean probabilities (rows, outputs) with the twins' answer blended in
    at ``twins.weight`` on the rows that have a twin (binary: P(positive) alone)."""
    found = matches(g, twins, encoded)
    as_double = g.op("Cast", found, to=TensorProto.DOUBLE)
    outputs = slice(1, None) if binary else slice(None)
    sums = g.op("MatMul", as_double, g.const(twins.label_sums[:, outputs]))
    counts = g.op("MatMul", as_double, g.const(twins.counts[:, None]))
    prior = g.const(SMOOTHING * twins.prior[outputs])
    answer = g.div(g.add(sums, prior), g.add(counts, g.const(SMOOTHING)))
    weight = g.const(twins.weight)
    mixed = g.add(g.mul(g.sub(g.const(1.0), weight), proba), g.mul(weight, answer))
    return g.where(g.op("Greater", counts, g.const(0.0)), mixed, proba)


def matches(g: Graph, twins: TwinMember, encoded: Encoded) -> str:
    """(rows, stored rows) bool: which stored key equals each row's, for rows with no
    unknown category (code 0), as ``TwinMember.twin_of``."""
    keys = twins.keys
    columns = []  # (row values (rows, 1), stored values (1, stored rows)) per key column
    n_numeric = (keys.shape[1] - len(encoded.codes)) // 2
    if n_numeric:
        missing = g.op("IsNaN", encoded.raw)
        filled = g.where(missing, g.const(0.0), encoded.raw)
        flags = g.op("Cast", missing, to=TensorProto.DOUBLE)
        for j in range(n_numeric):
            columns.append((column(g, filled, j), keys[:, j]))
            columns.append((column(g, flags, j), keys[:, n_numeric + j]))
    for j, codes in enumerate(encoded.codes):
        as_double = g.op("Cast", g.unsqueeze(codes, 1), to=TensorProto.DOUBLE)
        columns.append((as_double, keys[:, 2 * n_numeric + j]))
        known = g.op("Not", g.op("Equal", as_double, g.const(0.0)))  # (rows, 1)
        columns.append((known, None))
    found = None
    for values, stored in columns:
        same = values if stored is None else g.op("Equal", values, g.const(stored[None, :]))
        found = same if found is None else g.op("And", found, same)
    return found


def column(g: Graph, x: str, j: int) -> str:
    """Column j of a (rows, columns) value, as (rows, 1)."""
    return g.op("Gather", x, g.const(np.array([j], dtype=np.int64), np.int64), axis=1)
