"""The networks as ONNX operators: ``TabularMLP`` (tabnn.nn.mlp) and the efficient
ensemble ``EnsembleMLP`` (tabnn.nn.ensemble), with their activations and norms.

Each returns every stack member's probabilities (members, rows, outputs), which the
caller averages as ``predict_proba`` does; a calibrated model's temperatures divide each
member's logits first (``tabnn.estimator.calibration``). Weights are the float64 inference
copy's, and
every operation keeps float64, so that the graph matches ``predict_proba`` to rounding.
"""

from __future__ import annotations

import math

from ..errors import ModelError
from ..nn.ensemble import EnsembleMLP
from ..nn.mlp import TabularMLP
from ..nn.network import TabularNetwork
from .encoder import Encoded, values
from .graph import Graph
from .special import erf

NORM_EPSILON = 1e-5  # StackedNorm's (batch and layer norm)
LEAKY_SLOPE = 0.01  # F.leaky_relu's default
# torch.nn.functional.selu's constants, in full float64 (ONNX's Selu attributes are float32)
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def gelu(g: Graph, x: str) -> str:
    """F.gelu's exact form: x (1 + erf(x / sqrt 2)) / 2."""
    half_x = g.mul(x, g.const(0.5))
    return g.mul(half_x, g.add(g.const(1.0), erf(g, g.mul(x, g.const(math.sqrt(0.5))))))


def selu(g: Graph, x: str) -> str:
    negative = g.mul(g.const(SELU_ALPHA), g.sub(g.op("Exp", x), g.const(1.0)))
    return g.mul(g.const(SELU_SCALE), g.where(g.op("Greater", x, g.const(0.0)), x, negative))


def leaky_relu(g: Graph, x: str) -> str:
    return g.where(g.op("Greater", x, g.const(0.0)), x, g.mul(x, g.const(LEAKY_SLOPE)))


ACTIVATIONS = {
    "relu": lambda g, x: g.op("Relu", x),
    "gelu": gelu,
    "silu": lambda g, x: g.mul(x, g.op("Sigmoid", x)),
    "selu": selu,
    "tanh": lambda g, x: g.op("Tanh", x),
    "leaky_relu": leaky_relu,
    "identity": lambda g, x: x,
}


def check_exportable(config) -> None:
    """Refuse a network this exporter does not know, naming what it cannot export."""
    known = {
        "network": ("mlp", "ensemble"),
        "activation": tuple(ACTIVATIONS),
        "norm": ("none", "batch", "layer"),
        "numeric_embedding": ("none", "periodic", "ple"),
        "scaling": ("standard", "robust", "quantile", "clipped"),
    }
    for field, allowed in known.items():
        value = getattr(config, field)
        if value not in allowed:
            raise ModelError(
                f"tabnn export cannot export a model with {field} {value!r} (it knows "
                f"{', '.join(allowed)})."
            )


def member_probabilities(
    g: Graph, network: TabularNetwork, encoded: Encoded, temperature=None
) -> str:
    """Per stack member, the probabilities (members, rows, outputs) that ``probabilities``
    gives for the network's logits (divided by ``temperature`` when it is not None):
    sigmoid, or softmax for multi-class. Each design has its own operators: the
    exporter reads its parts beyond the shared interface."""
    activation = ACTIVATIONS[network.config.activation]
    if isinstance(network, EnsembleMLP):
        return ensemble_probabilities(g, network, encoded, activation, temperature)
    if isinstance(network, TabularMLP):
        return mlp_probabilities(g, network, encoded, activation, temperature)
    raise ModelError(f"tabnn export cannot export a {type(network).__name__} network.")


