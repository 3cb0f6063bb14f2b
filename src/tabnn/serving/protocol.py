"""The HTTP/1.1 connection uvicorn runs for the server: uvicorn's own, except that a request
it cannot parse (``Content-Length: -1``, a malformed header line) gets the same JSON error
body as every other refusal, instead of uvicorn's plain text."""

from __future__ import annotations

import json

from uvicorn.protocols.http.auto import AutoHTTPProtocol

# what uvicorn.run's ``http=`` takes, also in worker processes (an import string)
PROTOCOL = "tabnn.serving.protocol:JsonErrorsProtocol"
MALFORMED = (
    "The request is not valid HTTP/1.1 (a malformed request line or header, such as a "
    "negative or non-numeric Content-Length); the connection is closed."
)


class JsonErrorsProtocol(AutoHTTPProtocol):
    """uvicorn's protocol (httptools when installed, else h11) with a JSON 400."""

    def send_400_response(self, msg: str) -> None:
        body = json.dumps({"error": MALFORMED}).encode()
        head = (
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
        )
        self.transport.write(head + body)
        self.transport.close()
