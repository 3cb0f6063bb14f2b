"""The frozen description of the input: features and their kinds, task and label classes.

:func:`infer_schema` decides once, at fit time, which columns are numeric, which categorical and
which are dropped (and why); :meth:`Schema.check` holds every later frame to that decision.
Everything in a :class:`Schema` is plain JSON data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..data import did_you_mean
from ..errors import DataError, ModelError, SchemaError, UsageError
from ..tasks import TASKS, Task
from . import dates
from .column_kinds import ColumnFacts, kind_of
from .labels import (
    as_float,
    canonical_text,
    check_binary_column,
    class_listing,
    infer_target,
    is_number_dtype,
    label_key,
    plain_value,
)


@dataclass
class Schema:
    """What a model was fitted on; JSON-serialisable through :meth:`to_dict`.

    Attributes
    ----------
    numeric, categorical : list of str
        Feature columns by kind, each in table order.
    dropped : dict of str to str
        Column -> reason it is not used, in table order.
    task : {"binary", "multiclass", "multilabel"}
    target : list of str
        Target column name(s).
    classes : list
        Binary/multiclass: the sorted original labels as plain Python scalars.
        Multilabel: the label names.

    Examples
    --------
    >>> schema = Schema(["Age"], ["Sex"], {}, "binary", ["Survived"], [0, 1])
    >>> Schema.from_dict(schema.to_dict()) == schema
    True
    """

    numeric: list[str]
    categorical: list[str]
    dropped: dict[str, str]
    task: Task
    target: list[str]
    classes: list
    dates: list[str] = field(default_factory=list)

    @property
    def features(self) -> list[str]:
        """The columns a table must hold: numeric, categorical, then date columns (whose
        numeric parts, in :attr:`numeric`, are made from them by :meth:`check`)."""
        parts = set(self.date_parts)
        return [*(n for n in self.numeric if n not in parts), *self.categorical, *self.dates]

    @property
    def date_parts(self) -> list[str]:
        """The numeric features made from the date columns."""
        return [name for column in self.dates for name in dates.part_names(column)]

    def to_dict(self) -> dict:
        """Plain JSON-able data; :meth:`from_dict` restores it exactly."""
        return {
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "dropped": dict(self.dropped),
            "task": self.task,
            "target": list(self.target),
            "classes": [plain_value(c) for c in self.classes],
            "dates": list(self.dates),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Schema:
        """Rebuild a Schema from :meth:`to_dict` output (ModelError when malformed)."""
        keys = ("numeric", "categorical", "dropped", "task", "target", "classes")
        missing = [k for k in keys if k not in d]
        if missing:
            raise ModelError(f"The stored schema lacks {', '.join(missing)}; re-train the model.")
        if d["task"] not in TASKS:
            raise ModelError(f"The stored schema has an unknown task {d['task']!r}.")
        return cls(
            numeric=[str(c) for c in d["numeric"]],
            categorical=[str(c) for c in d["categorical"]],
            dropped={str(k): str(v) for k, v in d["dropped"].items()},
            task=d["task"],
            target=[str(c) for c in d["target"]],
            classes=list(d["classes"]),
            dates=[str(c) for c in d.get("dates", [])],
        )

    def check(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Hold a frame to this schema: the features, in order, with their fit-time types.

        Parameters
        ----------
        frame : pandas.DataFrame
            Rows to predict on (or the training rows). Extra columns are ignored.

        Returns
        -------
        pandas.DataFrame
            Exactly :attr:`features`: numeric columns as float64; categorical ones as
            canonical Python ``str`` (``3``, ``3.0`` and ``"3"`` all read ``"3"``) with
            missing values as ``None``.

        Raises
        ------
        SchemaError
            A feature column is missing, or a numeric column holds text that is no number
            or an infinity (``inf`` as text or value).

        Examples
        --------
        >>> schema = Schema(["Age"], ["Pclass"], {}, "binary", ["Survived"], [0, 1])
        >>> schema.check(pd.DataFrame({"Pclass": [3.0, None], "Age": ["22", "?"]})).to_dict("list")
        {'Age': [22.0, nan], 'Pclass': ['3', None]}
        """
        by_name = self.require_columns(frame)
        columns = {name: frame[by_name[name]] for name in self.features}
        parts = set(self.date_parts)
        numbers = [n for n in self.numeric if n not in parts]
        # numeric dtypes convert as one block: per column, pandas' overhead dominates
        plain = [n for n in numbers if is_number_dtype(columns[n].dtype)]
        block = pd.DataFrame(columns, columns=plain, index=frame.index).astype("float64")
        out = {name: block[name] for name in plain}
        out.update({n: as_float(columns[n], n) for n in numbers if n not in out})
        refuse_infinities(out, frame.index)
        for name in self.dates:
            out.update(dates.parts(columns[name], name))
        out.update({name: canonical_text(columns[name]) for name in self.categorical})
        return pd.DataFrame(out, columns=[*self.numeric, *self.categorical], index=frame.index)

    def require_columns(self, frame: pd.DataFrame) -> dict:
        """Refuse a frame that lacks a feature column (SchemaError naming each); -> the
        frame's columns by their ``str`` names."""
        by_name = {str(c): c for c in frame.columns}
        absent = [name for name in self.features if name not in by_name]
        if absent:
            listed = "".join(f"\n- {name}" for name in absent)
            given = list(by_name)
            shown = ", ".join(given[:20]) + (
                f" and {len(given) - 20} more" if len(given) > 20 else ""
            )
            raise SchemaError(
                f"Columns seen at fit time, yet now missing:{listed}\n"
                f"The table has: {shown or 'no columns'}.\n"
                f"Pass a table with these columns (extra columns are ignored)."
            )
        return by_name

    def encode_target(self, y: pd.Series | pd.DataFrame | np.ndarray) -> np.ndarray:
        """Labels -> training targets.

        Returns
        -------
        numpy.ndarray
            Binary: float32 ``(n,)``, 1.0 for ``classes[1]``. Multiclass: int64 ``(n,)``
            indices into :attr:`classes`. Multilabel: float32 ``(n, labels)``.

        Raises
        ------
        DataError
            A label not among :attr:`classes`, a missing label or a non-0/1 multilabel cell.

        Examples
        --------
        >>> Schema(["x"], [], {}, "binary", ["y"], ["M", "R"]).encode_target(["R", "M"])
        array([1., 0.], dtype=float32)
        """
        if self.task == "multilabel":
            return self._encode_labels(y)
        indices = self._class_indices(y)
        if self.task == "binary":
            return (indices == 1).astype(np.float32)
        return indices

    def decode(self, indices: np.ndarray) -> np.ndarray:
        """Class indices -> original labels (a multilabel 0/1 matrix passes through).

        Examples
        --------
        >>> Schema(["x"], [], {}, "binary", ["y"], ["M", "R"]).decode(np.array([1, 0]))
        array(['R', 'M'], dtype='<U1')
        """
        if self.task == "multilabel":
            return np.asarray(indices)
        return np.asarray(self.classes)[np.asarray(indices, dtype=np.int64)]

    def _class_indices(self, y) -> np.ndarray:
        """Indices of y's labels in classes, comparing canonical text (1 == 1.0)."""
        keys = {label_key(c): i for i, c in enumerate(self.classes)}
        values = pd.Series(np.asarray(y, dtype=object).ravel())
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        if (codes < 0).any():
            raise DataError(
                f"Target {self._target_name} has {(codes < 0).sum()} missing labels; "
                f"drop those rows first (drop_missing_targets)."
            )
        lookup = np.array([keys.get(label_key(u), -1) for u in uniques], dtype=np.int64)
        unknown = [u for u, i in zip(uniques, lookup, strict=True) if i < 0]
        if unknown:
            raise DataError(
                f"Target {self._target_name} has label {plain_value(unknown[0])!r}, which was not "
                f"seen at fit time (classes: {class_listing(self.classes)})."
            )
        return lookup[codes]

    def _encode_labels(self, y) -> np.ndarray:
        """A 0/1 frame (columns = label names, or in label order) -> float32 matrix."""
        frame = pd.DataFrame(y)
        names = {str(c): c for c in frame.columns}
        if all(label in names for label in self.classes):
            frame = frame[[names[label] for label in self.classes]]
        elif frame.shape[1] != len(self.classes):
            raise DataError(
                f"Expected {len(self.classes)} label columns ({', '.join(self.classes)}), "
                f"got {frame.shape[1]}: {', '.join(map(str, frame.columns))}."
            )
        for name in frame.columns:
            check_binary_column(frame[name], str(name), allow_missing=False)
        return frame.to_numpy(dtype=np.float32)

    @property
    def _target_name(self) -> str:
        return ", ".join(repr(t) for t in self.target) or "y"


