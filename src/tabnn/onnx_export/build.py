"""A fitted ``TabNNClassifier`` as one self-contained ONNX model.

Inputs: one per column the model reads, in its encoding's order, shape [N]: float64
for numeric columns (NaN = missing), string for categorical ones ("" or any unseen text =
the unknown category). Outputs: ``probabilities`` (N, outputs), float64, as
``predict_proba``; ``label`` as ``predict``: the class in its original type (int64,
float64, bool or string) for binary and multi-class models, an int64 0/1 matrix
(N, labels) for multi-label ones. The graph uses only standard ONNX and ONNX-ML operators.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto

from .. import __version__
from ..artifact.directory import temperature_info
from ..errors import ModelError
from ..estimator.twin_choice import twins_info
from ..features.encoding import Encoding, encoding_of
from ..features.labels import plain_value
from ..nn.network import TabularNetwork
from ..nn.twins import TENSORS as TWIN_TENSORS
from .encoder import encode
from .graph import Graph
from .network import check_exportable, member_probabilities
from .twins import blend_twins

PROBABILITIES, LABEL = "probabilities", "label"
DOC = (
    "tabnn classifier. Inputs: one per column, shape [N]: float64 for numeric columns (NaN "
    "= missing), string for categorical ones ('' or unseen text = unknown). Outputs: "
    "probabilities (N, outputs) as predict_proba; label as predict."
)
# protobuf's limit on one serialised message, less room for everything but the weights
MAX_WEIGHT_BYTES = 1_900_000_000


def build_onnx(estimator, encoding: Encoding | None = None) -> onnx.ModelProto:
    """The ONNX model of a fitted estimator (checked by ``onnx.checker``); ``encoding``
    defaults to the estimator's own (``encoding_of``)."""
    encoding = encoding_of(estimator) if encoding is None else encoding
    network = estimator.inference_model_
    check_exportable(estimator.model_config_)
    check_names([*encoding.numeric, *encoding.categorical])
    twins = getattr(estimator, "twins_", None)  # None: no twin member earned a weight
    check_size(network, twins)
    g = Graph()
    encoded = encode(g, network.encoder, encoding)
    # the stack members' mean, as predict_proba
    temperature = getattr(estimator, "temperature_", None)  # None: not calibrated
    proba = g.mean(member_probabilities(g, network, encoded, temperature), axis=0)
    if twins is not None:
        proba = blend_twins(g, twins, encoded, proba, binary=estimator.task_ == "binary")
    add_outputs(g, estimator, proba)
    return g.model("tabnn", metadata(estimator, encoding), DOC)


def check_names(columns: list[str]) -> None:
    """Refuse column names the graph's own names would shadow."""
    clashes = [c for c in columns if c in (PROBABILITIES, LABEL) or c.startswith("tabnn/")]
    if clashes:
        raise ModelError(
            f"Column {clashes[0]!r} cannot be an input of the ONNX graph: its outputs are "
            f"'{PROBABILITIES}' and '{LABEL}' and its internal names start with 'tabnn/'. "
            f"Rename the column and train again."
        )


def check_size(network: TabularNetwork, twins=None) -> None:
    """Refuse weights (and a twin member's stored rows) that one ONNX file (a protobuf
    message) cannot hold."""
    size = sum(p.numel() * 8 for p in network.state_dict().values())
    size += 0 if twins is None else sum(getattr(twins, name).size * 8 for name in TWIN_TENSORS)
    if size > MAX_WEIGHT_BYTES:
        raise ModelError(
            f"The model's float64 weights take {size / 1e9:.1f} GB, more than one ONNX file "
            f"holds (2 GB); tabnn export cannot write it."
        )


def add_outputs(g: Graph, estimator, proba: str) -> None:
    """``probabilities`` and ``label`` from the members' mean probabilities (rows, outputs),
    with ``predict``'s rules: threshold_ for binary and multi-label, argmax otherwise."""
    task, threshold = estimator.task_, float(estimator.threshold_)
    width = len(estimator.schema_.classes)
    if task == "multilabel":
        g.add_output(proba, PROBABILITIES, TensorProto.DOUBLE, ["N", width])
        g.add_output(at_least(g, proba, threshold), LABEL, TensorProto.INT64, ["N", width])
        return
    classes, elem_type = class_tensor(estimator.schema_.classes)
    if task == "binary":  # one output, P(positive) -> both columns, as predict_proba
        index = at_least(g, g.op("Squeeze", proba, g.ints(1)), threshold)
        proba = g.op("Concat", g.sub(g.const(1.0), proba), proba, axis=1)
    else:
        index = g.op("ArgMax", proba, axis=1, keepdims=0)  # the first of ties, as NumPy
    label = g.op("Gather", g.const(classes, classes.dtype), index, axis=0)
    g.add_output(proba, PROBABILITIES, TensorProto.DOUBLE, ["N", width])
    g.add_output(label, LABEL, elem_type, ["N"])


def at_least(g: Graph, x: str, threshold: float) -> str:
    """int64 1 where x >= threshold, else 0."""
    return g.op("Cast", g.op("GreaterOrEqual", x, g.const(threshold)), to=TensorProto.INT64)


def class_tensor(classes: list) -> tuple[np.ndarray, int]:
    """The classes as a constant of their own type: bool, int64, float64, else string."""
    if all(isinstance(c, bool | np.bool_) for c in classes):
        return np.array(classes, dtype=bool), TensorProto.BOOL
    if all(isinstance(c, int | np.integer) and not isinstance(c, bool) for c in classes):
        return np.array(classes, dtype=np.int64), TensorProto.INT64
    if all(isinstance(c, int | float | np.number) for c in classes):
        return np.array(classes, dtype=np.float64), TensorProto.DOUBLE
    return np.array([str(c) for c in classes], dtype=object), TensorProto.STRING


def metadata(estimator, encoding: Encoding) -> dict[str, str]:
    """What a caller needs besides the graph, as the model's metadata_props (JSON text)."""
    schema = estimator.schema_
    return {
        "tabnn_version": __version__,
        "task": estimator.task_,
        "classes": json.dumps([plain_value(c) for c in schema.classes]),
        "threshold": repr(float(estimator.threshold_)),
        "temperature": json.dumps(temperature_info(estimator)),
        "twins": json.dumps(twins_info(estimator)),
        "numeric_inputs": json.dumps(encoding.numeric),
        "categorical_inputs": json.dumps(encoding.categorical),
        "date_columns": json.dumps(encoding.dates),
    }
