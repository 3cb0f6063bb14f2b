"""The FastAPI app: the Open Inference Protocol's routes, MLflow's, ``/metrics``, and every
error answered as ``{"error": "..."}`` with a 4xx status (a 5xx only for a bug).

``create_app`` takes loaded models and the server's settings; ``app_from_environment`` is
the factory each of uvicorn's worker processes calls (``--workers``), reading the same
settings from an environment variable.
"""

from __future__ import annotations

import gc
import json
import logging
import os
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field

from fastapi import FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from .. import __version__
from ..errors import TabnnError
from . import mlflow_format, oip
from .limits import Batcher, Runner
from .metrics import Metrics
from .middleware import BodyTooLarge, ServerLayer
from .models import Prediction, RequestError, ServedModel, Table, load_models, table_rows

SETTINGS_VARIABLE = "TABNN_SERVE_SETTINGS"
# Requests this small are parsed and predicted on the event loop (a fraction of a
# millisecond each, measured with benchmarks/serve.py): a thread hand-off costs more
INLINE_BODY = 16 * 1024
INLINE_ROWS = 16
API_KEY_VARIABLE = "TABNN_API_KEY"
log = logging.getLogger("tabnn.serve")


@dataclass
class ServeSettings:
    """How the server behaves; docs/serving.md explains each."""

    models: list[str] = field(default_factory=list)  # DIR or NAME=DIR
    max_body: int = 32 * 1024 * 1024
    timeout: float = 30.0
    threads: int = 4
    queue: int = 64
    batch_max_rows: int = 0  # 0: no micro-batching
    batch_wait_ms: float = 2.0
    cors_origins: list[str] = field(default_factory=list)
    runtime: str = "torch"  # or "onnx": probabilities from the exported graph


def app_from_environment() -> FastAPI:
    """The app a worker process builds: settings from ``TABNN_SERVE_SETTINGS`` (JSON), the
    key from ``TABNN_API_KEY``."""
    settings = ServeSettings(**json.loads(os.environ[SETTINGS_VARIABLE]))
    one_torch_thread_per_request()
    models = load_models(settings.models, settings.runtime)
    return create_app(models, settings, os.environ.get(API_KEY_VARIABLE))


def settings_environment(settings: ServeSettings) -> str:
    return json.dumps(asdict(settings))


class Server:
    """The state routes share: the models, the runner, the batchers and the metrics."""

    def __init__(self, models: dict[str, ServedModel], settings: ServeSettings) -> None:
        self.models, self.settings = models, settings
        self.metrics = Metrics()
        self.runner = Runner(settings.threads, settings.queue, settings.timeout)
        self.batchers = {}
        if settings.batch_max_rows:
            for name, model in models.items():
                batcher = Batcher(
                    model, self.runner, settings.batch_max_rows, settings.batch_wait_ms / 1000
                )
                batcher.on_batch = self.metrics.batch_rows.labels(name).observe
                self.batchers[name] = batcher
        self.ready = False

    def model(self, name: str, version: str | None = None) -> ServedModel:
        model = self.models.get(name)
        if model is None:
            known = ", ".join(self.models)
            raise RequestError(404, f"No model named {name!r}; this server has {known}.")
        if version is not None and version != model.version:
            raise RequestError(
                404, f"Model {name!r} has no version {version!r}; it has {model.version!r}."
            )
        return model

    def predict(self, model: ServedModel, table: Table) -> Prediction:
        """Predict without micro-batching (on a pool thread, or on the event loop for a few
        rows): tabnn's errors become 400s."""
        try:
            prediction = model.predict(table)
        except TabnnError as error:
            raise RequestError(400, str(error)) from None
        self.count(model, prediction)
        self.metrics.batch_rows.labels(model.name).observe(table_rows(table))
        return prediction

    async def predict_async(self, model: ServedModel, table: Table) -> Prediction:
        """Predict through the model's batcher, or alone on the pool."""
        batcher = self.batchers.get(model.name)
        rows = table_rows(table)
        if batcher is None or rows >= batcher.max_rows:
            inline = isinstance(table, dict) and rows <= INLINE_ROWS
            return await self.runner.run(self.predict, model, table, inline=inline)
        try:
            prediction = await batcher.predict(table)
        except TabnnError as error:
            raise RequestError(400, str(error)) from None
        self.count(model, prediction)
        return prediction

    def count(self, model: ServedModel, prediction: Prediction) -> None:
        self.metrics.rows.labels(model.name).inc(len(prediction.probabilities))
        for pairs in prediction.outside:
            for column, kind in pairs:
                self.metrics.outside.labels(model.name, column, kind).inc()


