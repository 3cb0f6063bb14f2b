"""The Open Inference Protocol v2 (KServe, MLServer, Triton) for tabular models: a request's
input tensors read into a table (one input a column), and the answer's output tensors.

Requests as the ecosystem sends them: shape ``[N]`` or ``[N, 1]``, ``data`` flat or nested,
``BYTES`` for strings, ``null`` for a missing value, ``content_type: "pd"`` or none, unknown
fields ignored, ``id`` echoed; and the binary tensor extension that ``tritonclient`` uses by
default (a JSON header of ``Inference-Header-Content-Length`` bytes, then each input's raw
bytes). Answers are always JSON, even when a client asks for binary outputs: the protocol
lets a server answer JSON, and clients read it.
"""

from __future__ import annotations

import json
import math
import struct

import numpy as np

from ..artifact.rebuild import describe as describe_value
from ..features.drift import available_checks, describe
from .bodies import json_object
from .models import Prediction, RequestError, ServedModel, datatype_of

NUMPY_TYPES = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}
DATATYPES = (*NUMPY_TYPES, "BYTES")
HEADER_LENGTH = "inference-header-content-length"
OUTSIDE = "outside_training"  # the optional output: per row, inputs unlike training's


def parse_body(body: bytes, header_length: str | None) -> tuple[dict, bytes]:
    """The request's JSON object and the binary data after it (empty without the extension)."""
    if header_length is not None:
        try:
            length = int(header_length)
        except ValueError:
            length = -1
        if not 0 < length <= len(body):
            raise RequestError(
                400,
                f"Inference-Header-Content-Length must be the JSON header's byte count, "
                f"between 1 and the body's {len(body)}; got {header_length!r}.",
            )
        body, binary = body[:length], body[length:]
    else:
        binary = b""
    return json_object(body), binary


def request_table(request: dict, binary: bytes) -> dict[str, list]:
    """An inference request -> its rows as columns (one an input), each a list of values."""
    check_parameters("The request's", request)
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        got = "none" if not inputs else describe_value(inputs)
        raise RequestError(
            400, f"Expected 'inputs': a list of input tensors, one per column; got {got}."
        )
    columns, offset, rows = {}, 0, None
    for position, tensor in enumerate(inputs):
        name, values, offset = read_tensor(tensor, position, binary, offset)
        if name in columns:
            raise RequestError(400, f"Input {name!r} is given twice; send each column once.")
        if rows is not None and len(values) != rows:
            raise RequestError(
                400,
                f"Every input must have the same number of rows: {name!r} has {len(values)}, "
                f"the inputs before it {rows}.",
            )
        columns[name], rows = values, len(values)
    if not rows:
        raise RequestError(400, "The inputs hold no rows (shape [0]); send at least one.")
    if offset != len(binary):
        raise RequestError(
            400, f"The binary data holds {len(binary)} bytes; the inputs describe {offset}."
        )
    return columns


def read_tensor(tensor, position: int, binary: bytes, offset: int):
    """One input tensor -> (name, its values as a flat list or array, the new offset)."""
    if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
        raise RequestError(400, f"Input {position} must be an object with a 'name' string.")
    name, datatype, shape = tensor["name"], tensor.get("datatype"), tensor.get("shape")
    if datatype not in DATATYPES:
        raise RequestError(
            400, f"Input {name!r}: 'datatype' must be one of {', '.join(DATATYPES)}; "
            f"got {datatype!r}.",
        )  # fmt: skip
    rows = rows_of_shape(name, shape)
    check_parameters(f"Input {name!r}:", tensor)
    size = (tensor.get("parameters") or {}).get("binary_data_size")
    if size is not None:
        if not is_count(size) or offset + size > len(binary):
            raise RequestError(
                400, f"Input {name!r}: binary_data_size {size!r} runs past the binary data."
            )
        values = decode_binary(name, datatype, binary[offset : offset + size], rows)
        return name, values, offset + size
    if "data" not in tensor:
        raise RequestError(400, f"Input {name!r} has no 'data'.")
    values = flatten(tensor["data"])
    if len(values) != rows:
        raise RequestError(
            400, f"Input {name!r}: shape {shape} holds {rows} values; 'data' has {len(values)}."
        )
    return name, check_values(name, datatype, values), offset


