"""Scoring a Spark DataFrame with a saved model: ``predict_spark(df, model_dir)``.

The rows never leave Spark. ``mapInPandas`` hands each executor's Python worker its rows
as pandas batches (Arrow underneath); the worker loads the model directory once, from the
path, and keeps it for every later batch and task it runs. Only that path, the threshold
and the column names travel in the task: never the network, never a pickle (the loaded
model is checked as ``tabnn.load`` checks it, on every worker).

Needs ``pip install 'tabnn[spark]'`` (pyspark) and Java 17 or later for Spark itself; the
model directory must be readable at the same path on the driver and on every executor (a
shared or mounted file system such as ``/dbfs/...``, or the local disk in local mode).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator

from ..errors import UsageError

# per Python worker process: (path, tabnn.json's mtime and size) -> (model, predictor)
_WORKER_MODELS: dict = {}


def predict_spark(
    df,
    model_dir: str | os.PathLike,
    *,
    threshold: float | None = None,
    prefix: str = "",
    precision: str = "float64",
    threads: int = 1,
):
    """The DataFrame with the predictions of a saved model appended to each row.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        Rows holding the model's feature columns (extra columns are kept and ignored;
        missing values and categories unseen in training are valid inputs).
    model_dir : str or path-like
        A model directory (``tabnn train -o``, ``tabnn.save``), readable at this path on
        the driver and on every executor.
    threshold : float, optional
        Decision threshold of a binary or multi-label model; the model's own if omitted.
    prefix : str, default ""
        Put before every appended column's name (``"tabnn_"`` gives ``tabnn_prediction``,
        ``tabnn_proba_yes``), for a DataFrame that already has such columns.
    precision : {"float64", "float32"}, default "float64"
        The network's arithmetic: float64 gives exactly ``predict_proba``; float32 is
        about twice as fast, within 1e-6 of it (checked on each worker's first rows, else
        float64), as ``tabnn predict --precision``.
    threads : int, default 1
        Threads each Python worker uses for the network. Spark runs one task per core
        (``spark.task.cpus``); raise both together.

    Returns
    -------
    pyspark.sql.DataFrame
        ``df``'s columns, then those of ``tabnn predict`` but ``row``: ``prediction`` (the
        class in its original type: string, long, double or boolean) or, for multi-label,
        ``labels`` (the predicted labels joined by ``|``), then ``proba_<class>`` (double)
        for every class or label. Lazy, as any DataFrame: the model runs when an action
        (``write``, ``count``, ``toPandas``) asks for rows.

    Raises
    ------
    InputNotFoundError, ModelError
        The model directory is missing or does not verify (checked on the driver first).
    SchemaError
        ``df`` lacks a feature column (named, with the columns it has).
    UsageError
        An appended column's name is already in ``df`` (pass a ``prefix``), a threshold
        for a multi-class model, or a bad ``precision`` or ``threads``.

    Examples
    --------
    >>> from tabnn.scale.spark import predict_spark  # doctest: +SKIP
    >>> rows = spark.read.parquet("s3a://bucket/new/")  # doctest: +SKIP
    >>> scored = predict_spark(rows, "/dbfs/models/titanic")  # doctest: +SKIP
    >>> scored.write.parquet("s3a://bucket/scored/")  # doctest: +SKIP
    """
    import pandas as pd

    from ..artifact import directory as artifact
    from ..inference.bulk import PRECISIONS
    from ..inference.predict import resolve_threshold

    if precision not in PRECISIONS:
        raise UsageError(f"precision must be float64 or float32; got {precision!r}.")
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise UsageError(f"threads must be a positive integer; got {threads!r}.")
    model_dir = os.path.abspath(model_dir)
    estimator = artifact.load(model_dir)  # verified here before any task starts
    threshold = resolve_threshold(estimator, threshold)
    estimator.schema_.require_columns(pd.DataFrame(columns=list(df.columns)))
    added = _added_fields(estimator, prefix)
    clash = [field.name for field in added if field.name in df.columns]
    if clash:
        raise UsageError(
            f"The DataFrame already has column(s) {', '.join(clash)}, which the predictions "
            f"would add; pass a prefix, such as prefix='tabnn_'."
        )
    from pyspark.sql.types import StructType

    score = functools.partial(
        score_batches,
        model_dir=model_dir,
        threshold=threshold,
        prefix=prefix,
        precision=precision,
        threads=threads,
    )
    return df.mapInPandas(score, StructType([*df.schema.fields, *added]))


def score_batches(
    batches: Iterator, *, model_dir: str, threshold: float, prefix: str, precision: str, threads
) -> Iterator:
    """What each Python worker runs on its pandas batches (see :func:`predict_spark`):
    every batch with its prediction columns appended."""
    import pandas as pd

    from ..features.frames import aligned
    from ..inference.predict import proba_frame

    estimator, predictor = _worker_model(model_dir, precision, threads)
    for batch in batches:
        if not len(batch):
            continue
        batch = batch.reset_index(drop=True)
        inputs = estimator.encode(aligned(estimator, batch))
        frame = proba_frame(estimator, predictor.proba(inputs), 0, threshold).drop(columns="row")
        if frame.columns[0] == "prediction" and estimator.classes_.dtype == object:
            frame["prediction"] = frame["prediction"].astype(str)
        frame.columns = [prefix + name for name in frame.columns]
        yield pd.concat([batch, frame], axis=1)


def _worker_model(model_dir: str, precision: str, threads: int):
    """The model of ``model_dir`` loaded once per worker process (again if its
    ``tabnn.json`` changes), with its predictor's ``threads`` worker threads (kept for the
    life of the process: it is Spark's; an earlier model's are shut down)."""
    from ..artifact import directory as artifact
    from ..artifact.directory import META_FILE
    from ..inference.bulk import BulkPredictor

    stat = os.stat(os.path.join(model_dir, META_FILE))
    key = (model_dir, stat.st_mtime_ns, stat.st_size, precision, threads)
    if key not in _WORKER_MODELS:
        estimator = artifact.load(model_dir)
        predictor = BulkPredictor(estimator, precision=precision, workers=threads)
        predictor.__enter__()
        for _, earlier in _WORKER_MODELS.values():
            earlier.__exit__(None, None, None)
        _WORKER_MODELS.clear()
        _WORKER_MODELS[key] = (estimator, predictor)
    return _WORKER_MODELS[key]


def _added_fields(estimator, prefix: str) -> list:
    """The Spark fields of the prediction columns, in ``tabnn predict``'s order."""
    import numpy as np
    from pyspark.sql.types import BooleanType, DoubleType, LongType, StringType, StructField

    names = [str(c) for c in estimator.schema_.classes]
    if estimator.task_ == "multilabel":
        first = StructField(prefix + "labels", StringType())
    else:
        kind = estimator.classes_.dtype
        if np.issubdtype(kind, np.bool_):
            spark_type = BooleanType()
        elif np.issubdtype(kind, np.integer):
            spark_type = LongType()
        elif np.issubdtype(kind, np.floating):
            spark_type = DoubleType()
        else:
            spark_type = StringType()
        first = StructField(prefix + "prediction", spark_type)
    return [first, *(StructField(f"{prefix}proba_{name}", DoubleType()) for name in names)]