def one_torch_thread_per_request() -> None:
    """For a server process: each prediction runs on one torch thread. Parallelism comes
    from concurrent requests (``--threads``); a request that also fanned out over torch's
    threads would oversubscribe the cores (measured with benchmarks/serve.py)."""
    import torch

    torch.set_num_threads(1)


def create_app(
    models: dict[str, ServedModel], settings: ServeSettings, api_key: str | None = None
) -> FastAPI:
    """The app over loaded models. ``api_key``: every route but liveness needs
    ``Authorization: Bearer <api_key>``."""
    server = Server(models, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # what start-up made (torch, pandas, the models) lives as long as the server: out
        # of the collector's sight, a full collection stays short instead of pausing every
        # request in flight for a scan of the whole heap
        gc.collect()
        gc.freeze()
        server.ready = True
        yield
        server.ready = False  # shutting down: readiness fails while requests finish
        server.runner.shutdown()

    app = FastAPI(
        title="tabnn",
        version=__version__,
        lifespan=lifespan,
        description="Open Inference Protocol v2 and MLflow's scoring format for tabnn models.",
    )
    app.state.server = server
    add_error_handlers(app)
    add_protocol_routes(app, server)
    add_mlflow_routes(app, server)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Inference-Header-Content-Length"],
        )
    # outermost: keys and body sizes are checked before anything else reads the request
    return ServerLayer(app, server.metrics, api_key, settings.max_body)


CLIENT_CLOSED = 499  # nginx's status for a client that closed the request before the answer
MAX_MESSAGE = 2000  # characters: an error quotes what arrived, never all of a huge value


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + " [...]"
    # a message quoting text that is no valid Unicode would fail to encode: escape it
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def add_error_handlers(app: FastAPI) -> None:
    """Every error as ``{"error": "..."}``: the client's (4xx) and, for a bug, a 500 that
    says only that (the traceback goes to the log, never to the client)."""

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError):
        return error(exc.status, exc.message)

    @app.exception_handler(BodyTooLarge)
    async def body_too_large(request: Request, exc: BodyTooLarge):
        limit = request.app.state.server.settings.max_body
        return error(413, f"The request body may hold at most {limit} bytes; it holds more.")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
        )
        return error(400, f"The request does not have the expected form: {problems}.")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"No route {request.method} {request.url.path}; see GET /docs."
        return error(exc.status_code, message, getattr(exc, "headers", None))

    @app.exception_handler(ClientDisconnect)
    async def hung_up(request: Request, exc: ClientDisconnect):
        # nothing can reach the client any more; 499 (as nginx logs it) counts the hang-up
        # as the client's, never as a server error
        log.info("Client hung up before sending all of %s %s", request.method, request.url.path)
        return Response(status_code=CLIENT_CLOSED)

    @app.exception_handler(RecursionError)
    async def too_deep(request: Request, exc: RecursionError):
        return error(400, "The request nests JSON arrays or objects too deeply to read.")

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception):
        log.exception("Unexpected error on %s %s", request.method, request.url.path)
        return error(500, "The server failed on this request (a bug in tabnn); see its log.")


INFER_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["inputs"],
                "properties": {
                    "id": {"type": "string"},
                    "parameters": {"type": "object"},
                    "inputs": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name", "shape", "datatype", "data"],
                            "properties": {
                                "name": {"type": "string"},
                                "shape": {"type": "array", "items": {"type": "integer"}},
                                "datatype": {"type": "string", "enum": list(oip.DATATYPES)},
                                "data": {"type": "array"},
                            },
                        },
                    },
                    "outputs": {"type": "array", "items": {"type": "object"}},
                },
            }
        }
    },
}


