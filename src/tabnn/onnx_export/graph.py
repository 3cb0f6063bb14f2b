"""A small builder for ONNX graphs: nodes, constants and unique internal names.

Every internal value is named ``tabnn/<hint>_<n>``, so no name can collide with a graph
input (a training column) whatever the columns are called. Constants are float64 unless
told otherwise: the graph computes in float64, as ``TabNNClassifier.predict_proba`` does.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

OPSET = 18  # ReduceMean takes its axes as an input from opset 18
ML_OPSET = 3  # ai.onnx.ml: LabelEncoder with string keys
# IR 9 (onnx 1.15): read by every onnxruntime from 1.16 on, older than tabnn[onnx]'s floor
IR_VERSION = 9


class Graph:
    """Collects the nodes and constants of one graph; ``op`` returns its output's name."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self._count = 0
        self._scalars: dict[tuple, str] = {}

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"tabnn/{hint}_{self._count}"

    def const(self, value, dtype=np.float64, hint: str = "const") -> str:
        """A constant tensor (copied from ``value``); scalars are shared."""
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.item()) if array.ndim == 0 else None
        if key is not None and key in self._scalars:
            return self._scalars[key]
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        if key is not None:
            self._scalars[key] = name
        return name

    def ints(self, *values: int) -> str:
        """A 1-D int64 constant: axes, shapes, indices."""
        return self.const(list(values), np.int64, "ints")

    def op(self, op_type: str, *inputs: str, hint: str = "", domain: str = "", **attrs) -> str:
        """Add one node with a single output; -> that output's name."""
        output = self.fresh(hint or op_type.lower())
        node = helper.make_node(op_type, list(inputs), [output], domain=domain or None, **attrs)
        self.nodes.append(node)
        return output

    def rename(self, value: str, name: str) -> None:
        """Publish ``value`` under ``name`` (a graph output)."""
        self.nodes.append(helper.make_node("Identity", [value], [name]))

    def add_input(self, name: str, elem_type: int, shape: list) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def add_output(self, value: str, name: str, elem_type: int, shape: list) -> None:
        self.rename(value, name)
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, shape))

    def model(self, name: str, metadata: dict[str, str], doc: str) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, name, self.inputs, self.outputs, initializer=self.initializers
        )
        model = helper.make_model(
            graph,
            opset_imports=[
                helper.make_opsetid("", OPSET),
                helper.make_opsetid("ai.onnx.ml", ML_OPSET),
            ],
            producer_name="tabnn",
            doc_string=doc,
        )
        model.ir_version = IR_VERSION
        helper.set_model_props(model, metadata)
        onnx.checker.check_model(model, full_check=True)
        return model

    # ----------------------------------------------------------- arithmetic shorthands

    def add(self, a: str, b: str) -> str:
        return self.op("Add", a, b)

    def sub(self, a: str, b: str) -> str:
        return self.op("Sub", a, b)

    def mul(self, a: str, b: str) -> str:
        return self.op("Mul", a, b)

    def div(self, a: str, b: str) -> str:
        return self.op("Div", a, b)

    def where(self, condition: str, a: str, b: str) -> str:
        return self.op("Where", condition, a, b)

    def clip(self, x: str, low: float, high: float) -> str:
        return self.op("Clip", x, self.const(low), self.const(high))

    def mean(self, x: str, axis: int) -> str:
        """Mean over ``axis``, which is dropped."""
        return self.op("ReduceMean", x, self.ints(axis), keepdims=0)

    def unsqueeze(self, x: str, *axes: int) -> str:
        return self.op("Unsqueeze", x, self.ints(*axes))

    def expand_members(self, x: str, members: int) -> str:
        """(1, batch, width) -> (members, batch, width)."""
        return self.op("Expand", x, self.ints(members, 1, 1))