def mlp_probabilities(
    g: Graph, network: TabularMLP, encoded: Encoded, activation, temperature=None
) -> str:
    """TabularMLP: the hidden blocks (linear, norm, activation; dropout is off), the head."""
    config = network.config
    x = encoded.inputs
    for layer, norm in zip(network.hidden, network.norms):
        x = linear(g, x, layer)
        if config.norm == "batch":
            x = batch_norm(g, x, norm)
        elif config.norm == "layer":
            x = layer_norm(g, x, norm)
        x = activation(g, x)
    return to_probabilities(g, scaled(g, linear(g, x, network.head), temperature), config.task)


def linear(g: Graph, x: str, layer, member_axis: bool = False) -> str:
    """A StackedLinear (or EnsembleHead): x @ weight + bias, per member. With
    ``member_axis``, x has an ensemble axis (members, ensemble, rows, in) that the stack's
    weights (members, in, out) broadcast over."""
    weight, bias = values(layer.weight), values(layer.bias)
    if member_axis:
        weight, bias = weight[:, None], bias[:, None]
    return g.add(g.op("MatMul", x, g.const(weight)), g.const(bias))


def batch_norm(g: Graph, x: str, norm) -> str:
    """StackedNorm in evaluation: the running statistics, then the affine map."""
    spread = (values(norm.running_var) + NORM_EPSILON) ** 0.5
    x = g.div(g.sub(x, g.const(values(norm.running_mean))), g.const(spread))
    return affine(g, x, norm)


def layer_norm(g: Graph, x: str, norm) -> str:
    """F.layer_norm over the features (biased variance), then the affine map."""
    centered = g.sub(x, g.op("ReduceMean", x, g.ints(-1), keepdims=1))
    variance = g.op("ReduceMean", g.mul(centered, centered), g.ints(-1), keepdims=1)
    x = g.div(centered, g.op("Sqrt", g.add(variance, g.const(NORM_EPSILON))))
    return affine(g, x, norm)


def affine(g: Graph, x: str, norm) -> str:
    return g.add(g.mul(x, g.const(values(norm.weight))), g.const(values(norm.bias)))


def scaled(g: Graph, logits: str, temperature) -> str:
    """Logits divided by the temperatures (one, or one per output), or as they are."""
    if temperature is None:
        return logits
    return g.div(logits, g.const(temperature))


def to_probabilities(g: Graph, logits: str, task: str) -> str:
    if task == "multiclass":
        return g.op("Softmax", logits, axis=-1)
    return g.op("Sigmoid", logits)


def ensemble_probabilities(
    g: Graph, network: EnsembleMLP, encoded: Encoded, activation, temperature=None
) -> str:
    """EnsembleMLP: periodic embeddings join the inputs, each ensemble member scales them
    by its adapter, the shared layers run on the (members, ensemble, rows, width) block,
    each head gives its logits; the prediction is the members' mean probability (which
    ``ensemble_logits`` computes in log space, to the same value). A calibrated model
    divides the logits of that mean (``ensemble_logits``', built here the same way) by its
    temperatures."""
    x = encoded.inputs
    if network.numeric_embedding is not None:
        embed = NUMERIC_EMBEDDINGS[network.config.numeric_embedding]
        embedded = embed(g, network.numeric_embedding, encoded.scaled)
        x = g.op("Concat", x, embedded, axis=2)
    x = g.mul(g.unsqueeze(x, 1), g.const(values(network.adapter)))  # (K, E, rows, width)
    for layer in network.hidden:
        x = activation(g, linear(g, x, layer, member_axis=True))
    logits = linear(g, x, network.head)  # heads (K, E, hidden, out): one per member
    task = network.config.task
    if temperature is None:
        return g.mean(to_probabilities(g, logits, task), axis=1)
    mean = mean_logits(g, logits, task, network.config.ensemble_size)
    return to_probabilities(g, scaled(g, mean, temperature), task)


