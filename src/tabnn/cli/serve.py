"""``tabnn serve``: start the HTTP server over saved models (``tabnn.serving``)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from .guard import user_errors
from .options import at_least, choice, in_range

SERVE_EXTRA = "pip install 'tabnn[serve]'"


def serve(
    models: Annotated[
        list[str],
        typer.Argument(
            help="Model directories to serve, each as DIR (named by its directory) or NAME=DIR.",
            metavar="MODEL_DIR",
            show_default=False,
        ),
    ],
    host: Annotated[
        str, typer.Option(help="Address to listen on; 0.0.0.0 opens the server to the network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free one).", min=0, max=65535)] = 8080,
    workers: Annotated[
        int, typer.Option(help="Server processes (each loads the models).", callback=at_least(1))
    ] = 1,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="TABNN_API_KEY",
            help="Require 'Authorization: Bearer KEY' on every route but liveness "
            "(or set TABNN_API_KEY).",
            show_default=False,
        ),
    ] = None,
    max_body: Annotated[
        int, typer.Option(help="Largest request body in bytes (413 above).", callback=at_least(1))
    ] = 32 * 1024 * 1024,
    timeout: Annotated[
        float,
        typer.Option(
            help="Seconds a prediction may take (504 after).",
            callback=in_range(0, 1e6, low_open=True),
        ),
    ] = 30.0,
    threads: Annotated[
        int, typer.Option(help="Prediction threads per process.", callback=at_least(1))
    ] = 4,
    queue: Annotated[
        int,
        typer.Option(
            help="Requests that may wait beyond those running (503 above).", callback=at_least(0)
        ),
    ] = 64,
    batch_max_rows: Annotated[
        int,
        typer.Option(
            help="Merge concurrent small requests into forward passes of up to this many rows "
            "(0: off).",
            callback=at_least(0),
        ),
    ] = 0,
    batch_wait_ms: Annotated[
        float,
        typer.Option(
            help="With --batch-max-rows: how long a request waits for others to join its batch.",
            callback=in_range(0, 1000),
        ),
    ] = 2.0,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(help="Allow browser calls from this origin (repeatable); off by default."),
    ] = None,
    runtime: Annotated[
        str,
        typer.Option(
            help="What computes the probabilities: torch, or onnx (the exported graph in "
            "onnxruntime, faster on large requests; needs tabnn[onnx]).",
            callback=choice("torch", "onnx"),
        ),
    ] = "torch",
    log_level: Annotated[
        str,
        typer.Option(
            help="debug, info, warning or error.",
            callback=choice("debug", "info", "warning", "error"),
        ),
    ] = "info",
):
    """Serve saved models over HTTP: the Open Inference Protocol v2 (KServe, MLServer,
    Triton clients) at /v2/models/NAME/infer, MLflow's scoring format at /invocations
    (?model=NAME when several are served), Prometheus metrics at /metrics, the API's
    schema at /docs. Answers can name the inputs unlike training's (OIP parameter or
    MLflow ?outside_training=true). Plain HTTP: put it behind a proxy for TLS."""
    with user_errors():
        if api_key is not None and not api_key.strip():
            raise UsageError(
                "The API key (--api-key or TABNN_API_KEY) is empty: give a key, or leave both "
                "unset to serve without one."
            )
        uvicorn, settings_type = _server_libraries()
        from ..serving.models import load_models

        settings = settings_type(
            models=list(models), max_body=max_body, timeout=timeout, threads=threads,
            queue=queue, batch_max_rows=batch_max_rows, batch_wait_ms=batch_wait_ms,
            cors_origins=list(cors_origin or []), runtime=runtime,
        )  # fmt: skip
        loaded = load_models(settings.models, runtime)  # a bad directory fails here, not later
        logging.basicConfig(format="%(asctime)s %(name)s %(message)s", level=log_level.upper())
        from ..serving.protocol import PROTOCOL

        options = dict(
            host=host, port=port, log_level=log_level, access_log=False, http=PROTOCOL,
            timeout_graceful_shutdown=int(timeout) + 5,  # requests in flight may finish
        )  # fmt: skip
        _run(uvicorn, loaded, settings, api_key, workers, options)


def _run(uvicorn, loaded, settings, api_key: str | None, workers: int, options: dict) -> None:
    """One process serves the models already loaded; several each load them again, from
    the settings passed on in the environment."""
    from ..serving import app

    if workers == 1:
        app.one_torch_thread_per_request()
        uvicorn.run(app.create_app(loaded, settings, api_key), **options)
        return
    os.environ[app.SETTINGS_VARIABLE] = app.settings_environment(settings)
    if api_key:
        os.environ[app.API_KEY_VARIABLE] = api_key
    # the workers share their metrics through files (prometheus_client's multiprocess mode)
    remove_stale_metrics_dirs()
    metrics_dir = tempfile.mkdtemp(prefix=f"{METRICS_PREFIX}{os.getpid()}-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run(
            "tabnn.serving.app:app_from_environment", factory=True, workers=workers, **options
        )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


METRICS_PREFIX = "tabnn-metrics-"  # then the serving process's id: tabnn-metrics-PID-xxxx


def remove_stale_metrics_dirs() -> None:
    """Remove the metrics folders of servers that died without cleaning up (SIGKILL): those
    whose process no longer runs. Folders of running servers and other users stay."""
    for folder in Path(tempfile.gettempdir()).glob(f"{METRICS_PREFIX}*-*"):
        pid = folder.name[len(METRICS_PREFIX) :].partition("-")[0]
        if pid.isdigit() and owned_by_me(folder) and not process_runs(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def owned_by_me(path: Path) -> bool:
    try:
        return path.stat().st_uid == os.getuid()
    except OSError:
        return False


def process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: asks whether the process exists, sends nothing
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _server_libraries():
    try:
        import fastapi  # noqa: F401
        import prometheus_client  # noqa: F401
        import uvicorn
    except ImportError as error:
        raise UsageError(
            f"Serving needs FastAPI, uvicorn and prometheus-client ({error.name} is missing): "
            f"{SERVE_EXTRA}"
        ) from None
    from ..serving.app import ServeSettings

    return uvicorn, ServeSettings
