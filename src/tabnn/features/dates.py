"""Date columns: recognising text that holds ISO 8601 dates, and the numeric parts a date
becomes.

A date is no category (almost every value is new) and no ID: as fastai's ``add_datepart``
does, it is expanded into numbers the network can use: the year, month, day, day of the
week, day of the year, and the days since 1970 (a time trend). A value that does not parse
is missing in every part (median fill and a missing indicator, as any number).
"""

from __future__ import annotations

import pandas as pd

PARTS = ("year", "month", "day", "dayofweek", "dayofyear", "elapsed_days")
MIN_PARSED = 0.95  # share of a column's values that must parse for it to be a date column
SAMPLE = 500  # values looked at to decide
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


def part_names(column: str) -> list[str]:
    """The numeric features a date column becomes: ``<column>_year`` and so on."""
    return [f"{column}_{part}" for part in PARTS]


def parse(column: pd.Series) -> pd.Series:
    """Text to UTC timestamps (NaT where a value is missing or no ISO 8601 date). Only ISO
    8601 (``2024-03-01``, ``2024-03-01 10:00``, ``2024-03-01T10:00:00Z``): it is the one
    form whose day and month cannot be mistaken for each other; ``01/02/2020`` is the 2nd
    of January in one country and the 1st of February in another, so such a column stays
    text rather than being read wrong without a word."""
    text = column.astype("string").str.strip()
    return pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)


def looks_like_dates(values: pd.Series) -> bool:
    """Whether non-missing text values are ISO 8601 dates: they start with a year, month
    and day (``YYYY-MM-DD``, so plain numbers and words never qualify) and at least 95 % of
    a sample parse, to years between 1000 and 2999."""
    sample = values.astype(str).str.strip().head(SAMPLE)
    shaped = sample.str.match(r"\d{4}-\d{2}-\d{2}")
    if sample.empty or shaped.mean() < MIN_PARSED:
        return False
    parsed = parse(sample)
    plausible = parsed.notna() & parsed.dt.year.between(1000, 2999)
    return bool(plausible.mean() >= MIN_PARSED)


def parts(column: pd.Series, name: str) -> dict[str, pd.Series]:
    """The numeric parts of a date column (float64, NaN where it holds no date)."""
    when = parse(column)
    values = {
        "year": when.dt.year,
        "month": when.dt.month,
        "day": when.dt.day,
        "dayofweek": when.dt.day_of_week,
        "dayofyear": when.dt.day_of_year,
        "elapsed_days": (when - _EPOCH) / pd.Timedelta(days=1),
    }
    return {
        f"{name}_{part}": values[part].astype("float64").set_axis(column.index) for part in PARTS
    }
