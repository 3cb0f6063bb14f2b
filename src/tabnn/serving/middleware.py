"""What every request passes before and after its route, as one plain ASGI layer (cheaper
than Starlette's ``BaseHTTPMiddleware`` on a one-row request): the API key, the body-size
limit, the metrics and the access log line."""

from __future__ import annotations

import hmac
import json
import logging
import time

from .metrics import Metrics

# liveness answers without a key: an orchestrator's probe must not need the secret
OPEN_PATHS = ("/v2/health/live", "/ping")

access_log = logging.getLogger("tabnn.access")


class BodyTooLarge(Exception):
    """A request body without Content-Length that grew past the limit while read."""


class ServerLayer:
    """Checks the key and the body size, then times the route, counts it and logs it."""

    def __init__(self, app, metrics: Metrics, api_key: str | None, max_body: int) -> None:
        self.app, self.metrics, self.max_body = app, metrics, max_body
        self.key = api_key.encode() if api_key else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [500]

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            refusal = self.refusal(scope)
            if refusal is not None:
                await answer(send_status, *refusal)
            else:
                await self.app(scope, self.limited(receive), send_status)
        except BodyTooLarge:
            await answer(send_status, 413, self.too_large())
        finally:
            self.record(scope, status[0], time.perf_counter() - start)

    def refusal(self, scope) -> tuple[int, str, dict] | None:
        """(status, message, headers) when the request is refused before its route runs."""
        headers = dict(scope["headers"])
        if self.key is not None and scope["path"] not in OPEN_PATHS:
            problem = self.key_problem(headers.get(b"authorization"))
            if problem is not None:
                message = f"Expected 'Authorization: Bearer <key>'; got {problem}."
                return 401, message, {"www-authenticate": "Bearer"}
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            return 413, self.too_large(int(length)), {}
        return None

    def key_problem(self, given: bytes | None) -> str | None:
        """What is wrong with an Authorization header, or None when it holds the key. The
        scheme is case-insensitive (RFC 7235); the key is compared in constant time."""
        if given is None:
            return "no Authorization header"
        scheme, _, token = given.strip().partition(b" ")
        right = hmac.compare_digest(token.strip(), self.key)
        if scheme.lower() != b"bearer":
            return f"the {scheme.decode('latin-1')[:20]!r} scheme"
        return None if right else "a wrong key"

    def too_large(self, size: int | None = None) -> str:
        given = f"{size} bytes" if size is not None else "more"
        return f"The request body may hold at most {self.max_body} bytes; it holds {given}."

    def limited(self, receive):
        """``receive`` that stops a body once it passes the limit (chunked uploads)."""
        seen = [0]

        async def receive_limited():
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > self.max_body:
                    raise BodyTooLarge()
            return message

        return receive_limited

    def record(self, scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        self.metrics.observe_request(scope["method"], template, status, seconds)
        client = scope.get("client") or ("-", 0)
        access_log.info(
            '%s "%s %s" %d %.1fms', client[0], scope["method"], scope["path"], status,
            seconds * 1000,
        )  # fmt: skip


async def answer(send, status: int, message: str, headers: dict | None = None) -> None:
    """A JSON ``{"error": message}`` answer, straight from the ASGI layer."""
    body = json.dumps({"error": message}).encode()
    pairs = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    pairs += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": pairs})
    await send({"type": "http.response.body", "body": body})
