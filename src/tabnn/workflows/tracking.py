"""Experiment tracking: parameters, per-epoch curves, final scores and the model directory,
sent to TensorBoard, MLflow, both or neither.

``open_tracker`` returns one object with the same methods whatever the destinations: a
``Tracker`` that does nothing when there are none, a ``TensorBoardTracker`` or an
``MlflowTracker`` for one, a ``MultiTracker`` for both. Both libraries are optional
extras, imported here only, and a missing extra, a bad directory or a bad URI fails when
the tracker is opened, before any training starts.

Names. A per-epoch quantity has a tag, quantity first: ``loss/train``, ``loss/val``,
``accuracy/val`` for each member and ``lr`` for the stack. A ``prefix`` (``"wide/"``)
keeps the curves of several fits in one run apart.

- TensorBoard: each member is its own TensorBoard run, the directory
  ``DIR/<run_name>/<prefix><member>``, with the bare tags; so the chart ``loss/val`` draws
  every member as a line of its own, the section ``loss`` puts training and validation
  loss side by side, and the run selector shows or hides members (or, by prefix, whole
  fits). ``<prefix>lr``, the final scores ``<prefix><name>`` and the parameters (in the
  HParams tab) go to the run ``DIR/<run_name>`` itself.
- MLflow: one run, named ``run_name``; per-member keys ``<prefix><tag>/<member>``
  (``loss/val/fold_1``), and ``<prefix>lr``, ``<prefix><name>`` for the rest: the run page
  groups charts by their first segment, so all members of a quantity sit together.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import count
from numbers import Real
from pathlib import Path

from ..errors import UsageError

# record key -> tag
EPOCH_TAGS = {"train_loss": "loss/train", "val_loss": "loss/val", "val_accuracy": "accuracy/val"}

# MLflow retries a failed request for minutes, to ride out a busy server's rate limits;
# when the run is being opened, silence is far more likely a wrong URI or a server that is
# not running, which the user should hear of in seconds, not four minutes
OPENING_HTTP_SETTINGS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


def open_tracker(
    tensorboard: str | os.PathLike | None = None,
    mlflow: str | None = None,
    *,
    run_name: str,
    member_names: Sequence[str] | None = None,
    experiment: str | None = None,
) -> Tracker:
    """Open the trackers asked for; a tracker that does nothing when none is.

    Parameters
    ----------
    tensorboard : str or path, optional
        Directory for TensorBoard event files (``tensorboard --logdir DIR``); this run
        writes under ``DIR/<run_name>`` (``<run_name>-2`` and so on if that exists).
    mlflow : str, optional
        MLflow tracking URI: ``sqlite:///mlflow.db`` for a local store, ``http://host:5000``
        for a server, ``databricks``...
    run_name : str
        Name of the MLflow run and of the TensorBoard run directory.
    member_names : sequence of str, optional
        One name per member of the stack (``fold_1``...); ``member_0``... by default.
    experiment : str, optional
        MLflow experiment, created if missing; by default ``$MLFLOW_EXPERIMENT_NAME``,
        else MLflow's ``Default``.

    Raises
    ------
    UsageError
        An extra that is not installed, a directory that cannot be written, a tracking
        URI MLflow cannot use. Raised before anything is logged anywhere.

    Examples
    --------
    >>> with open_tracker(None, None, run_name="train") as tracker:
    ...     tracker.on_epoch({"epoch": 1, "train_loss": [0.7], "val_loss": [None],
    ...                       "val_accuracy": [None], "lr": 1e-3})
    """
    if not run_name:
        raise UsageError("A tracked run needs a name; got an empty run_name.")
    # both imports first, so that a missing extra opens nothing
    if tensorboard is not None:
        _import_tensorboard()
    if mlflow is not None:
        _import_mlflow()
    opened: list[Tracker] = []
    try:
        if mlflow is not None:
            opened.append(MlflowTracker(mlflow, run_name, member_names, experiment))
        if tensorboard is not None:
            opened.append(TensorBoardTracker(tensorboard, run_name, member_names))
    except BaseException:
        for tracker in opened:
            tracker.close("FAILED")
        raise
    if not opened:
        return Tracker(member_names)
    return opened[0] if len(opened) == 1 else MultiTracker(opened)


class Tracker:
    """The tracker's methods; this base records nothing (``open_tracker`` without
    destinations). Use it as a context manager: the run ends FINISHED, or FAILED (KILLED
    on Ctrl-C) when the block raises.

    ``on_epoch`` takes the records of :func:`tabnn.engine.train.fit_stack` as they come, so it
    can be its callback: ``fit_stack(..., on_epoch=tracker.on_epoch)``, or
    ``functools.partial(tracker.on_epoch, prefix="wide/")`` for one of several fits.
    """

    def __init__(self, member_names: Sequence[str] | None = None) -> None:
        self.member_names = None if member_names is None else [str(n) for n in member_names]
        self.last_epoch = 0  # the step of final scores: they line up with the curves' ends

    @property
    def destinations(self) -> list[str]:
        """Where this tracker writes, in words, for the command line to print."""
        return []

    def log_params(self, params: Mapping, prefix: str = "") -> None:
        """Record parameters; nested mappings become ``outer/inner`` names."""

    def on_epoch(self, record: Mapping, prefix: str = "") -> None:
        """Record one epoch of a stack: every member's value that is not None, and lr."""

    def log_metrics(self, metrics: Mapping, prefix: str = "", step: int | None = None) -> None:
        """Record final scores; nested mappings become ``outer/inner``; values that are
        not numbers (None, confusion matrices, class lists) are left out."""

    def log_artifacts(self, model_dir: str | os.PathLike, artifact_path: str = "model") -> None:
        """Store a directory (the saved model) with the run, where the backend can."""

    def close(self, status: str = "FINISHED") -> None:
        """End the run: write what is buffered and mark it FINISHED, FAILED or KILLED."""

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        self.close(_status_for(exc_type))

    def _members(self, record: Mapping) -> list[str]:
        """The member names for a record, checked against its number of members."""
        size = len(record.get("train_loss") or ())
        if self.member_names is None:
            return [f"member_{i}" for i in range(size)]
        if len(self.member_names) != size:
            raise ValueError(
                f"The tracker was opened for {len(self.member_names)} members "
                f"({self.member_names}); this record has {size}."
            )
        return self.member_names

    def _step(self, step: int | None) -> int:
        return self.last_epoch if step is None else step


