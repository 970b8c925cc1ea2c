"""Bearer tokens: who may call the server, and under which name.

Called by :mod:`controller.server.serve` (:func:`load_tokens`, from the environment or
a token file) and by :mod:`controller.server.app`, which puts :class:`RequireToken` in
front of every route: a route group gets authentication without asking for it, and
opts a route out only by making it a :class:`PublicRoute` (``GET /health``). Route
handlers learn the caller's name with :func:`client_of` (for the audit log).

Tokens come from ``MODELPLANE_API_TOKEN`` (one client, named ``default``) or from a
token file of ``NAME TOKEN`` lines (``#`` comments and blank lines allowed), which,
like an ssh key, must not be readable by group or others. A token is compared in
constant time, as a SHA-256 digest, against every client's. No token ever appears in
an error message, a log line or a ``repr``: errors name the file and line instead.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from controller.api.identity import IdentityError, normalise
from controller.server.run import ServerError

TOKEN_ENV = "MODELPLANE_API_TOKEN"
ENV_CLIENT = "default"
MIN_TOKEN_CHARS = 16
_SCOPE_KEY = "modelplane.client"
_HOW_TO_MAKE_ONE = "e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


class TokenError(ServerError):
    """The tokens cannot be used; the message is one line and holds no token."""


class PublicRoute(Route):
    """A route served without a token (``GET /health``). Everything else needs one."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _token_problem(token: str) -> str | None:
    if len(token) < MIN_TOKEN_CHARS:
        return f"the token is {len(token)} characters; use at least {MIN_TOKEN_CHARS} ({_HOW_TO_MAKE_ONE})"
    if not all("!" <= c <= "~" for c in token):
        return "the token must be printable ASCII without spaces"
    return None


class Tokens:
    """The clients allowed in, by name; only the digests of their tokens are kept."""

    def __init__(self, clients: Mapping[str, str]) -> None:
        if not clients:
            raise TokenError("no tokens given")
        self._digests = [(name, _digest(token)) for name, token in clients.items()]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self._digests]

    def client(self, token: str) -> str | None:
        """The name of the client holding ``token``, or None. Every client's digest is
        compared (in constant time), so the answer takes as long whoever holds it."""
        presented = _digest(token)
        found = None
        for name, expected in self._digests:
            if hmac.compare_digest(presented, expected) and found is None:
                found = name
        return found

    def __repr__(self) -> str:
        return f"Tokens(clients={self.names})"


def read_token_file(path: Path) -> Tokens:
    """The clients in a token file: ``NAME TOKEN`` per line, ``#`` comments, blank lines."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise TokenError(f"token file {path} is not a regular file")
        if info.st_mode & 0o077:
            raise TokenError(
                f"token file {path} has permissions {stat.S_IMODE(info.st_mode):04o}: it holds secrets and must "
                f"not be open to group or others (like an ssh key); run: chmod 600 {path}"
            )
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TokenError(f"cannot read token file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise TokenError(f"token file {path} is not UTF-8 text") from None
    clients: dict[str, str] = {}
    lines_of: dict[str, int] = {}
    token_lines: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{number}"
        # Never quote the line: a misplaced field may be a token.
        fields = line.split()
        if len(fields) != 2:
            raise TokenError(f"{where}: expected 'NAME TOKEN' (two fields), found {len(fields)}")
        raw_name, token = fields
        try:
            name = normalise(raw_name)
        except IdentityError:
            raise TokenError(
                f"{where}: the client name must be letters, digits and . _ @ + - (at most 128), e.g. ci or alice"
            ) from None
        problem = _token_problem(token)
        if problem:
            raise TokenError(f"{where}: {problem}")
        if name in lines_of:
            raise TokenError(f"{where}: the client name repeats line {lines_of[name]}")
        if token in token_lines:
            raise TokenError(f"{where}: the same token as line {token_lines[token]}: give every client its own")
        clients[name] = token
        lines_of[name] = number
        token_lines[token] = number
    if not clients:
        raise TokenError(f"token file {path} holds no 'NAME TOKEN' lines")
    return Tokens(clients)


def load_tokens(token_file: Path | None, environ: Mapping[str, str] = os.environ) -> Tokens | None:
    """The tokens from ``token_file`` or from ``MODELPLANE_API_TOKEN`` (not both), or None."""
    from_env = environ.get(TOKEN_ENV)
    if token_file is not None and from_env is not None:
        raise TokenError(f"{TOKEN_ENV} is set and --token-file is given: use one of them")
    if token_file is not None:
        return read_token_file(token_file)
    if from_env is None:
        return None
    token = from_env.strip()
    problem = _token_problem(token) if token else "it is empty"
    if problem:
        raise TokenError(f"{TOKEN_ENV}: {problem}")
    return Tokens({ENV_CLIENT: token})


def client_of(request: Request) -> str | None:
    """The name of the client that made ``request`` (None when the server runs without tokens)."""
    name = request.scope.get(_SCOPE_KEY)
    return name if isinstance(name, str) else None


def _unauthorized(message: str, challenge: str) -> JSONResponse:
    # OPA's code for a refused request; the connection is closed, not kept for another try.
    return JSONResponse(
        {"code": "unauthorized", "message": message},
        status_code=401,
        headers={"WWW-Authenticate": challenge, "Connection": "close"},
    )


class RequireToken:
    """Every request but those of a :class:`PublicRoute` needs ``Authorization: Bearer <token>``
    of a known client; others get 401 before any body is read. With ``tokens`` None (the
    server was started with ``--insecure-no-auth``) everything passes, as nobody."""

    def __init__(self, app: ASGIApp, tokens: Tokens | None, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.tokens = tokens
        self.public = [r for r in routes if isinstance(r, PublicRoute)]

    def _is_public(self, scope: Scope) -> bool:
        return any(route.matches(scope)[0] is Match.FULL for route in self.public)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.tokens is None or self._is_public(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        scheme, _, token = Headers(scope=scope).get("authorization", "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            response = _unauthorized("send a bearer token: 'Authorization: Bearer <token>'", "Bearer")
            await response(scope, receive, send)
            return
        name = self.tokens.client(token)
        if name is None:
            response = _unauthorized("the bearer token is not valid", 'Bearer error="invalid_token"')
            await response(scope, receive, send)
            return
        scope[_SCOPE_KEY] = name
        await self.app(scope, receive, send)