def add_protocol_routes(app: FastAPI, server: Server) -> None:
    """The Open Inference Protocol v2's REST routes. The OpenAPI schema lists the served
    models' names, so that clients (and fuzzers) know what exists; any other name is still
    a clear 404, not a validation error."""
    names = {"enum": sorted(server.models)}

    @app.get("/v2")
    def server_metadata():
        return {"name": "tabnn", "version": __version__, "extensions": ["binary_tensor_data"]}

    @app.api_route("/v2/health/live", methods=["GET", "HEAD"])  # load balancers probe with HEAD
    def live():
        return {"live": True}

    @app.api_route("/v2/health/ready", methods=["GET", "HEAD"])  # load balancers probe with HEAD
    def ready():
        if not server.ready:
            return JSONResponse({"ready": False}, status_code=503)
        return {"ready": True}

    @app.get("/v2/models/{name}")
    @app.get("/v2/models/{name}/versions/{version}")
    def model_metadata(name: str = Path(json_schema_extra=names), version: str | None = None):
        return oip.metadata(server.model(name, version))

    @app.get("/v2/models/{name}/ready")
    @app.get("/v2/models/{name}/versions/{version}/ready")
    def model_ready(name: str = Path(json_schema_extra=names), version: str | None = None):
        server.model(name, version)
        if not server.ready:
            return JSONResponse({"name": name, "ready": False}, status_code=503)
        return {"name": name, "ready": True}

    @app.post("/v2/models/{name}/infer", openapi_extra={"requestBody": INFER_BODY})
    @app.post(
        "/v2/models/{name}/versions/{version}/infer", openapi_extra={"requestBody": INFER_BODY}
    )
    async def infer(
        request: Request, name: str = Path(json_schema_extra=names), version: str | None = None
    ):
        model = server.model(name, version)
        body = await request.body()
        header_length = request.headers.get(oip.HEADER_LENGTH)
        inline = len(body) <= INLINE_BODY
        parsed, table = await server.runner.run(parse_infer, body, header_length, inline=inline)
        prediction = await server.predict_async(model, table)
        names = oip.requested_outputs(parsed, model)
        return JSONResponse(oip.response(model, parsed, prediction, names))

    @app.get("/metrics")
    def metrics():
        return Response(server.metrics.text(), media_type="text/plain; version=0.0.4")


def parse_infer(body: bytes, header_length: str | None):
    request, binary = oip.parse_body(body, header_length)
    return request, oip.request_table(request, binary)


def add_mlflow_routes(app: FastAPI, server: Server) -> None:
    """MLflow's scoring server routes: one model (or ``?model=NAME`` among several)."""

    @app.api_route("/ping", methods=["GET", "HEAD"])  # load balancers probe with HEAD
    def ping():
        return PlainTextResponse("\n")

    @app.api_route("/health", methods=["GET", "HEAD"])  # load balancers probe with HEAD
    def health():
        if not server.ready:
            return PlainTextResponse("not ready\n", status_code=503)
        return PlainTextResponse("\n")

    @app.get("/version")
    def version():
        return PlainTextResponse(__version__)

    @app.post(
        "/invocations",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"type": "object"}},
                    "text/csv": {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def invocations(
        request: Request, model: str | None = None, outside_training: bool = False
    ):
        served = server.model(model) if model is not None else only_model(server)
        body = await request.body()
        content_type = request.headers.get("content-type", "")
        parse, inline = mlflow_format.request_table, len(body) <= INLINE_BODY
        table, params = await server.runner.run(
            parse, body, content_type, served.features, inline=inline
        )
        prediction = await server.predict_async(served, table)
        outside = outside_training or params.get("outside_training") is True
        return {"predictions": served.records(prediction, outside)}


def only_model(server: Server) -> ServedModel:
    if len(server.models) == 1:
        return next(iter(server.models.values()))
    raise RequestError(
        400, f"This server has {len(server.models)} models; name one with ?model=NAME "
        f"({', '.join(server.models)}).",
    )  # fmt: skip