class MultiTracker(Tracker):
    """Several trackers behaving as one."""

    def __init__(self, trackers: Sequence[Tracker]) -> None:
        super().__init__()
        self.trackers = list(trackers)

    @property
    def destinations(self) -> list[str]:
        return [d for t in self.trackers for d in t.destinations]

    def log_params(self, params: Mapping, prefix: str = "") -> None:
        for tracker in self.trackers:
            tracker.log_params(params, prefix)

    def on_epoch(self, record: Mapping, prefix: str = "") -> None:
        for tracker in self.trackers:
            tracker.on_epoch(record, prefix)

    def log_metrics(self, metrics: Mapping, prefix: str = "", step: int | None = None) -> None:
        for tracker in self.trackers:
            tracker.log_metrics(metrics, prefix, step)

    def log_artifacts(self, model_dir: str | os.PathLike, artifact_path: str = "model") -> None:
        for tracker in self.trackers:
            tracker.log_artifacts(model_dir, artifact_path)

    def close(self, status: str = "FINISHED") -> None:
        # every tracker gets closed even if an earlier one fails; the first error wins
        error = None
        for tracker in self.trackers:
            try:
                tracker.close(status)
            except Exception as e:
                error = error or e
        if error is not None:
            raise error


class TensorBoardTracker(Tracker):
    """Event files for TensorBoard: a run directory per member, one for the stack."""

    flush_secs = 10  # how stale a live TensorBoard may be (SummaryWriter's default is 120)

    def __init__(
        self, log_dir: str | os.PathLike, run_name: str, member_names: Sequence[str] | None = None
    ) -> None:
        super().__init__(member_names)
        self._writer_class, self._hparams = _import_tensorboard()
        root = Path(log_dir)
        if root.exists() and not root.is_dir():
            raise UsageError(f"--tensorboard {str(root)!r} is a file; give it a directory.")
        self.run_dir = _unused_dir(root / _path_name(run_name))
        # what this run creates, removed again if it fails: no event files of a run that
        # produced no model
        self._made = [p for p in [self.run_dir, *self.run_dir.parents] if not p.exists()]
        try:
            self.run_dir.mkdir(parents=True)
        except OSError as error:
            raise UsageError(
                f"Cannot write TensorBoard logs to {str(self.run_dir)!r}: {error.strerror}."
            ) from error
        self._writers = {}
        self._root = self._writer("")
        self._params = {}
        self._scores = {}
        self._closed = False

    @property
    def destinations(self) -> list[str]:
        return [f"TensorBoard: {self.run_dir} (tensorboard --logdir {self.run_dir.parent})"]

    def log_params(self, params: Mapping, prefix: str = "") -> None:
        # kept for the HParams summary written at close, next to the final scores
        for name, value in _flat(params, prefix):
            keep = isinstance(value, (bool, int, float, str))
            self._params[name] = value if keep else str(value)

    def on_epoch(self, record: Mapping, prefix: str = "") -> None:
        step = record["epoch"]
        self.last_epoch = max(self.last_epoch, step)
        for member, tag, value in _epoch_values(record, self._members(record)):
            if member is None:
                self._root.add_scalar(prefix + tag, value, step)
            else:
                self._writer(prefix + member).add_scalar(tag, value, step)

    def log_metrics(self, metrics: Mapping, prefix: str = "", step: int | None = None) -> None:
        for name, value in _scalars(metrics, prefix):
            self._root.add_scalar(name, value, self._step(step))
            self._scores[name] = value

    def close(self, status: str = "FINISHED") -> None:
        if self._closed:
            return
        self._closed = True
        if self._params:
            # the summaries add_hparams writes, but into the stack's run rather than a new
            # timestamped one, so the HParams tab reads the scores already logged there
            for summary in self._hparams(self._params, self._scores):
                self._root.file_writer.add_summary(summary)
        for writer in self._writers.values():
            writer.close()
        if status != "FINISHED":
            shutil.rmtree(self.run_dir, ignore_errors=True)
            for directory in self._made[1:]:  # parents this run made, if now empty
                if directory.is_dir() and not any(directory.iterdir()):
                    directory.rmdir()

    def _writer(self, name: str):
        """The SummaryWriter of a run under this one's directory ("" for the run itself)."""
        if name not in self._writers:
            log_dir = self.run_dir.joinpath(*_path_name(name).split("/")) if name else self.run_dir
            self._writers[name] = self._writer_class(str(log_dir), flush_secs=self.flush_secs)
        return self._writers[name]


