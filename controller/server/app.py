"""The one ASGI app: route groups from each API module, one error shape, limits.

Called by :mod:`controller.server.serve` (and by tests) as
``create_app(data_api.routes(api), ...)``; every API module contributes a list of
Starlette routes, so later ones (webhooks, status, ``/metrics``) plug in beside the
Data API without touching it.

What every route gets from here:

- a bearer token is required (:class:`~controller.server.auth.RequireToken`), before
  any body is read, on every route but a :class:`~controller.server.auth.PublicRoute`;
  ``tokens=None`` (``--insecure-no-auth``) must be asked for explicitly;
- ``GET /health`` answers ``{}`` (as OPA's does), without a token;
- every error is JSON ``{"code": ..., "message": ...}``, OPA's shape, and never a
  stack trace (uvicorn logs those);
- request bodies are limited to ``max_body_bytes`` whatever the framing: a declared
  ``Content-Length`` over it is refused before a byte is read, and a chunked body is
  counted as it arrives and refused as soon as it grows past it (413, and the
  connection is closed rather than drained);
- a request body must arrive within ``body_timeout`` seconds (408), so a client
  dripping a body cannot hold a connection and its buffer forever.

(Starlette's own ``max_body_size`` is not used: it answers an oversize
``Content-Length`` with plain text, replacing whatever the app sends.)
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from controller.http.limits import BodyLimits, error_headers
from controller.server.auth import PublicRoute, RequireToken, Tokens

MAX_BODY_BYTES = 1 << 20
BODY_TIMEOUT_S = 30.0

# OPA's error codes (https://www.openpolicyagent.org/docs/rest-api#errors), by status.
_CODES = {
    400: "invalid_parameter",
    401: "unauthorized",
    403: "unauthorized",
    404: "resource_not_found",
    405: "invalid_method",
    408: "request_timeout",
    413: "invalid_parameter",
    429: "too_many_requests",
    500: "internal_error",
}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    code = _CODES.get(status, "internal_error" if status >= 500 else "invalid_parameter")
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


def _message(request: Request, status: int, detail: str) -> str:
    """The exception's own message, or a helpful one for Starlette's bare 404 and 405."""
    if detail and detail != HTTPStatus(status).phrase:
        return detail
    if status == 404:
        return f"no such endpoint: {request.url.path}"
    if status == 405:
        return f"{request.method} is not allowed on {request.url.path}"
    return HTTPStatus(status).phrase


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, _message(request, exc.status_code, exc.detail), error_headers(exc))


async def _internal_error(request: Request, exc: Exception) -> Response:
    # Starlette re-raises after this, and uvicorn logs the traceback; the client
    # gets none.
    return error_response(500, "internal error")


async def _health(request: Request) -> Response:
    return JSONResponse({})


def create_app(
    *route_groups: Iterable[BaseRoute],
    tokens: Tokens | None,
    max_body_bytes: int = MAX_BODY_BYTES,
    body_timeout: float = BODY_TIMEOUT_S,
) -> Starlette:
    """The app serving ``GET /health`` and every group's routes, in order, to the holders
    of ``tokens`` (to anyone when ``tokens`` is None)."""
    routes: list[BaseRoute] = [PublicRoute("/health", _health), PublicRoute("/health/", _health)]
    for group in route_groups:
        routes.extend(group)
    return Starlette(
        routes=routes,
        middleware=[
            # Outermost first: a request without a valid token is refused before its body is read.
            Middleware(RequireToken, tokens=tokens, routes=routes),
            Middleware(BodyLimits, max_bytes=max_body_bytes, seconds=body_timeout, respond=error_response),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
    )