def check_parameters(whose: str, item: dict) -> None:
    """The protocol's ``parameters`` of a request or a tensor: an object when given."""
    parameters = item.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise RequestError(
            400, f"{whose} 'parameters' must be an object; got {describe_value(parameters)}."
        )


def rows_of_shape(name: str, shape) -> int:
    """``[N]`` or ``[N, 1]`` -> N: one value a row (a table's column)."""
    valid = (
        isinstance(shape, list)
        and len(shape) in (1, 2)
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
        and (len(shape) == 1 or shape[1] == 1)
    )
    if not valid:
        raise RequestError(
            400, f"Input {name!r}: 'shape' must be [N] or [N, 1], one value a row; got {shape!r}."
        )
    return shape[0]


def flatten(data) -> list:
    """``data`` flat or nested (row-major) -> a flat list; a scalar is one value."""
    if not isinstance(data, list):
        return [data]
    if all(not isinstance(v, list) for v in data):
        return data
    flat = []
    for value in data:
        flat.extend(flatten(value))
    return flat


def check_values(name: str, datatype: str, values: list) -> list:
    """JSON values against their declared datatype: strings for BYTES, numbers (or
    booleans for BOOL) otherwise; ``null`` is a missing value in any of them. A numeric
    column sent as BYTES is read by the model's own rules ('22' is 22)."""
    if datatype == "BYTES":
        wrong = next((v for v in values if v is not None and not isinstance(v, str)), None)
        expected = "strings (BYTES)"
    elif datatype == "BOOL":
        wrong = next((v for v in values if v is not None and not isinstance(v, bool)), None)
        expected = "true or false (BOOL)"
    else:
        fits, expected = number_rule(datatype)
        wrong = next((v for v in values if v is not None and not fits(v)), None)
    if wrong is not None:
        shown = json.dumps(wrong)
        shown = shown if len(shown) <= 80 else shown[:80] + "..."
        raise RequestError(400, f"Input {name!r} must hold {expected} or null; it holds {shown}.")
    return values


def number_rule(datatype: str):
    """(whether a JSON number is a value of ``datatype``, what to say it should be): an
    integer type takes whole numbers in its range, FP16 and FP32 numbers within theirs (the
    binary extension could not even carry the others); FP64 takes any number, and the model
    refuses one beyond float64's range as infinite."""
    dtype = np.dtype(NUMPY_TYPES[datatype])
    if dtype.kind in "iu":
        low, high = int(np.iinfo(dtype).min), int(np.iinfo(dtype).max)

        def whole(v) -> bool:
            integral = isinstance(v, int) or (isinstance(v, float) and v.is_integer())
            return is_number(v) and integral and low <= v <= high

        return whole, f"whole numbers from {low} to {high} ({datatype})"
    if dtype.itemsize < 8:
        limit = float(np.finfo(dtype).max)
        return (
            lambda v: is_number(v) and (math.isnan(v) or abs(v) <= limit),
            f"numbers within +-{limit:.6g} ({datatype})",
        )
    return is_number, f"numbers ({datatype})"


def is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def decode_binary(name: str, datatype: str, data: bytes, rows: int):
    """The binary tensor extension's raw bytes -> values: little-endian numbers, or for
    BYTES each element as a 4-byte little-endian length and its UTF-8 bytes."""
    if datatype != "BYTES":
        dtype = np.dtype(NUMPY_TYPES[datatype]).newbyteorder("<")
        if len(data) != rows * dtype.itemsize:
            raise RequestError(
                400,
                f"Input {name!r}: {rows} {datatype} values take {rows * dtype.itemsize} bytes; "
                f"got {len(data)}.",
            )
        return np.frombuffer(data, dtype=dtype).tolist()  # Python numbers, as JSON gives
    values, position = [], 0
    for _ in range(rows):
        if position + 4 > len(data):
            raise RequestError(400, f"Input {name!r}: the BYTES data ends before {rows} values.")
        (length,) = struct.unpack_from("<I", data, position)
        chunk = data[position + 4 : position + 4 + length]
        if len(chunk) != length:
            raise RequestError(400, f"Input {name!r}: a BYTES element runs past the data.")
        try:
            values.append(chunk.decode("utf-8"))
        except UnicodeDecodeError:
            raise RequestError(400, f"Input {name!r}: a BYTES element is not UTF-8.") from None
        position += 4 + length
    if position != len(data):
        raise RequestError(400, f"Input {name!r}: the BYTES data holds more than {rows} values.")
    return values