# --------------------------------------------------------------------------- missing targets


def refuse_infinities(numeric: dict, index: pd.Index) -> None:
    """Raise SchemaError naming the first numeric column (name -> float values) that holds
    +-inf and its rows (``index`` labels them): an infinity is no measurement (as
    scikit-learn, tabnn refuses it; NaN means missing)."""
    if not numeric:
        return
    infinite = np.isinf(np.column_stack([np.asarray(v, dtype=float) for v in numeric.values()]))
    if not infinite.any():
        return
    j = int(np.flatnonzero(infinite.any(0))[0])
    rows = index[infinite[:, j]]
    shown = ", ".join(map(str, rows[:5])) + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")
    raise SchemaError(
        f"Column {list(numeric)[j]!r} holds infinite values in data rows {shown} (0-based); "
        f"expected finite numbers (beyond float64's range, about 1.8e308, a number is "
        f"infinite). Fix the values, or leave the cells empty (or ?/NA) for missing values."
    )


def drop_missing_targets(
    X: pd.DataFrame, y: pd.Series | pd.DataFrame
) -> tuple[pd.DataFrame, pd.Series | pd.DataFrame, int]:
    """Drop the rows whose target is missing (any label of a multilabel row).

    Returns
    -------
    X, y : the kept rows, re-indexed 0..n-1
    dropped : int
        How many rows were dropped.

    Raises
    ------
    DataError
        No row has a target.

    Examples
    --------
    >>> X, y, n = drop_missing_targets(pd.DataFrame({"a": [1, 2]}), pd.Series(["x", None]))
    >>> n, len(X)
    (1, 1)
    """
    missing = y.isna()
    if isinstance(missing, pd.DataFrame):
        missing = missing.any(axis=1)
    keep = ~missing.to_numpy()
    if not keep.any():
        raise DataError(
            f"All {len(keep)} rows have a missing target; expected labels in the target "
            f"column(s). Check the target column and the missing-value markers (?, empty, NA)."
        )
    X = X.loc[keep].reset_index(drop=True)
    y = y.loc[keep].reset_index(drop=True)
    return X, y, int((~keep).sum())


