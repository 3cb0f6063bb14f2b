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
    """Strip text, mark ``?``/empty/``NA`` missing and make all-number columns numeric.

    The rules of :func:`clean_text`, applied to every cell at once (a wide table would
    otherwise pay pandas' per-column overhead thousands of times); text columns then go
    through ``clean_text`` itself, so they come out exactly as it makes them.
    """
    rows, width = frame.shape
    if width == 0 or rows == 0:
        return pd.DataFrame({name: clean_text(frame[name]) for name in frame.columns})
    text, numbers = text_and_numbers(frame)
    present = text.notna().to_numpy().reshape(width, rows)
    values = numbers.to_numpy(dtype="float64", na_value=np.nan).reshape(width, rows)
    numeric = (~np.isnan(values)).sum(axis=1) == present.sum(axis=1)
    columns = {}
    with np.errstate(invalid="ignore"):
        large = np.nanmax(np.abs(values), axis=1, initial=0.0) >= 10**EXACT_DIGITS
    for j in range(width):
        if numeric[j] and not large[j]:
            columns[j] = _tight_values(values[j])
        else:
            columns[j] = clean_text(frame.iloc[:, j])
    result = pd.DataFrame(columns, index=frame.index)
    result.columns = frame.columns
    return result


def text_and_numbers(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Every cell, column after column, as stripped text (missing markers as missing) and
    as a number (missing where it is none): one pass of ``clean_text``'s first steps."""
    text = pd.Series(flat_text(frame))
    text = text.where(~text.isin(MISSING_VALUES))
    return text, pd.to_numeric(text, errors="coerce")


def flat_text(frame: pd.DataFrame) -> np.ndarray:
    """Every cell as stripped ``str``, column after column, as one object array."""
    flat = pd.Series(frame.to_numpy(dtype=object).ravel(order="F"))
    return flat.astype("str").str.strip().to_numpy(dtype=object)


def clean_text(column: pd.Series) -> pd.Series:
    """One column of text values -> stripped text or int64/float64 numbers."""
    text = column.astype("str").str.strip()
    text = text.where(~text.isin(MISSING_VALUES))
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().sum() != text.notna().sum() or is_digit_code(text, numbers):
        return text
    return _tight_numeric(numbers.astype("float64"))


# float64 holds every integer of up to 15 digits exactly, and no longer run of digits for sure
EXACT_DIGITS = 15


def is_digit_code(text: pd.Series, numbers: pd.Series) -> bool:
    """Whether a column of integers has values longer than float64 holds (a 31-digit ID, a
    card or account number): as numbers they would collapse into a few equal floats, so
    they stay text, which the schema then judges as any text (an ID, a category).

    An integer beyond float64's range (over 308 digits) makes no column a code: it reads as
    an infinity, which training refuses as it refuses ``inf`` (naming the column and the
    row), just as predicting does; as text it would have dropped the whole column."""
    finite = np.isfinite(numbers)
    if not (numbers[finite].abs() >= 10**EXACT_DIGITS).any():
        return False
    digits = text[finite].dropna().str.lstrip("+-")
    return bool(digits.str.isdigit().all() and (digits.str.len() > EXACT_DIGITS).any())


def _tight_numeric(numbers: pd.Series) -> pd.Series:
    """int64 when every value is an integer that fits and none is missing; else float64."""
    return pd.Series(_tight_values(numbers.to_numpy()), index=numbers.index, name=numbers.name)


def _tight_values(values: np.ndarray) -> np.ndarray:
    """float64 values as int64 when every one is an integer that fits and none is missing."""
    complete = len(values) > 0 and np.isfinite(values).all()
    if complete and (values % 1 == 0).all() and (np.abs(values) < 2**63).all():
        return values.astype("int64")
    return values


# --------------------------------------------------------------------------- header detection


def error_reason(err: Exception) -> str:
    """A library's message without its final period, to embed in ours."""
    return str(err).strip().rstrip(".")
