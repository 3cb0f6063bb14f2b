"""The graph's inputs and the model's input encoder: one input per column, the category
lookups, median fill, missing indicators, scaling, one-hot columns and embeddings.

The columns, their order, the bound on numbers, the category codes and the indicator
columns are the model's ``Encoding`` (tabnn.features.encoding), which the other encoders
read too; the arithmetic mirrors ``InputEncoder`` (tabnn.nn.mlp) operation for operation,
in float64, with each stack member's statistics and embeddings from the network: values
are (members, rows, width) as in the network.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from onnx import TensorProto

from ..features.encoding import Encoding
from ..nn.config import SCALED_LIMIT
from . import special
from .graph import Graph

# InputEncoder's uniform range and smooth-clipping constant (tabnn.nn.mlp.InputEncoder)
UNIFORM_CLAMP = 1e-3
CLIP_WIDTH = 3.0


def values(tensor) -> np.ndarray:
    """A torch tensor's values as a NumPy array (float64 for the inference network)."""
    return tensor.detach().cpu().numpy()


def numeric_inputs(g: Graph, encoding: Encoding) -> str:
    """One float64 input of shape [N] per numeric column -> (rows, columns), rounded to
    float32 after bounding by ``encoding.value_limit``, as every encoder: NaN stays NaN."""
    names = encoding.numeric
    columns = [g.unsqueeze(g.add_input(name, TensorProto.DOUBLE, ["N"]), 1) for name in names]
    x = g.op("Concat", *columns, axis=1) if len(columns) > 1 else columns[0]
    x = g.clip(x, -encoding.value_limit, encoding.value_limit)
    as_float32 = g.op("Cast", x, to=TensorProto.FLOAT)
    return g.op("Cast", as_float32, to=TensorProto.DOUBLE)


def lookup_keys(known: dict[str, int]) -> tuple[list[str], list[int]]:
    """LabelEncoder keys and codes from a column's codes (``Encoding.codes``), and an
    integer category "3" is also found as "3.0", the text Python gives the float 3.0
    (tabnn reads both as "3")."""
    keys, codes = list(known), list(known.values())
    taken = set(keys)
    for text, code in known.items():
        alias = f"{text}.0"
        if text.lstrip("-").isdigit() and alias not in taken:
            keys.append(alias)
            codes.append(code)
    return keys, codes


def category_codes(g: Graph, encoding: Encoding, j: int) -> str:
    """Categorical column j's string input of shape [N] -> int64 codes [N], as every
    encoder looks it up: a string outside the vocabulary ("" included) is the unknown code."""
    text = g.add_input(encoding.categorical[j], TensorProto.STRING, ["N"])
    keys, codes = lookup_keys(encoding.codes[j])
    return g.op(
        "LabelEncoder",
        text,
        domain="ai.onnx.ml",
        keys_strings=keys,
        values_int64s=codes,
        default_int64=encoding.UNKNOWN,
    )


class Encoded(NamedTuple):
    """The encoder's output: ``inputs`` (members, rows, encoded width) and the scaled
    numeric columns (members, rows, numeric), which periodic embeddings read; the raw
    numeric values (rows, numeric; NaN = missing) and each categorical column's codes
    (rows,), which the twin member's keys are made of."""

    inputs: str
    scaled: str | None
    raw: str | None = None
    codes: tuple[str, ...] = ()


def encode(g: Graph, encoder, encoding: Encoding) -> Encoded:
    """Declare the graph's inputs (numeric columns, then categorical ones, as ``encoding``
    orders them) and encode them as ``encoder`` (an InputEncoder) does."""
    members = encoder.n_members
    parts, scaled, raw = [], None, None
    if encoding.numeric:
        raw = numeric_inputs(g, encoding)
        missing = g.op("IsNaN", raw)
        scaled = scale(g, encoder, g.where(missing, g.const(values(encoder.medians)), raw))
        parts.append(scaled)
        if encoding.indicator_columns:
            columns = np.array(encoding.indicator_columns, dtype=np.int64)
            parts.append(indicators(g, missing, columns, members))
    codes = [category_codes(g, encoding, j) for j in range(len(encoding.categorical))]
    for j, (card, dim) in enumerate(zip(encoding.cardinalities, encoder.embedding_dims)):
        if dim:  # (members, cardinality, dim) looked up per member
            table = g.const(values(encoder.embeddings[str(j)]))
            parts.append(g.op("Gather", table, codes[j], axis=1))
        else:
            one_hot = g.op("Gather", g.const(np.eye(card)), codes[j], axis=0)
            parts.append(g.expand_members(g.unsqueeze(one_hot, 0), members))
    inputs = g.op("Concat", *parts, axis=2) if len(parts) > 1 else parts[0]
    return Encoded(inputs, scaled, raw, tuple(codes))


def indicators(g: Graph, missing: str, columns: np.ndarray, members: int) -> str:
    """0/1 "was missing" columns for the indicator columns: (members, rows, indicators)."""
    chosen = g.op("Gather", missing, g.const(columns, np.int64), axis=1)
    as_float = g.op("Cast", chosen, to=TensorProto.DOUBLE)
    return g.expand_members(g.unsqueeze(as_float, 0), members)


def scale(g: Graph, encoder, filled: str) -> str:
    """Filled values (members, rows, numeric) -> scaled ones, per ``encoder.scaling``."""
    if encoder.scaling == "quantile":
        return quantile_normal(g, filled, values(encoder.quantiles))
    centered = g.sub(filled, g.const(values(encoder.centers)))
    scaled = g.div(centered, g.const(values(encoder.scales)))
    scaled = g.clip(scaled, -SCALED_LIMIT, SCALED_LIMIT)
    if encoder.scaling == "clipped":  # x / sqrt(1 + (x / 3)^2)
        ratio = g.div(scaled, g.const(CLIP_WIDTH))
        root = g.op("Sqrt", g.add(g.const(1.0), g.mul(ratio, ratio)))
        scaled = g.div(scaled, root)
    return scaled


def quantile_normal(g: Graph, x: str, knots: np.ndarray) -> str:
    """``InputEncoder``'s quantile scaling: the piecewise-linear position of each value
    among its column's training quantiles (ties: the middle of the tied knots), as a
    uniform in (0, 1), then its normal score. ``searchsorted`` becomes a binary search."""
    table = special.Knots(g, knots)
    q = table.q
    below = special.searchsorted(g, table, x, right=False)  # knots < value
    at_or_below = special.searchsorted(g, table, x, right=True)  # knots <= value
    upper = g.op("Clip", below, g.const(1, np.int64), g.const(q - 1, np.int64))
    upper_less_one = g.sub(upper, g.const(1, np.int64))
    low, high = table.at(g, upper_less_one), table.at(g, upper)
    width = g.op("Max", g.sub(high, low), g.const(1e-12))
    fraction = g.clip(g.div(g.sub(x, low), width), 0.0, 1.0)
    between = g.add(g.op("Cast", upper_less_one, to=TensorProto.DOUBLE), fraction)
    tied_sum = g.sub(g.add(below, at_or_below), g.const(1, np.int64))
    tied = g.div(g.op("Cast", tied_sum, to=TensorProto.DOUBLE), g.const(2.0))
    position = g.where(g.op("Greater", at_or_below, below), tied, between)
    uniform = g.clip(g.div(position, g.const(float(q - 1))), UNIFORM_CLAMP, 1 - UNIFORM_CLAMP)
    return special.normal_quantile(g, uniform)
