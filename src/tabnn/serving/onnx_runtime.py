"""``tabnn serve --runtime onnx``: a model's probabilities from its exported ONNX graph run by
onnxruntime, which computes the float64 network several times faster than torch on large
requests (benchmarks/serve.py). The graph is built in memory when the server starts and must
agree with the model on ``probe_parity``'s rows before the server takes requests; checks,
errors, labels and ``drift`` stay the torch path's, only the arithmetic moves."""

from __future__ import annotations

import numpy as np

from ..errors import ModelError, UsageError
from ..features.encoding import encoding_of
from ..features.fast_encode import CheckedRows

TOLERANCE = 1e-9  # float64 graphs agree with predict_proba to ~1e-15 (tests/test_export.py)


class OnnxProbabilities:
    """The estimator's ``predict_proba`` through onnxruntime, one thread a call."""

    def __init__(self, estimator) -> None:
        try:
            import onnxruntime

            from ..onnx_export import build_onnx, probe_parity
        except ImportError as error:
            raise UsageError(
                f"--runtime onnx needs onnx and onnxruntime ({error.name} is missing): "
                f"pip install 'tabnn[onnx]'"
            ) from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1  # see --threads
        options.log_severity_level = 3
        graph = build_onnx(estimator).SerializeToString()
        self.session = onnxruntime.InferenceSession(
            graph, options, providers=["CPUExecutionProvider"]
        )
        parity = probe_parity(self.session, estimator)
        if not parity.holds(TOLERANCE):
            raise ModelError(
                f"The ONNX graph of this model differs from it by {parity.largest_difference:.3g}"
                f" on check rows; serve it with --runtime torch, and please report this."
            )
        self.encoding = encoding_of(estimator)

    def __call__(self, rows: CheckedRows) -> np.ndarray:
        """Checked rows -> probabilities, as ``predict_proba`` gives them."""
        encoding = self.encoding
        feed = {name: rows.numeric[:, j].copy() for j, name in enumerate(encoding.numeric)}
        for name, texts in zip(encoding.categorical, rows.texts):
            feed[name] = np.array(["" if t is None else t for t in texts], dtype=object)
        return self.session.run(["probabilities"], feed)[0]