class MlflowTracker(Tracker):
    """One MLflow run through an ``MlflowClient`` of its own: nothing global is set, so
    runs and tests do not leak into each other. Metrics are buffered and sent with
    ``log_batch``; a 200-epoch, 10-member fit takes a few requests, not thousands."""

    flush_size = 1000  # metrics per request: MLflow's own limit for log_batch
    flush_seconds = 10.0  # but no older than this, so a live MLflow page keeps up

    def __init__(
        self,
        uri: str,
        run_name: str,
        member_names: Sequence[str] | None = None,
        experiment: str | None = None,
    ) -> None:
        super().__init__(member_names)
        client_class, self._metric, self._param, errors = _import_mlflow()
        self.uri = uri
        try:
            with _impatient_http():
                self._client = client_class(tracking_uri=uri)
                self.experiment_id = self._experiment_id(experiment)
                run = self._client.create_run(self.experiment_id, run_name=run_name)
        except errors as error:
            hint = " (pip install 'tabnn[mlflow]')" if isinstance(error, ImportError) else ""
            message = str(error).strip()
            raise UsageError(f"Cannot log to MLflow at {uri!r}: {message}{hint}") from error
        self.run_id = run.info.run_id
        self._pending = []
        self._sent_at = time.monotonic()
        self._closed = False

    @property
    def destinations(self) -> list[str]:
        return [f"MLflow: run {self.run_id} in experiment {self.experiment_id} at {self.uri}"]

    def log_params(self, params: Mapping, prefix: str = "") -> None:
        limit = _param_value_limit()
        entries = [
            self._param(_key(name), _shorten(str(value), limit))
            for name, value in _flat(params, prefix)
        ]
        self._client.log_batch(self.run_id, params=entries)

    def on_epoch(self, record: Mapping, prefix: str = "") -> None:
        step = record["epoch"]
        self.last_epoch = max(self.last_epoch, step)
        now = _now_ms()
        for member, tag, value in _epoch_values(record, self._members(record)):
            name = tag if member is None else f"{tag}/{member}"
            self._pending.append(self._metric(_key(prefix + name), value, now, step))
        if time.monotonic() - self._sent_at >= self.flush_seconds:
            self.flush()
        elif len(self._pending) >= self.flush_size:
            self.flush(full_only=True)

    def log_metrics(self, metrics: Mapping, prefix: str = "", step: int | None = None) -> None:
        now = _now_ms()
        for name, value in _scalars(metrics, prefix):
            self._pending.append(self._metric(_key(name), value, now, self._step(step)))
        self.flush()

    def log_artifacts(self, model_dir: str | os.PathLike, artifact_path: str = "model") -> None:
        self._client.log_artifacts(self.run_id, str(model_dir), artifact_path)

    def flush(self, full_only: bool = False) -> None:
        """Send the buffered metrics, ``flush_size`` to a request; ``full_only`` keeps the
        last, part-filled request's worth back for later."""
        size = self.flush_size
        end = len(self._pending) - len(self._pending) % size if full_only else len(self._pending)
        batch, self._pending = self._pending[:end], self._pending[end:]
        for start in range(0, len(batch), size):
            self._client.log_batch(self.run_id, metrics=batch[start : start + size])
        self._sent_at = time.monotonic()

    def close(self, status: str = "FINISHED") -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.flush()
        finally:
            self._client.set_terminated(self.run_id, status=status)

    def _experiment_id(self, name: str | None) -> str:
        """The named experiment's id, created if missing, as ``mlflow.start_run`` would."""
        name = name or os.environ.get("MLFLOW_EXPERIMENT_NAME") or "Default"
        found = self._client.get_experiment_by_name(name)
        if found is None:
            return self._client.create_experiment(name)
        if found.lifecycle_stage == "deleted":
            raise UsageError(
                f"The MLflow experiment {name!r} is deleted; restore it or choose another."
            )
        return found.experiment_id