def requested_outputs(request: dict, model: ServedModel) -> list[str]:
    """The outputs the request names; when it names none, the label(s) and probabilities,
    and ``outside_training`` if its parameters ask for it."""
    available = output_names(model)
    outputs = request.get("outputs")
    if outputs is None:
        parameters = request.get("parameters")
        asked = isinstance(parameters, dict) and parameters.get(OUTSIDE) is True
        return available if asked else available[:2]
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
    ):
        raise RequestError(400, "'outputs' must be a list of objects with a 'name' string.")
    names = [o["name"] for o in outputs]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise RequestError(
            400, f"Unknown output(s) {', '.join(map(repr, unknown))}; this model gives "
            f"{', '.join(available)}.",
        )  # fmt: skip
    return names


def output_names(model: ServedModel) -> list[str]:
    return ["labels" if model.task == "multilabel" else "label", "probabilities", OUTSIDE]


def response(model: ServedModel, request: dict, prediction: Prediction, names: list[str]):
    """The inference answer: ``label`` (or ``labels``, a 0/1 matrix for multi-label),
    ``probabilities`` (rows, classes), with the class names in the outputs' parameters, and
    when asked ``outside_training`` (per row ``Age:above_range;Sex:unseen_category``, empty
    when every input is like training's)."""
    rows = len(prediction.probabilities)
    classes = [str(c) for c in model.classes]
    tensors = {
        "probabilities": tensor(
            "probabilities", prediction.probabilities, [rows, len(classes)], classes
        ),
    }
    labels = prediction.labels
    if model.task == "multilabel":
        tensors["labels"] = tensor("labels", labels, [rows, len(classes)], classes)
    else:
        tensors["label"] = tensor("label", labels, [rows], None)
    if OUTSIDE in names:
        described = np.array([describe(pairs) for pairs in prediction.outside], dtype=object)
        tensors[OUTSIDE] = tensor(OUTSIDE, described, [rows], None)
    answer = {"model_name": model.name, "model_version": model.version}
    if "id" in request:
        answer["id"] = request["id"]
    answer["outputs"] = [tensors[n] for n in names]
    return answer


def tensor(name: str, values: np.ndarray, shape: list[int], classes: list[str] | None) -> dict:
    datatype = datatype_of(values)
    data = values.ravel().tolist()
    if datatype == "BYTES":
        data = [str(v) for v in data]
    elif datatype == "FP64":
        data = [v if math.isfinite(v) else None for v in data]
    out = {"name": name, "datatype": datatype, "shape": shape, "data": data}
    if classes is not None:
        out["parameters"] = {"classes": classes}
    return out


def members(estimator) -> list[dict]:
    """What answers a request: the network (its stack members averaged) and, where it
    earned a weight, the twin member (rows repeating a stored training row exactly)."""
    network = {"name": "network", "stack_members": estimator.model_config_.n_members}
    twins = getattr(estimator, "twins_", None)
    if twins is None:
        return [network]
    return [network, {"name": "twins", "weight": twins.weight, "stored_rows": twins.rows}]


def metadata(model: ServedModel) -> dict:
    """The model metadata answer: one input a feature column, the outputs."""
    n = len(model.classes)
    label = (
        {"name": "labels", "datatype": "INT64", "shape": [-1, n]}
        if model.task == "multilabel"
        else {"name": "label", "datatype": model.label_datatype(), "shape": [-1]}
    )
    return {
        "name": model.name,
        "versions": [model.version],
        "platform": "tabnn",
        "inputs": [
            {"name": c, "datatype": model.input_datatype(c), "shape": [-1]} for c in model.features
        ],
        "outputs": [
            label,
            {"name": "probabilities", "datatype": "FP64", "shape": [-1, n]},
            {"name": OUTSIDE, "datatype": "BYTES", "shape": [-1]},
        ],
        "parameters": {
            "task": model.task,
            "classes": [str(c) for c in model.classes],
            "outside_training_checks": available_checks(model.estimator.preprocessor_),
            "members": members(model.estimator),
        },
    }
