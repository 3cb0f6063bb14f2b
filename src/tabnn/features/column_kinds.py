"""The kind of a feature column (number, category, date, or dropped and why), decided from
a few facts about all its values: the rules ``schema.infer_schema`` applies to a table in
memory and, through ``table_profile``, to a streamed one, whose facts are gathered chunk
by chunk."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from . import dates
from .labels import plain_value

MAX_CATEGORICAL_INTEGERS = 20  # an integer column with at most this many values is a category
MIN_ROWS_FOR_ID = 20  # below this, "unique per row" is no evidence of an ID
FREE_TEXT_MEAN_LENGTH = 25


@dataclass
class ColumnFacts:
    """What deciding a feature column's kind looks at, over the whole column: read from its
    values (:meth:`of`), or gathered chunk by chunk when the table is streamed
    (``table_profile``), so that both decide alike."""

    family: str  # "bool", "integer", "float", "text", or the name of an unsupported dtype
    rows: int  # rows of the table, missing values included
    present: int = 0  # values that are not missing
    distinct: int = 0  # distinct present values (as text, for text)
    unique: bool = False  # no present value repeats
    first: object = None  # the first present value: what a constant column holds
    span: int = 0  # integers: max - min + 1
    increasing: bool = False  # integers: present values never decrease, row after row
    mean_length: float = 0.0  # text: mean length of the values
    spaced: float = 0.0  # text: share of the values holding a space
    dates: bool = False  # text: ISO 8601 dates (``dates.looks_like_dates``)
    estimated: bool = False  # ``distinct`` is an estimate (a stream's very varied column)

    @classmethod
    def of(cls, column: pd.Series) -> ColumnFacts:
        """The facts of a whole column."""
        values = column.dropna()
        facts = cls(family_of(column.dtype), len(column), len(values))
        if values.empty:
            return facts
        facts.first = values.iloc[0]
        if facts.family == "text":
            text = values.astype(str)
            facts.distinct = text.nunique()
            facts.mean_length = float(text.str.len().mean())
            facts.spaced = float(text.str.contains(" ", regex=False).mean())
            facts.dates = dates.looks_like_dates(values)
        else:
            facts.distinct = values.nunique()
        facts.unique = facts.distinct == len(values)
        if facts.family == "integer":
            facts.span = int(values.max()) - int(values.min()) + 1
            facts.increasing = values.is_monotonic_increasing
        return facts


def family_of(dtype) -> str:
    """The kind of values a dtype holds, as the kind rules see it."""
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if (  # string, object or category columns: candidates for a categorical feature
        pd.api.types.is_string_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
    ):
        return "text"
    return str(dtype)


def kind_of(facts: ColumnFacts, forced: str | None) -> tuple[str | None, str]:
    """(kind, "") for a feature, or (None, reason) for a dropped column."""
    if facts.present == 0:
        return None, "all values missing"
    if forced:
        return forced, ""
    if facts.distinct == 1:
        return None, f"constant (always {plain_value(facts.first)!r})"
    if facts.family == "bool":
        return "categorical", ""
    if facts.family == "integer":
        return _integer_kind(facts)
    if facts.family == "float":
        return "numeric", ""
    if facts.family == "text":
        return ("date", "") if facts.dates else _text_kind(facts)
    return None, f"unsupported type {facts.family}"


def _integer_kind(facts: ColumnFacts) -> tuple[str | None, str]:
    """IDs (unique integers, consecutive or in increasing row order: a training subset of
    PassengerId is no longer consecutive) are dropped; few values are categories."""
    n_rows = facts.rows
    in_order = facts.span == n_rows or facts.increasing
    if n_rows >= MIN_ROWS_FOR_ID and facts.unique and facts.present == n_rows and in_order:
        return None, "unique per row: looks like an ID"
    if facts.distinct <= MAX_CATEGORICAL_INTEGERS:
        return "categorical", ""
    return "numeric", ""


def _text_kind(facts: ColumnFacts) -> tuple[str | None, str]:
    """Text is a category unless it looks like free text, an ID or has too many values."""
    n_rows, present = facts.rows, facts.present
    mostly_unique = facts.distinct > present / 2
    spaced = facts.spaced > 0.5
    if facts.mean_length > FREE_TEXT_MEAN_LENGTH and spaced and mostly_unique:
        return None, f"free text (mean {facts.mean_length:.0f} characters)"
    if n_rows >= MIN_ROWS_FOR_ID and facts.unique and present == n_rows:
        return None, "unique per row: looks like an ID"
    if n_rows >= MIN_ROWS_FOR_ID and mostly_unique:
        rows = f"{present} rows" if present == n_rows else f"{present} non-missing rows"
        about = "about " if facts.estimated else ""
        return None, f"high cardinality: {about}{facts.distinct} distinct values in {rows}"
    return "categorical", ""
