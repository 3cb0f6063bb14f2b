"""``tabnn export``: a saved model as one ONNX file, kept only once onnxruntime has run it
and it agreed with the model.

Loading this module loads no torch, onnx or onnxruntime: the command imports them when it
runs, after checking that the ``onnx`` extra is installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ..errors import UsageError
from . import render
from .guard import user_errors
from .options import AsJson, ModelDir, Quiet, in_range

INSTALL_HINT = "pip install 'tabnn[onnx]'"


def require_onnx() -> None:
    """Refuse to start without onnx and onnxruntime, naming the extra that brings them."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as error:
        raise UsageError(
            f"tabnn export needs onnx and onnxruntime ({error.name} is not installed): "
            f"{INSTALL_HINT}"
        ) from None


def export(
    model_dir: ModelDir,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="The .onnx file to write (replaced if it exists).",
            show_default=False,
        ),
    ],
    tolerance: Annotated[
        float,
        typer.Option(
            help="Largest difference from the model's probabilities the exported graph may "
            "show on the check rows; above it nothing is written.",
            callback=in_range(0, 1, low_open=True),
        ),
    ] = 1e-5,
    quiet: Quiet = False,
    as_json: AsJson = False,
):
    """Export a saved model to ONNX: one graph from the raw columns (numbers as float64
    with NaN for missing, categories as strings) to the probabilities and the label in
    its original values, run with onnxruntime and checked against the model on 16
    synthetic rows (and up to 16 of the training rows a twin member stores) before the
    file is kept. Categories are looked up as spelled: send them as `tabnn info` lists
    the vocabulary (Pclass 3 as "3"; "" for a missing one)."""
    with user_errors(quiet):
        require_onnx()
        from ..artifact.directory import load
        from ..onnx_export import write_onnx
        from ..onnx_export.write import check_out

        check_out(out)  # before loading: a bad path costs nothing
        estimator = load(model_dir)
        parity = write_onnx(estimator, out, tolerance=tolerance)
    summary = {
        "out": str(out),
        "numeric_inputs": estimator.preprocessor_.numeric,
        "categorical_inputs": estimator.preprocessor_.categorical,
        "task": estimator.task_,
        "check_rows": parity.rows,
        "largest_difference": parity.largest_difference,
    }
    if as_json:
        render.print_json(summary)
    elif not quiet:
        show_export(summary)


def show_export(summary: dict) -> None:
    inputs = len(summary["numeric_inputs"]) + len(summary["categorical_inputs"])
    render.out_console.print(
        f"wrote [green]{escape(summary['out'])}[/]: {inputs} inputs "
        f"({len(summary['numeric_inputs'])} numeric, "
        f"{len(summary['categorical_inputs'])} categorical), outputs probabilities and label"
    )
    render.out_console.print(
        f"parity with the model on {summary['check_rows']} check rows: largest difference "
        f"{summary['largest_difference']:.2g}"
    )
