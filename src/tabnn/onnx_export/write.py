"""Write an estimator's ONNX graph to a file, but only once onnxruntime has run it and it
agreed with ``predict_proba``: the file goes to a temporary sibling, is checked there, and
is renamed into place; a graph that fails the check (or any error) leaves nothing behind.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DataError, UsageError
from ..io import atomic_output, write_synced
from .build import build_onnx
from .parity import Parity, probe_parity

TOLERANCE = 1e-5  # largest absolute difference from predict_proba a kept file may show


def check_out(out: str | os.PathLike) -> Path:
    """The output path, refused when it cannot take a file: its folder is missing or not a
    folder, or the path is a folder."""
    path = Path(out)
    if path.is_dir():
        raise UsageError(f"'{out}' is a directory; give a file name such as model.onnx.")
    if path.suffix.lower() != ".onnx":  # never a model's own files, a report, a device
        raise UsageError(f"The output must end in .onnx, as model.onnx; got '{path.name}'.")
    if path.exists() and not path.is_file():
        raise UsageError(f"'{out}' exists and is not a regular file; give another name.")
    parent = path.parent
    if not parent.is_dir():
        why = "does not exist" if not parent.exists() else "is not a directory"
        raise UsageError(f"Cannot write '{out}': the folder '{parent}' {why}.")
    return path


def session_of(path: str | os.PathLike):
    """An onnxruntime session on the CPU for a graph file."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings are no news to a tabnn user
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def write_onnx(estimator, out: str | os.PathLike, *, tolerance: float = TOLERANCE) -> Parity:
    """Export a fitted estimator to ``out`` (replaced if it exists) and return how its
    outputs compared with the estimator's on synthetic rows (``probe_parity``).

    Raises DataError, and writes nothing, when the largest difference of the probabilities
    exceeds ``tolerance`` or a label differs."""
    path = check_out(out)
    data = build_onnx(estimator).SerializeToString()
    with atomic_output(path) as temp:
        write_synced(temp, data)
        parity = probe_parity(session_of(temp), estimator)
        if not parity.holds(tolerance):
            labels = "identical labels" if parity.same_labels else "different labels"
            raise DataError(
                f"The exported graph does not match the model: largest difference of the "
                f"probabilities {parity.largest_difference:.3g} (tolerance {tolerance:g}), "
                f"{labels} on {parity.rows} synthetic rows. Nothing was written; please "
                f"report this as a tabnn bug."
            )
    return parity