def _import_tensorboard():
    """torch's SummaryWriter and hparams summary, or the extra to install."""
    try:
        # tensorboard itself first: torch.utils.tensorboard may be imported already
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams
    except ImportError as error:
        raise UsageError(
            "--tensorboard needs the tensorboard package: pip install 'tabnn[tensorboard]'"
        ) from error
    return SummaryWriter, hparams


def _import_mlflow():
    """MLflow's client, entities and exception (mlflow-skinny is enough), or the extra to
    install."""
    try:
        import mlflow  # noqa: F401
        from mlflow.entities import Metric, Param
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError as error:
        raise UsageError(
            "--mlflow needs the mlflow package: pip install 'tabnn[mlflow]'"
        ) from error
    # what opening a store can raise for a bad URI: MLflow's own error, a store's missing
    # driver (sqlalchemy for sqlite:///), an unreadable path
    return MlflowClient, Metric, Param, (MlflowException, ImportError, OSError)


@contextmanager
def _impatient_http() -> Iterator[None]:
    """OPENING_HTTP_SETTINGS while opening a run: only those the user has not set, and
    removed again after (MLflow reads them at each request)."""
    added = {k: v for k, v in OPENING_HTTP_SETTINGS.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def _param_value_limit() -> int:
    """The longest parameter value the installed MLflow accepts (6000; 500 before 2.8)."""
    try:
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH
    except ImportError:
        return 500
    return MAX_PARAM_VAL_LENGTH


def _epoch_values(
    record: Mapping, members: Sequence[str]
) -> Iterator[tuple[str | None, str, float]]:
    """(member, tag, value) for each value an epoch record holds; member None for lr."""
    for key, tag in EPOCH_TAGS.items():
        for member, value in zip(members, record.get(key) or ()):
            if value is not None:
                yield member, tag, float(value)
    if record.get("lr") is not None:
        yield None, "lr", float(record["lr"])


def _flat(values: Mapping, prefix: str = "") -> Iterator[tuple[str, object]]:
    """(name, leaf) pairs of nested mappings, names joined by "/"."""
    for key, value in values.items():
        if isinstance(value, Mapping):
            yield from _flat(value, f"{prefix}{key}/")
        else:
            yield f"{prefix}{key}", value


def _scalars(metrics: Mapping, prefix: str = "") -> Iterator[tuple[str, float]]:
    """The numbers among nested metrics; bools, None, lists and arrays are not scores."""
    for name, value in _flat(metrics, prefix):
        if isinstance(value, Real) and not isinstance(value, bool):
            yield name, float(value)


def _key(name: str) -> str:
    """A name MLflow accepts: allowed characters (Windows' set), no empty or dot segments,
    at most 250 characters."""
    cleaned = re.sub(r"[^/\w.\- ]", "_", name)
    return "/".join(s for s in cleaned.split("/") if s.strip(". "))[:250]


def _path_name(name: str) -> str:
    """A relative path from a name: safe characters, "/" kept as the separator."""
    cleaned = re.sub(r"[^/\w.\-]", "_", name)
    return "/".join(s for s in cleaned.split("/") if s.strip(".")) or "_"


def _unused_dir(path: Path) -> Path:
    """``path``, or ``path-2``, ``path-3``... when it exists: runs never share files."""
    if not path.exists():
        return path
    return next(p for n in count(2) if not (p := path.with_name(f"{path.name}-{n}")).exists())


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _status_for(exc_type) -> str:
    if exc_type is None:
        return "FINISHED"
    return "KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED"


def _now_ms() -> int:
    return int(time.time() * 1000)
