"""Request body limits for an ASGI app: a size and a time to arrive, whatever the framing.

Used by the controller's server (:mod:`controller.server.app`) and by the model server
process (:mod:`controller.backends.serving.modelserver`), each with its own error shape.
A request carrying both ``Content-Length`` and ``Transfer-Encoding`` is refused (400),
a declared ``Content-Length`` over the limit is refused before a byte is read (413),
a chunked body is counted as it arrives (413 once past the limit), and a body must be
complete within the time limit (408). (Starlette's own ``max_body_size`` is not used:
it answers an oversize ``Content-Length`` with plain text, replacing the app's shape.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Respond = Callable[[int, str, dict[str, str]], ASGIApp]  # (status, message, headers) -> a response


def error_headers(exc: HTTPException) -> dict[str, str]:
    """The headers of the app's answer to ``exc``: after a 408 or 413 the rest of the body
    is not wanted, so the connection is closed rather than drained to keep it alive."""
    headers = dict(exc.headers or {})
    if exc.status_code in (408, 413):
        headers["Connection"] = "close"
    return headers


class BodyLimits:
    """Request bodies: at most ``max_bytes``, complete within ``seconds``.

    A declared ``Content-Length`` over the limit is answered at once, before the app
    runs and before a byte of body is read. Otherwise every ``receive`` is counted
    (chunked bodies declare no length) and timed against one deadline; going over
    either raises an :class:`HTTPException` in the route reading the body, so at most
    ``max_bytes`` (plus one chunk) are ever held. Once the body is complete,
    ``receive`` (a route waiting for a disconnect, say) is passed through untouched.

    ``respond(status, message, headers)`` is the app's own error response, for what is
    answered here before the app runs; the app's handler for :class:`HTTPException`
    answers the rest, with :func:`error_headers`."""

    def __init__(self, app: ASGIApp, max_bytes: int, seconds: float, respond: Respond) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.seconds = seconds
        self.respond = respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = f"request body over {self.max_bytes} bytes"
        headers = Headers(scope=scope)
        if "content-length" in headers and "transfer-encoding" in headers:
            # Two framings: a proxy and this server may split the stream differently (request
            # smuggling). RFC 9112 section 6.3: refuse, and close the connection.
            message = "a request cannot carry both Content-Length and Transfer-Encoding"
            await self.respond(400, message, {"Connection": "close"})(scope, receive, send)
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self.respond(413, too_large, {"Connection": "close"})(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.seconds
        received = 0
        body_done = False

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(408, f"request body not received within {self.seconds:g} s") from None
            if message["type"] != "http.request":
                body_done = True
                return message
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, too_large)
            body_done = not message.get("more_body", False)
            return message

        await self.app(scope, limited_receive, send)
