"""One description of the encoding: what turns a checked row into the network's inputs.

An :class:`Encoding` is plain data, derived once per fitted model from its preprocessor and
schema (``Preprocessor.encoding``, or :func:`encoding_of` for an estimator): the columns a
table must hold, the network's numeric and categorical inputs in their order, the date
columns whose parts are among the numeric ones, the bound on numbers, the category codes
(the reserved unknown-or-missing code, each vocabulary's codes), the missing indicators,
the scaling and its fitted statistics. Every encoder reads it and keeps only what belongs
to its medium:

- pandas: ``Preprocessor.transform`` and ``encode_frame`` (``preprocess``), which also
  serve training;
- Arrow record batches: ``arrow_encode`` (pyarrow compute);
- a served request's few rows: ``fast_encode`` (plain Python loops);
- ONNX: ``tabnn.onnx_export.encoder`` (graph nodes).

A new preprocessing option is one field here, set in :meth:`Encoding.of` and read by each
encoder. The network's arithmetic (fill, scaling, one-hot, embeddings) runs in its input
encoder (``tabnn.nn.mlp.InputEncoder``), with each stack member's own statistics; the
statistics here are the shared preprocessor's (see :class:`Encoding`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from .schema import Schema

# Numbers beyond +-VALUE_LIMIT are taken as +-VALUE_LIMIT: float32 (the network's inputs)
# holds them, and statistics of them (means, squares for the standard deviation) stay finite.
VALUE_LIMIT = 1e30


class EncodedInputs(NamedTuple):
    """A table as the network reads it: what every encoder returns."""

    numeric: np.ndarray  # (rows, numeric) float32, NaN where missing (the encoder fills it)
    categorical: np.ndarray  # (rows, categorical) int64 codes, 0 = unknown or missing


@dataclass(frozen=True)
class Encoding:
    """The facts every encoder reads, as plain data (tuples, numbers and text).

    Attributes
    ----------
    columns : tuple of str
        The columns a table must hold (``Schema.features``): numeric, categorical, then
        date columns.
    numeric, categorical : tuple of str
        The network's inputs, in their order; ``numeric`` holds the date columns' parts.
    dates : tuple of str
        Date columns, whose numeric parts only ``Schema.check`` (pandas) makes from text.
    value_limit : float
        Numbers beyond +-value_limit are taken as +-value_limit before the float32 cast.
    vocabularies : tuple of tuple of str
        Per categorical column, its categories (canonical text) in code order: category i
        is code ``UNKNOWN + 1 + i`` (see :attr:`codes`); anything else, missing included,
        is ``UNKNOWN``.
    indicators : tuple of bool
        Per numeric column, whether it gets a 0/1 "was missing" input.
    scaling : str
        The preprocessor's scaling (``Preprocessor.scaling``).
    medians, centers, scales : tuple of float
        The shared preprocessor's fill value, centre and divisor per numeric column.
    quantiles : tuple of tuple of float
        Per numeric column, its training quantiles (``scaling="quantile"`` only).

    The statistics are the shared preprocessor's, in float64: the network holds each stack
    member's own (fitted on its fold, float32), and its input encoder and the ONNX graph
    compute with those; here they describe the model (``onnx_export.parity``'s probe rows).
    """

    UNKNOWN: ClassVar[int] = 0  # the code of an unseen or missing category

    columns: tuple[str, ...]
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    dates: tuple[str, ...] = ()
    value_limit: float = VALUE_LIMIT
    vocabularies: tuple[tuple[str, ...], ...] = ()
    indicators: tuple[bool, ...] = ()
    scaling: str = "standard"
    medians: tuple[float, ...] = ()
    centers: tuple[float, ...] = ()
    scales: tuple[float, ...] = ()
    quantiles: tuple[tuple[float, ...], ...] = ()

    @classmethod
    def of(cls, prep, schema: Schema | None = None) -> Encoding:
        """The encoding a fitted ``Preprocessor`` describes; the schema adds its date
        columns and the columns a table must hold (without one: the preprocessor's)."""
        numeric, categorical = tuple(prep.numeric), tuple(prep.categorical)
        return cls(
            columns=tuple(schema.features) if schema is not None else numeric + categorical,
            numeric=numeric,
            categorical=categorical,
            dates=tuple(schema.dates) if schema is not None else (),
            vocabularies=tuple(tuple(vocabulary) for vocabulary in prep.vocabularies),
            indicators=tuple(prep.indicators),
            scaling=prep.scaling,
            medians=tuple(prep.medians),
            centers=tuple(prep.centers),
            scales=tuple(prep.scales),
            quantiles=tuple(tuple(knots) for knots in prep.quantiles),
        )

    @functools.cached_property
    def codes(self) -> tuple[dict[str, int], ...]:
        """Per categorical column, category text -> code (made once; not to be changed)."""
        first = self.UNKNOWN + 1
        return tuple(
            {value: code for code, value in enumerate(vocabulary, start=first)}
            for vocabulary in self.vocabularies
        )

    @property
    def cardinalities(self) -> list[int]:
        """Number of distinct codes per categorical column, the unknown code included."""
        return [len(vocabulary) + 1 for vocabulary in self.vocabularies]

    @property
    def indicator_columns(self) -> list[int]:
        """The numeric columns (positions) that get a missing indicator, in order."""
        return [j for j, flag in enumerate(self.indicators) if flag]

    def readable_without_pandas(self, names: Iterable[str]) -> bool:
        """Whether a table with these columns is encoded from its values alone: it holds
        every column, and none is a date column (whose parts only ``Schema.check`` makes).
        Otherwise the Arrow and request encoders decline and pandas' path reads it."""
        given = names if isinstance(names, Mapping | set | frozenset) else set(names)
        return not self.dates and all(name in given for name in self.columns)

    def lookup(self, j: int, texts: Iterable[str | None]) -> list[int]:
        """Codes of categorical column j's canonical texts (None: missing)."""
        codes, unknown = self.codes[j], self.UNKNOWN
        return [codes.get(text, unknown) for text in texts]

    def inputs(self, numeric: np.ndarray, codes: Sequence) -> EncodedInputs:
        """The network's inputs from float64 numbers ``(rows, numeric)`` (NaN where missing)
        and one sequence of codes per categorical column: numbers bounded by
        :attr:`value_limit`, then float32; codes int64 ``(rows, categorical)``."""
        matrix = np.zeros((len(numeric), len(self.categorical)), dtype=np.int64)
        for j, column in enumerate(codes):
            matrix[:, j] = column
        values = np.clip(numeric, -self.value_limit, self.value_limit).astype(np.float32)
        return EncodedInputs(np.ascontiguousarray(values), matrix)


def encoding_of(estimator) -> Encoding:
    """A fitted estimator's encoding, made once and kept by its preprocessor."""
    return estimator.preprocessor_.encoding(estimator.schema_)
