"""Bearer tokens over real HTTP: every route but GET /health refuses a request without a
valid token (401, OPA's error shape, a WWW-Authenticate challenge), before reading its
body; a route group added later is guarded without asking; and the token never shows
in the server's output or its process listing."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from serverhttp import TOKEN, cli_env, cli_server, closed_by_peer, exchange, read_response, request
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from controller.policy.data_api import DataApi
from controller.policy.sources import PolicyFile
from controller.server.app import create_app
from controller.server.auth import PublicRoute, Tokens
from controller.server.data_api import routes
from controller.server.run import serving

ROUTES = [
    ("GET", "/v1/data/access/allow", None),
    ("POST", "/v1/data/access/allow", b'{"input": {}}'),
    ("POST", "/v1/data", b"{}"),
    ("PUT", "/v1/data/who", b'"world"'),
    ("GET", "/v1/policies", None),
    ("GET", "/v1/policies/builtin/access.rego", None),
    ("PUT", "/v1/policies/extra.rego", b"package extra\n"),
    ("DELETE", "/v1/policies/builtin/access.rego", None),
    ("GET", "/v2/no-such-endpoint", None),  # unknown paths too: nothing about the API shows without a token
    ("DELETE", "/health", None),  # /health is public for GET only
]
IDS = [f"{m} {p}" for m, p, _ in ROUTES]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=IDS)
def test_every_route_needs_a_token(server: tuple[str, int], method: str, path: str, body: bytes | None) -> None:
    status, headers, doc = exchange(server, method, path, body, token=None)
    assert (status, headers["WWW-Authenticate"]) == (401, "Bearer")
    assert doc == {"code": "unauthorized", "message": "send a bearer token: 'Authorization: Bearer <token>'"}


@pytest.mark.parametrize(
    "authorization",
    [
        f"Bearer {TOKEN[:-1]}",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN.upper()}",
        "Bearer another-token-of-some-length",
        f"Bearer {TOKEN} {TOKEN}",
    ],
    ids=["truncated", "extended", "other-case", "unknown", "twice"],
)
@pytest.mark.parametrize(("method", "path", "body"), ROUTES[:3], ids=IDS[:3])
def test_a_wrong_token_is_refused(
    server: tuple[str, int], method: str, path: str, body: bytes | None, authorization: str
) -> None:
    status, headers, doc = exchange(server, method, path, body, token=None, headers={"Authorization": authorization})
    assert (status, headers["WWW-Authenticate"]) == (401, 'Bearer error="invalid_token"')
    assert doc == {"code": "unauthorized", "message": "the bearer token is not valid"}
    assert TOKEN[:8] not in str(doc)


@pytest.mark.parametrize(
    "authorization",
    [f"Basic {TOKEN}", TOKEN, "Bearer", "Bearer ", f"Token {TOKEN}"],
    ids=["basic", "bare", "no-token", "empty-token", "other-scheme"],
)
def test_only_the_bearer_scheme_is_accepted(server: tuple[str, int], authorization: str) -> None:
    status, headers, doc = exchange(server, "GET", "/v1/policies", token=None, headers={"Authorization": authorization})
    assert (status, headers["WWW-Authenticate"], doc["code"]) == (401, "Bearer", "unauthorized")


def test_the_right_token_passes_and_the_scheme_is_case_insensitive(server: tuple[str, int]) -> None:
    assert request(server, "POST", "/v1/data/access/allow", b'{"input": {}}') == (200, {"result": False})
    status, _, doc = exchange(server, "GET", "/v1/policies", token=None, headers={"Authorization": f"bearer {TOKEN}"})
    assert status == 200 and doc["result"]


def test_health_is_public(server: tuple[str, int]) -> None:
    assert request(server, "GET", "/health", token=None) == (200, {})
    assert exchange(server, "HEAD", "/health", token=None)[0] == 200
    assert request(server, "GET", "/health", token="not-a-token-at-all") == (200, {})


def test_refused_before_the_body_is_read(server: tuple[str, int]) -> None:
    """A client without a token announces a body and sends none: the answer comes at once
    (not after the 30 s body timeout), and the connection is closed, not kept for the body."""
    head = b"POST /v1/data/access HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n\r\n"
    with socket.create_connection(server, timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(head)
        status, headers, doc = read_response(sock)
        assert time.monotonic() - started < 2
        assert (status, doc["code"], headers["connection"]) == (401, "unauthorized", "close")
        assert closed_by_peer(sock)


def test_a_chunked_body_without_a_token_is_not_read(server: tuple[str, int]) -> None:
    head = b"POST /v1/data/access HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
    with socket.create_connection(server, timeout=5) as sock:
        sock.sendall(head + b"10\r\n" + b"x" * 16 + b"\r\n")  # and never the end
        status, _, _ = read_response(sock)
        assert status == 401
        assert closed_by_peer(sock)


@pytest.fixture
def extended(library: list[PolicyFile]) -> Iterator[tuple[str, int]]:
    """The Data API plus a later route group (like webhooks or /metrics) with one public route."""

    async def secret(request: Request) -> Response:
        return JSONResponse({"secret": True})

    async def hello(request: Request) -> Response:
        return JSONResponse({"hello": True})

    later = [Route("/v1/status", secret), PublicRoute("/public/hello", hello)]
    with DataApi(library) as api, serving(create_app(routes(api), later, tokens=Tokens({"t": TOKEN}))) as address:
        yield address


def test_later_route_groups_are_guarded_without_asking(extended: tuple[str, int]) -> None:
    assert request(extended, "GET", "/v1/status", token=None)[0] == 401
    assert request(extended, "GET", "/v1/status") == (200, {"secret": True})
    assert request(extended, "GET", "/public/hello", token=None) == (200, {"hello": True})
    assert request(extended, "POST", "/public/hello", token=None)[0] == 401  # public for its own methods only


def test_the_token_is_not_in_the_output_nor_the_process_listing(tmp_path: Path) -> None:
    """Served with debug logging and access lines; called with the right token, a wrong one
    and a malformed header: neither secret shows on stdout or stderr, nor in the command line
    anyone on the host can read (/proc/PID/cmdline)."""
    wrong = "wrong-token-9f8e7d6c5b4a3210"
    with cli_server("--log-level", "debug", "policy", "serve", "--port", "0", env=cli_env()) as served:
        cmdline = Path(f"/proc/{served.proc.pid}/cmdline").read_bytes()
        assert request(served.addr, "POST", "/v1/data/access/allow", b'{"input": {}}') == (200, {"result": False})
        assert request(served.addr, "GET", "/v1/policies", token=wrong)[0] == 401
        assert request(served.addr, "GET", "/v1/policies", token=None, headers={"Authorization": wrong})[0] == 401
        out, err = served.stop()
    for secret in (TOKEN, wrong):
        assert secret.encode() not in cmdline
        assert secret not in served.banner + out + err