def mean_logits(g: Graph, logits: str, task: str, ensemble: int) -> str:
    """``ensemble_logits``: (K, E, rows, out) -> (K, rows, out) logits of the members' mean
    probability, in log space: log mean softmax, or log mean sigmoid(z) - log mean
    sigmoid(-z)."""
    if task == "multiclass":
        log_p = g.op("LogSoftmax", logits, axis=-1)
        total = g.op("ReduceLogSumExp", log_p, g.ints(1), keepdims=0)
        return g.sub(total, g.const(math.log(ensemble)))
    positive = g.op("ReduceLogSumExp", log_sigmoid(g, logits), g.ints(1), keepdims=0)
    negative = g.op("ReduceLogSumExp", log_sigmoid(g, g.op("Neg", logits)), g.ints(1), keepdims=0)
    return g.sub(positive, negative)


def log_sigmoid(g: Graph, x: str) -> str:
    """F.logsigmoid's stable form: min(x, 0) - log(1 + exp(-|x|))."""
    tail = g.op("Log", g.add(g.const(1.0), g.op("Exp", g.op("Neg", g.op("Abs", x)))))
    return g.sub(g.op("Min", x, g.const(0.0)), tail)


def periodic_embedding(g: Graph, embedding, scaled: str) -> str:
    """PeriodicEmbedding: per numeric column, ReLU(Linear([cos 2pi c x, sin 2pi c x])),
    (members, rows, numeric) -> (members, rows, numeric x width)."""
    frequencies = values(embedding.frequencies)[:, None]  # (K, 1, F, n)
    angles = g.mul(g.mul(g.unsqueeze(scaled, -1), g.const(2 * math.pi)), g.const(frequencies))
    waves = g.op("Concat", g.op("Cos", angles), g.op("Sin", angles), axis=-1)  # (K, B, F, 2n)
    by_column = g.op("Transpose", waves, perm=[0, 2, 1, 3])  # (K, F, B, 2n)
    out = g.op("MatMul", by_column, g.const(values(embedding.weight)))  # (K, F, B, width)
    out = g.op("Transpose", out, perm=[0, 2, 1, 3])
    out = g.op("Relu", g.add(out, g.const(values(embedding.bias)[:, None])))
    # (K, B, F, width) -> (K, B, F * width); 0 keeps a dimension, so 0 rows work too
    width = int(embedding.weight.shape[1] * embedding.weight.shape[-1])
    return g.op("Reshape", out, g.ints(0, 0, width))


def piecewise_linear_embedding(g: Graph, embedding, scaled: str) -> str:
    """PiecewiseLinearEmbedding: per numeric column, a linear embedding of the value plus a
    linear map of how far it fills each bin, (members, rows, numeric) -> (members, rows,
    numeric x width)."""

    def per_bin(buffer):  # (K, F, bins) -> (K, 1, F, bins), as the rows broadcast
        return g.const(values(buffer)[:, None])

    x = g.unsqueeze(scaled, -1)  # (K, B, F, 1)
    filled = g.div(g.sub(x, per_bin(embedding.left)), per_bin(embedding.span))
    filled = g.op("Min", g.op("Max", filled, per_bin(embedding.lower)), per_bin(embedding.upper))
    filled = g.mul(filled, per_bin(embedding.used))
    by_column = g.op("Transpose", filled, perm=[0, 2, 1, 3])  # (K, F, B, bins)
    pieces = g.op("MatMul", by_column, g.const(values(embedding.weight)))  # (K, F, B, width)
    pieces = g.op("Transpose", pieces, perm=[0, 2, 1, 3])
    value = g.add(
        g.mul(x, g.const(values(embedding.value_weight)[:, None])),
        g.const(values(embedding.value_bias)[:, None]),
    )
    out = g.add(value, pieces)
    width = int(embedding.weight.shape[1] * embedding.weight.shape[-1])
    return g.op("Reshape", out, g.ints(0, 0, width))


# the graph of each numeric embedding ``check_exportable`` lets through
NUMERIC_EMBEDDINGS = {"periodic": periodic_embedding, "ple": piecewise_linear_embedding}
