"""Request bodies read one way for both protocols, before any model sees them.

The rules every JSON body meets: UTF-8 (RFC 8259; json.loads would also take UTF-16 and
bytes that encode lone surrogates), no key given twice in an object (json.loads keeps the
last one without a word), and no text that is not valid Unicode (a lone ``\\ud800``
escape, which could never be encoded again, in an answer or a log line). A CSV body is
UTF-8 with a header of distinct names. Rows given as lists name each column once.
"""

from __future__ import annotations

import csv
import io
import json
import re

import pandas as pd

from ..artifact.rebuild import describe
from .models import RequestError

# a \uD800-\uDFFF escape: only then can json.loads make a lone surrogate, so only then
# are the parsed values searched for one
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def utf8_text(body: bytes, what: str) -> str:
    """The body as text: UTF-8, with or without a byte-order mark."""
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise RequestError(
            400, f"Expected a {what} body in UTF-8; byte {error.start} is not UTF-8 "
            f"({error.reason}).",
        ) from None  # fmt: skip


def json_object(body: bytes) -> dict:
    """A request body that must be one JSON object (both protocols' JSON requests)."""
    text = utf8_text(body, "JSON")
    try:
        request = json.loads(text, object_pairs_hook=unique_keys)
    except ValueError as error:
        raise RequestError(400, f"Expected a JSON object as the request body: {error}.") from None
    if not isinstance(request, dict):
        raise RequestError(400, f"Expected a JSON object; got {describe(request)}.")
    if SURROGATE_ESCAPE.search(text):
        refuse_lone_surrogates(request)
    return request


def unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object whose keys are distinct (``object_pairs_hook``)."""
    result = dict(pairs)
    if len(result) != len(pairs):
        names = [key for key, _ in pairs]
        twice = next(key for key in names if names.count(key) > 1)
        raise RequestError(
            400, f"The JSON object names {ascii(twice)[:80]} twice; give each key once."
        )
    return result


def refuse_lone_surrogates(value) -> None:
    """Refuse a parsed JSON value holding text that is not valid Unicode anywhere (a key, a
    value, a column name), searched without recursion so any depth json.loads read is fine."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and not valid_unicode(item):
                raise RequestError(
                    400, f"The request holds text that is not valid Unicode, {ascii(item)[:80]}:"
                    f" a UTF-16 surrogate escape (\\ud800-\\udfff) without its pair.",
                )  # fmt: skip
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def valid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def distinct_names(where: str, names: list[str]) -> list[str]:
    """Column names given once each (after reading them as text: 1 and "1" are one name)."""
    seen = set()
    for name in names:
        if name in seen:
            raise RequestError(400, f"{where} names column {name!r} twice; give each column once.")
        seen.add(name)
    return names


def columns_of_rows(where: str, rows: list[list], names: list[str], expected: str) -> dict:
    """Rows given as lists -> columns named ``names``; a row of another length is refused,
    ``expected`` saying what its values should be."""
    distinct_names(f"'{where}'", names)
    wrong = next((i for i, row in enumerate(rows) if len(row) != len(names)), None)
    if wrong is not None:
        raise RequestError(400, f"'{where}' row {wrong} has {len(rows[wrong])} values; {expected}.")
    return {name: [row[j] for row in rows] for j, name in enumerate(names)}


def csv_frame(body: bytes) -> pd.DataFrame:
    """A CSV body whose first line names the columns, each once (pandas would rename a
    repeated name to ``Age.1`` and the model would read only the first)."""
    text = utf8_text(body, "CSV")
    try:
        distinct_names("The CSV header", next(csv.reader(io.StringIO(text)), []))
        frame = pd.read_csv(io.StringIO(text))
    except (ValueError, csv.Error, pd.errors.ParserError) as error:
        raise RequestError(400, f"Expected CSV with a header line: {error}") from None
    if frame.empty:
        raise RequestError(
            400, "The CSV body holds no rows to predict (its first line is read as the header)."
        )
    return frame
