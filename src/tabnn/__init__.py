"""tabnn: from a labelled table to a trained, honestly evaluated, shippable classifier."""

__version__ = "0.1.0"

from .artifact import load, save  # noqa: E402
from .compare import compare  # noqa: E402
from .estimator import TabNNClassifier  # noqa: E402

__all__ = ["TabNNClassifier", "compare", "load", "save", "__version__"]
