"""tabnn: from a labelled table to a trained, honestly evaluated, shippable classifier."""

__version__ = "0.1.0"
