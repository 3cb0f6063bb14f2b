"""MLflow's scoring format (``POST /invocations``, as ``mlflow models serve`` takes it): a
JSON object with one of ``dataframe_split``, ``dataframe_records``, ``instances`` or
``inputs``, or a CSV body with a header line; answered ``{"predictions": [...]}``."""

from __future__ import annotations

import pandas as pd

from ..artifact.rebuild import describe
from .bodies import columns_of_rows, csv_frame, json_object
from .models import RequestError

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def request_table(
    body: bytes, content_type: str, features: list[str]
) -> tuple[dict[str, list] | pd.DataFrame, dict]:
    """A request body -> its rows (columns as lists for the JSON forms, a frame for CSV)
    and its ``params`` (MLflow's inference parameters; empty for CSV). ``features``: the
    model's input columns, which rows given as plain lists hold in that order."""
    media = content_type.split(";")[0].strip().lower()
    if media == "text/csv":
        return csv_frame(body), {}
    if media not in ("application/json", ""):
        raise RequestError(
            415, f"Expected Content-Type application/json or text/csv; got {content_type!r}."
        )
    request = json_object(body)
    given = [key for key in FORMATS if key in request]
    if len(given) != 1:
        raise RequestError(
            400, f"Expected exactly one of {', '.join(FORMATS)} in the request; got "
            f"{', '.join(given) or 'none of them'}.",
        )  # fmt: skip
    key = given[0]
    if key == "dataframe_split":
        table = split_table(request[key])
    else:
        table = rows_table(key, request[key], features)
    if not table or not any(table.values()):
        raise RequestError(400, f"'{key}' holds no rows to predict.")
    params = request.get("params", {})
    if not isinstance(params, dict):
        raise RequestError(400, f"'params' must be an object; got {describe(params)}.")
    return table, params


def split_table(split) -> dict[str, list]:
    """``{"columns": [...], "data": [[row], ...]}`` (pandas' ``orient="split"``)."""
    if not isinstance(split, dict) or not isinstance(split.get("columns"), list):
        raise RequestError(400, "'dataframe_split' must be an object with 'columns' and 'data'.")
    columns, data = split["columns"], split.get("data")
    if not isinstance(data, list) or not all(isinstance(row, list) for row in data):
        raise RequestError(400, "'dataframe_split.data' must be a list of rows (lists).")
    names = [str(c) for c in columns]
    return columns_of_rows("dataframe_split.data", data, names, f"'columns' names {len(names)}")


def rows_table(key: str, rows, features: list[str]) -> dict[str, list]:
    """A list of ``{column: value}`` records, ``{column: [values]}``, or a list of rows
    as lists holding the model's input columns in order (its metadata lists them)."""
    if isinstance(rows, list) and rows and all(isinstance(row, list) for row in rows):
        expected = (
            f"rows given as lists hold the model's {len(features)} input columns in order: "
            f"{', '.join(features)}"
        )
        return columns_of_rows(key, rows, features, expected)
    if isinstance(rows, list) and all(isinstance(row, dict) for row in rows):
        names = dict.fromkeys(str(c) for row in rows for c in row)  # a key absent: missing
        return {c: [row.get(c) for row in rows] for c in names}
    if isinstance(rows, dict) and all(isinstance(v, list) for v in rows.values()):
        lengths = {len(v) for v in rows.values()}
        if len(lengths) > 1:
            raise RequestError(
                400, f"'{key}' columns must have equal lengths; got {sorted(lengths)}."
            )
        return {str(c): v for c, v in rows.items()}
    raise RequestError(
        400, f"'{key}' must be a list of records ({{column: value}}) or an object of "
        f"columns ({{column: [values]}}); got {describe(rows)}.",
    )  # fmt: skip
