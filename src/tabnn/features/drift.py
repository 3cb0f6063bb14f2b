"""Which inputs of a row lie outside what the model saw in training: a category it never
saw, a number beyond the training range, a missing value in a column that had none
("training": the rows the preprocessing was fitted on, the validation split not among
them, so a few of a training file's own rows may show here). The
model still predicts such rows (unseen categories read as unknown, numbers are clipped
smoothly or scaled as any other); this says where its answer rests on extrapolation, so
that drift shows before it hurts. Models saved before training ranges were kept report
nothing for the checks they lack.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .preprocess import EncodedInputs, Preprocessor

KINDS = ("unseen_category", "above_range", "below_range", "unseen_missing")


def outside_training(
    prep: Preprocessor,
    numeric: np.ndarray,
    texts: Sequence[Sequence[str | None]],
    inputs: EncodedInputs,
) -> list[list[tuple[str, str]]]:
    """Checked values (numeric float64 ``(rows, n_numeric)``, each categorical column's
    canonical texts, None when missing) and their encoded inputs -> per row, the
    (column, kind) pairs outside training, in column order."""
    found: list[list[tuple[str, str]]] = [[] for _ in range(len(numeric))]
    n_numeric = len(prep.numeric)
    seen = np.array(prep.missing_seen, dtype=bool)
    known_missing = len(seen) == n_numeric + len(prep.categorical)
    if len(prep.ranges) == n_numeric:
        bounds = np.asarray(prep.ranges, dtype=np.float64).reshape(-1, 2)
        with np.errstate(invalid="ignore"):  # NaN compares False: missing is no range issue
            flags = {"below_range": numeric < bounds[:, 0], "above_range": numeric > bounds[:, 1]}
        if known_missing:
            flags["unseen_missing"] = np.isnan(numeric) & ~seen[:n_numeric]
        mark(found, prep.numeric, flags)
    missing = np.array([[t is None for t in column] for column in texts], dtype=bool)
    missing = missing.T.reshape(len(numeric), len(prep.categorical))
    flags = {"unseen_category": (inputs.categorical == 0) & ~missing}
    if known_missing:
        flags["unseen_missing"] = missing & ~seen[n_numeric:]
    mark(found, prep.categorical, flags)
    return found


def available_checks(prep: Preprocessor) -> list[str]:
    """The kinds a model can report: all of them, or for a model saved before ranges and
    missing values were kept, unseen categories alone."""
    full = len(prep.ranges) == len(prep.numeric) and len(prep.missing_seen) == len(
        prep.numeric
    ) + len(prep.categorical)
    return list(KINDS) if full else ["unseen_category"]


def mark(found: list[list], columns: list[str], flags: dict[str, np.ndarray]) -> None:
    """Add each flagged (row, column) to its row's list, column by column."""
    for j, column in enumerate(columns):
        for kind, flagged in flags.items():
            for row in np.flatnonzero(flagged[:, j]):
                found[row].append((column, kind))


def describe(pairs: list[tuple[str, str]]) -> str:
    """One row's findings as text: ``Age:above_range;Sex:unseen_category`` ('' for none)."""
    return ";".join(f"{column}:{kind}" for column, kind in pairs)