# --------------------------------------------------------------------------- inference


def infer_schema(
    X: pd.DataFrame,
    y: pd.Series | pd.DataFrame,
    *,
    drop: Iterable[str] = (),
    categorical: Iterable[str] = (),
    numeric: Iterable[str] = (),
    task: Task | None = None,
) -> Schema:
    """Decide the task, the classes and the kind of every feature column.

    Parameters
    ----------
    X : pandas.DataFrame
        Feature columns (as from :func:`tabnn.data.split_target`).
    y : pandas.Series or pandas.DataFrame
        The target; a DataFrame with several 0/1 columns means multilabel.
    drop, categorical, numeric : iterable of str
        Columns to drop, or to force to a kind. ``drop`` wins; forced kinds skip the
        ID/free-text/cardinality/constant rules (an all-missing column is still dropped).
    task : {"binary", "multiclass", "multilabel"}, optional
        Override the inferred task.

    Returns
    -------
    Schema

    Raises
    ------
    UsageError
        Unknown column names, a column forced to two kinds, or a task that cannot fit.
    DataError
        A single-class or continuous target, non-0/1 label columns, or no usable feature.

    Examples
    --------
    >>> X = pd.DataFrame({"age": [22.0, 38.0, 26.0], "sex": ["m", "f", "f"]})
    >>> schema = infer_schema(X, pd.Series([0, 1, 1], name="survived"))
    >>> schema.numeric, schema.categorical, schema.task, schema.classes
    (['age'], ['sex'], 'binary', [0, 1])
    """
    forced = {str(n) for n in ([numeric] if isinstance(numeric, str) else numeric)}
    for column in X.columns:
        if str(column) in forced and X[column].notna().any():
            as_float(X[column], str(column), forced=True)  # fail now, not at predict time
    facts = {str(column): ColumnFacts.of(X[column]) for column in X.columns}
    return schema_of_facts(facts, y, drop=drop, categorical=categorical, numeric=numeric, task=task)


