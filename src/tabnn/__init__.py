"""tabnn: from a labelled table to a trained, honestly evaluated, shippable classifier.

The public names are loaded on first use (PEP 562), so ``import tabnn`` and ``tabnn --help``
load no torch, pandas or scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> the module that defines it
_LAZY = {
    "TabNNClassifier": "tabnn.estimator.classifier",
    "compare": "tabnn.evaluation.compare",
    "load": "tabnn.artifact.directory",
    "save": "tabnn.artifact.directory",
    "tune": "tabnn.tuning.tune",
}

__all__ = ["TabNNClassifier", "compare", "load", "save", "tune", "__version__"]

if TYPE_CHECKING:
    from .artifact.directory import load, save
    from .estimator.classifier import TabNNClassifier
    from .evaluation.compare import compare
    from .tuning.tune import tune


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'tabnn' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
