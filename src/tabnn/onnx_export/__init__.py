"""Export a fitted model to ONNX: one self-contained graph from raw columns to the
probabilities and the label, with its parity against ``predict_proba`` checked.

Needs the ``onnx`` extra (``pip install 'tabnn[onnx]'``: onnx and onnxruntime). The jobs
are split by module: :mod:`.graph` (a small graph builder), :mod:`.special` (erf, the
normal quantile and searchsorted, which ONNX Runtime lacks in float64), :mod:`.encoder`
(inputs, category lookups, fill, scaling, one-hot and embeddings), :mod:`.network` (the
MLP and the efficient ensemble), :mod:`.build` (the whole model and its outputs),
:mod:`.parity` (comparisons with the estimator) and :mod:`.write` (the checked file).

Examples
--------
>>> from tabnn.onnx_export import write_onnx, onnx_inputs  # doctest: +SKIP
>>> write_onnx(estimator, "model.onnx")  # doctest: +SKIP
>>> session.run(None, onnx_inputs(estimator, frame))  # doctest: +SKIP
"""

from .build import build_onnx
from .parity import Parity, onnx_inputs, probe_parity, table_parity
from .write import TOLERANCE, session_of, write_onnx

__all__ = [
    "TOLERANCE",
    "Parity",
    "build_onnx",
    "onnx_inputs",
    "probe_parity",
    "session_of",
    "table_parity",
    "write_onnx",
]