def schema_of_facts(
    facts: dict[str, ColumnFacts],
    y: pd.Series | pd.DataFrame,
    *,
    drop: Iterable[str] = (),
    categorical: Iterable[str] = (),
    numeric: Iterable[str] = (),
    task: Task | None = None,
) -> Schema:
    """:func:`infer_schema` from what it looks at: each feature column's facts (in table
    order) and the target's values (for a streamed table, its distinct labels)."""
    if task is not None and task not in TASKS:
        raise UsageError(f"task must be one of {', '.join(TASKS)}. Got {task!r} instead.")
    target, found_task, classes = infer_target(y, task)
    kinds, dropped = feature_kinds(
        facts, target, drop=drop, categorical=categorical, numeric=numeric
    )
    return Schema(
        kinds["numeric"], kinds["categorical"], dropped, found_task, target, classes, kinds["date"]
    )


def feature_kinds(
    facts: dict[str, ColumnFacts], targets: list[str], *, drop=(), categorical=(), numeric=()
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The columns of each kind (numeric, with date parts; categorical; date) and the
    dropped ones with their reasons; DataError when no column is usable."""
    drop, categorical, numeric = _check_overrides(list(facts), targets, drop, categorical, numeric)
    kinds: dict[str, list[str]] = {"numeric": [], "categorical": [], "date": []}
    dropped: dict[str, str] = {}
    for name, column in facts.items():
        if name in drop:
            dropped[name] = "dropped by user"
            continue
        forced = "categorical" if name in categorical else "numeric" if name in numeric else None
        kind, reason = kind_of(column, forced)
        if kind == "date" and set(facts) & set(dates.part_names(name)):
            kind, reason = None, "dates, but a column is already named like one of their parts"
        if kind is None:
            dropped[name] = reason
        else:
            kinds[kind].append(name)
        if kind == "date":  # its numeric parts, in the column's place
            kinds["numeric"] += dates.part_names(name)
    if not kinds["numeric"] and not kinds["categorical"]:
        raise DataError(_no_features_message(dropped))
    return kinds, dropped


def _no_features_message(dropped: dict[str, str]) -> str:
    """Why every column was dropped."""
    if not dropped:
        return "No feature columns: the table holds only the target. Add feature columns."
    reasons = "".join(f"\n- {name}: {why}" for name, why in dropped.items())
    return (
        f"No usable feature columns; every column was dropped:{reasons}\n"
        f"Force a column with --categorical or --numeric."
    )


def _check_overrides(columns, targets, drop, categorical, numeric) -> tuple[set, set, set]:
    """The override sets, refusing unknown names and a column forced to both kinds."""
    sets = []
    for option, names in (("drop", drop), ("categorical", categorical), ("numeric", numeric)):
        names = [names] if isinstance(names, str) else [str(n) for n in names]
        for name in names:
            if name in columns:
                continue
            if name in targets:
                raise UsageError(f"{option}: {name!r} is the target, not a feature column.")
            raise UsageError(
                f"{option}: column {name!r} not found.{did_you_mean(name, columns)} "
                f"Available: {', '.join(columns[:20])}{' ...' if len(columns) > 20 else ''}"
            )
        sets.append(set(names))
    both = sorted(sets[1] & sets[2])
    if both:
        raise UsageError(f"Columns forced both categorical and numeric: {', '.join(both)}.")
    return sets[0], sets[1], sets[2]


# --------------------------------------------------------------------------- target
