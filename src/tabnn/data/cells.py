"""What every reader does to cells and tables: missing-value markers, stripped text,
tight numeric columns, unique column names, and the errors for missing files and empty
tables."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError, InputNotFoundError

MISSING_VALUES = ("?", "", "NA")


def existing_file(path: str | os.PathLike) -> Path:
    """The path as a Path, or InputNotFoundError when it is missing or a directory."""
    path = Path(path)
    if path.is_dir():
        raise InputNotFoundError(f"Expected a data file, but {str(path)!r} is a directory.")
    if not path.exists():
        raise InputNotFoundError(f"Data file {str(path)!r} not found. Check the path.")
    return path


def raise_no_rows(path: Path) -> None:
    """Raise the 'header only' error."""
    raise DataError(f"{path.name} has a header but no data rows. Expected at least one row.")


def check_unique(names: list[str], path: Path) -> None:
    """Refuse repeated column names: a column must be addressable by its name."""
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        listed = ", ".join(repeated)
        raise DataError(
            f"{path.name} has duplicate column names: {listed}. Each column needs a unique "
            f"name; rename the repeats."
        )


def clean_text_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Strip text, mark ``?``/empty/``NA`` missing and make all-number columns numeric."""
    return pd.DataFrame({name: clean_text(frame[name]) for name in frame.columns})


def clean_text(column: pd.Series) -> pd.Series:
    """One column of text values -> stripped text or int64/float64 numbers."""
    text = column.astype("str").str.strip()
    text = text.where(~text.isin(MISSING_VALUES))
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().sum() != text.notna().sum():
        return text
    return _tight_numeric(numbers.astype("float64"))


def _tight_numeric(numbers: pd.Series) -> pd.Series:
    """int64 when every value is an integer that fits and none is missing; else float64."""
    values = numbers.to_numpy()
    complete = len(values) > 0 and np.isfinite(values).all()
    if complete and (values % 1 == 0).all() and (np.abs(values) < 2**63).all():
        return numbers.astype("int64")
    return numbers


# --------------------------------------------------------------------------- header detection


def error_reason(err: Exception) -> str:
    """A library's message without its final period, to embed in ours."""
    return str(err).strip().rstrip(".")
