"""The report's data and how it is stored: :class:`ReportData`, its files and their names.

:class:`ReportData` is plain data (lists, dicts, numbers and a few numpy arrays) that the
commands fill in (:mod:`tabnn.report.builders`); every part is optional and the page shows
what it is given. It is stored beside a model as ``report.json`` plus
``report_arrays.safetensors`` (targets and probabilities, which can be large), so
``tabnn report MODEL_DIR`` can draw the page again later (:mod:`tabnn.report.html`).

This module imports neither matplotlib nor scikit-learn, so storing or loading report data
stays cheap.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save

from ..errors import ModelError, UsageError
from ..io import to_jsonable, write_file_atomic
from ..tasks import TASKS

__all__ = [
    "FORMAT_VERSION",
    "REPORT_ARRAYS",
    "REPORT_HTML",
    "REPORT_JSON",
    "ReportData",
]

REPORT_JSON = "report.json"
REPORT_ARRAYS = "report_arrays.safetensors"
REPORT_HTML = "report.html"
FORMAT_VERSION = 1


@dataclass
class ReportData:
    """Everything a report can show; only ``title``, ``command``, ``task`` and
    ``class_names`` are required.

    Attributes
    ----------
    title : str
        The page heading, e.g. ``"sonar.csv -> Class"``.
    command : {"train", "evaluate", "compare", "tune"}
        The command that produced the results.
    task : {"binary", "multiclass", "multilabel"}
    class_names : list of str
        Original class labels (binary: negative then positive) or multilabel label names.
    dataset : dict
        Summary of the table, as :func:`~tabnn.report.summaries.dataset_summary` builds
        it: ``rows`` (split -> rows), ``numeric``, ``categorical``, ``dropped``
        (column -> reason), ``missing`` (column -> missing values), ``table_rows``,
        ``target``, ``source``; all optional.
    history : list of dict
        ``History.epochs``: per-epoch records with a value (or None) per member.
    best_epoch : list of int
        ``History.best_epoch``: the epoch each member's kept weights come from.
    metrics : dict
        ``{"model": {metric: value}, "most_frequent": {...}, ...}``; scalars are tabulated.
    metrics_split : str
        The rows ``metrics`` were computed on ("test", "validation", "cross-validation").
    predictions : dict
        Split name -> ``(y_true, proba)`` as numpy arrays, in the conventions of
        :func:`tabnn.evaluation.metrics.compute_metrics`. Stored in the safetensors file,
        not the JSON.
    threshold : float or None
        Binary and multilabel decision threshold.
    threshold_method : str
        How the threshold was chosen, in words ("default", "best F1 on validation rows").
    class_counts : dict
        Split name -> rows per class (positives per label); splits with predictions and
        no entry here are counted from their ``y_true``.
    fold_scores : dict
        Design or baseline name -> its score on each fold (``Comparison.values``).
    fold_metric : str
        The metric in ``fold_scores``.
    importance : dict
        Original column name -> ``(mean, std)`` permutation importance.
    importance_metric : str
        The score :func:`~tabnn.report.summaries.permutation_importance` measured.
    importance_scope : dict
        What the importance covers: ``rows``/``rows_available``, ``columns``/
        ``columns_available``, ``repeats``; ``chosen_by`` and ``budget`` when a wide table
        was measured on fewer rows or columns; ``skipped`` (why) when it was not computed.
    calibration : dict
        Temperature scaling's effect, when the model was calibrated, as
        :func:`~tabnn.report.builders.calibration_summary` builds it: ``temperature``
        (a list), ``split`` and ``rows`` (where it was measured), ``bins``, and under
        ``before`` and ``after``: ``log_loss``, ``ece`` and ``reliability`` (the
        diagram's points per bin); empty otherwise.
    twins : dict
        The twin member (``TabNNClassifier(twins=True)``), as ``tabnn.json`` stores it
        (``estimator.twin_choice.twins_info``): its ``weight`` and what chose it
        (``choice``: held-out rows, those with a twin, the log loss of the network and of
        the blend on them, stored rows); empty when the model has none.
    tuning : dict
        ``tabnn tune``'s study: its summary (``tabnn.tuning.tune.summarise``) with every
        trial under ``all_trials`` (number, state, value, params and their Optuna
        distributions as JSON); empty otherwise.
    created : str
        When the results were produced (ISO 8601), shown under the title.

    Examples
    --------
    >>> data = ReportData("demo", "evaluate", "binary", ["no", "yes"])
    >>> ReportData.from_dict(data.to_dict()) == data
    True
    """

    title: str
    command: str
    task: str
    class_names: list[str]
    dataset: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    best_epoch: list[int] = field(default_factory=list)
    metrics: dict[str, dict] = field(default_factory=dict)
    metrics_split: str = "test"
    predictions: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    threshold: float | None = None
    threshold_method: str = ""
    class_counts: dict[str, list[int]] = field(default_factory=dict)
    fold_scores: dict[str, list[float]] = field(default_factory=dict)
    fold_metric: str = ""
    importance: dict[str, tuple[float, float]] = field(default_factory=dict)
    importance_metric: str = "log_loss"
    importance_scope: dict = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)
    twins: dict = field(default_factory=dict)
    tuning: dict = field(default_factory=dict)
    created: str = ""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise UsageError(f"task must be one of {', '.join(TASKS)}; got {self.task!r}")
        self.class_names = [str(name) for name in self.class_names]
        self.predictions = {
            str(split): (_as_targets(y), _as_proba(p)) for split, (y, p) in self.predictions.items()
        }
        self.importance = {str(c): (float(m), float(s)) for c, (m, s) in self.importance.items()}
        if not isinstance(self.importance_scope, Mapping):
            raise ModelError("The stored report data has an importance_scope that is not a map.")
        self.importance_scope = dict(self.importance_scope)
        if not isinstance(self.calibration, Mapping):
            raise ModelError("The stored report data has a calibration that is not a map.")
        self.calibration = dict(self.calibration)
        if not isinstance(self.tuning, Mapping):
            raise ModelError("The stored report data has a tuning summary that is not a map.")
        self.tuning = dict(self.tuning)

    def __eq__(self, other: object) -> bool:
        # arrays compare element-wise, so the dataclass default would raise
        if not isinstance(other, ReportData):
            return NotImplemented
        pairs = zip(self.predictions.values(), other.predictions.values())
        return self.to_dict(arrays=False) == other.to_dict(arrays=False) and all(
            np.array_equal(mine, theirs) for pair in pairs for mine, theirs in zip(*pair)
        )

    def to_dict(self, *, arrays: bool = True) -> dict:
        """JSON-able data; with ``arrays=False`` the predictions are left out (only their
        split names are listed, under ``"prediction_splits"``)."""
        d = {
            f.name: to_jsonable(getattr(self, f.name), f.name, any_key=True)
            for f in fields(self)
            if f.name != "predictions"
        }
        d["format_version"] = FORMAT_VERSION
        if arrays:
            d["predictions"] = {
                s: [y.tolist(), p.tolist()] for s, (y, p) in self.predictions.items()
            }
        else:
            d["prediction_splits"] = list(self.predictions)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> ReportData:
        """Rebuild from :meth:`to_dict` output (ModelError when malformed)."""
        missing = [k for k in ("title", "command", "task", "class_names") if k not in d]
        if missing:
            raise ModelError(f"The stored report data lacks {', '.join(missing)}.")
        if d.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
            raise ModelError("The stored report data is from a newer tabnn; upgrade tabnn.")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        values["predictions"] = {
            split: (np.asarray(y), np.asarray(p))
            for split, (y, p) in d.get("predictions", {}).items()
        }
        return cls(**values)

    def files(self) -> dict[str, bytes]:
        """The stored form, file name -> bytes: ``report.json`` and, when there are
        predictions, ``report_arrays.safetensors`` (a model directory stores these beside
        the weights)."""
        files = {}
        if self.predictions:
            tensors = {}
            for split, (y, p) in self.predictions.items():
                tensors[f"{split}.y_true"], tensors[f"{split}.proba"] = y, p
            files[REPORT_ARRAYS] = save(tensors)
        text = json.dumps(self.to_dict(arrays=False), indent=1, ensure_ascii=False)
        files[REPORT_JSON] = text.encode("utf-8")
        return files

    def save(self, directory: str | os.PathLike) -> Path:
        """Write :meth:`files` into ``directory`` (each atomically); return the JSON path."""
        directory = Path(directory)
        for name, content in self.files().items():
            write_file_atomic(directory / name, content)
        return directory / REPORT_JSON

    @classmethod
    def load(cls, directory: str | os.PathLike) -> ReportData:
        """Read what :meth:`save` wrote (ModelError when it is missing or malformed)."""
        directory = Path(directory)
        try:
            d = json.loads((directory / REPORT_JSON).read_text(encoding="utf-8"))
            splits = d.pop("prediction_splits", [])
            tensors = load_file(directory / REPORT_ARRAYS) if splits else {}
            d["predictions"] = {s: (tensors[f"{s}.y_true"], tensors[f"{s}.proba"]) for s in splits}
        except (OSError, ValueError, KeyError, SafetensorError) as exc:
            raise ModelError(f"Cannot read the report data in {directory}: {exc}") from exc
        return cls.from_dict(d)


def _as_targets(y) -> np.ndarray:
    """Encoded targets as contiguous int64 (safetensors stores plain numeric arrays)."""
    return np.ascontiguousarray(np.asarray(y), dtype=np.int64)


def _as_proba(p) -> np.ndarray:
    """Probabilities as a contiguous float array, keeping float32 when that is what came."""
    arr = np.asarray(p)
    return np.ascontiguousarray(arr, dtype=arr.dtype if arr.dtype.kind == "f" else np.float64)
