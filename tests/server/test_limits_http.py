"""The body limits, attacked over real HTTP by an authenticated client (one with a token
gets as far as the body): a chunked body growing past the limit, a Content-Length over
it, JSON nested deep enough to break a recursive parser, and a body dripped slower than
the time limit. Each is a clear 4xx answer, never a 500 or a hung connection."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from serverhttp import TOKEN, cli_server, closed_by_peer, read_response, request, run_cli

from controller.policy.data_api import DataApi
from controller.policy.sources import PolicyFile
from controller.server.app import create_app
from controller.server.auth import Tokens
from controller.server.bodies import MAX_JSON_DEPTH
from controller.server.data_api import routes
from controller.server.run import serving

LIMIT = 4096
TIMEOUT_S = 0.5
AUTH = b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"


@pytest.fixture(scope="module")
def small(library: list[PolicyFile]) -> Iterator[tuple[str, int]]:
    """The Data API with a 4 KiB body limit and a half-second body timeout."""
    tokens = Tokens({"tester": TOKEN})
    with DataApi(library) as api:
        app = create_app(routes(api), tokens=tokens, max_body_bytes=LIMIT, body_timeout=TIMEOUT_S)
        with serving(app) as address:
            yield address


def head(path: str, *headers: bytes) -> bytes:
    return (
        b"POST "
        + path.encode()
        + b" HTTP/1.1\r\nHost: test\r\n"
        + AUTH
        + b"".join(h + b"\r\n" for h in headers)
        + b"\r\n"
    )


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def test_a_chunked_body_over_the_limit_is_refused_and_the_connection_closed(small: tuple[str, int]) -> None:
    with socket.create_connection(small, timeout=5) as sock:
        sock.sendall(head("/v1/data/access", b"Transfer-Encoding: chunked"))
        sent = 0
        try:
            while sent <= 4 * LIMIT:  # the server answers once it has LIMIT + 1 bytes, and stops reading
                sock.sendall(chunk(b" " * 1024))
                sent += 1024
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, headers, doc = read_response(sock)
        assert (status, doc) == (413, {"code": "invalid_parameter", "message": f"request body over {LIMIT} bytes"})
        assert headers["connection"] == "close"
        assert closed_by_peer(sock)
    # exactly at the limit, chunked, is read and answered
    with socket.create_connection(small, timeout=5) as sock:
        body = b'{"input": {}}'
        sock.sendall(
            head("/v1/data/access/allow", b"Transfer-Encoding: chunked")
            + chunk(body)
            + chunk(b" " * (LIMIT - len(body)))
            + b"0\r\n\r\n"
        )
        assert read_response(sock)[0::2] == (200, {"result": False})


def test_two_framings_are_refused_and_the_connection_closed(small: tuple[str, int]) -> None:
    """Request smuggling: Content-Length and chunked together would let a proxy and the server
    disagree on where the request ends."""
    body = b'{"input": {}}'
    with socket.create_connection(small, timeout=5) as sock:
        sock.sendall(
            head("/v1/data/access/allow", b"Content-Length: %d" % len(body), b"Transfer-Encoding: chunked")
            + chunk(body)
            + b"0\r\n\r\n"
        )
        status, headers, doc = read_response(sock)
        assert (status, doc["message"]) == (400, "a request cannot carry both Content-Length and Transfer-Encoding")
        assert headers["connection"] == "close"
        assert closed_by_peer(sock)


def test_a_content_length_over_the_limit_is_refused_before_the_body(small: tuple[str, int]) -> None:
    with socket.create_connection(small, timeout=5) as sock:
        sock.sendall(head("/v1/data/access", b"Content-Length: %d" % (LIMIT + 1)))  # no body is sent
        status, headers, doc = read_response(sock)
        assert (status, doc["message"], headers["connection"]) == (413, f"request body over {LIMIT} bytes", "close")
        assert closed_by_peer(sock)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,  # deep enough for json's recursion limit
        b'{"input": ' + b'{"a": ' * (MAX_JSON_DEPTH + 1) + b"1" + b"}" * (MAX_JSON_DEPTH + 1) + b"}",
    ],
    ids=["past-the-recursion-limit", "past-the-depth-limit"],
)
def test_deeply_nested_json_is_a_400_not_a_500(server: tuple[str, int], body: bytes) -> None:
    status, doc = request(server, "POST", "/v1/data/access/allow", body)
    assert (status, doc) == (
        400,
        {"code": "invalid_parameter", "message": f"body is nested deeper than {MAX_JSON_DEPTH} levels"},
    )
    assert request(server, "GET", "/health") == (200, {})  # the server is fine


def test_json_at_the_depth_limit_is_answered(server: tuple[str, int]) -> None:
    depth = MAX_JSON_DEPTH - 1  # the {"input": ...} wrapper is a level too
    body = b'{"input": ' + b"[" * depth + b"]" * depth + b"}"
    assert request(server, "POST", "/v1/data/access/allow", body) == (200, {"result": False})


def test_a_slow_drip_body_times_out(small: tuple[str, int]) -> None:
    with socket.create_connection(small, timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(head("/v1/data/access", b"Content-Length: 100") + b'{"input"')  # and then nothing
        status, headers, doc = read_response(sock)
        elapsed = time.monotonic() - started
        assert (status, doc) == (
            408,
            {"code": "request_timeout", "message": f"request body not received within {TIMEOUT_S:g} s"},
        )
        assert headers["connection"] == "close"
        assert TIMEOUT_S <= elapsed < TIMEOUT_S + 2
        assert closed_by_peer(sock)


def test_a_chunked_drip_times_out_too(small: tuple[str, int]) -> None:
    """Each chunk arrives in time for a per-read timeout, but the body as a whole does not."""
    with socket.create_connection(small, timeout=5) as sock:
        sock.sendall(head("/v1/data/access", b"Transfer-Encoding: chunked"))
        started = time.monotonic()
        try:
            while time.monotonic() - started < TIMEOUT_S * 4:
                sock.sendall(chunk(b" "))
                time.sleep(TIMEOUT_S / 5)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, _, doc = read_response(sock)
        assert (status, doc["code"]) == (408, "request_timeout")


RUNAWAY = (
    b"package runaway\n\nimport rego.v1\n\nnegative_pair if {\n\tsome i in numbers.range(1, input.n)\n"
    b"\tsome j in numbers.range(1, input.n)\n\ti * j < 0\n}\n"
)


def test_a_runaway_query_is_stopped_and_the_server_keeps_serving(tmp_path: Path) -> None:
    """A rule that runs for ever on some input (10^10 pairs for n = 100000): the query is
    stopped at --policy-timeout and answered 500 policy-timeout; meanwhile /health and
    the next queries are answered."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "runaway.rego").write_bytes(RUNAWAY)
    args = ["--policies", "builtin", "--policies", str(policies), "--policy-timeout", "1"]
    with cli_server(*args) as served:
        results: dict[str, object] = {}

        def runaway() -> None:
            started = time.monotonic()
            body = b'{"input": {"n": 100000}}'
            results["answer"] = request(served.addr, "POST", "/v1/data/runaway/negative_pair", body)
            results["seconds"] = time.monotonic() - started

        thread = threading.Thread(target=runaway)
        thread.start()
        time.sleep(0.3)
        started = time.monotonic()
        assert request(served.addr, "GET", "/health", token=None) == (200, {})
        assert time.monotonic() - started < 0.5  # the event loop is not held by the engine
        thread.join(timeout=10)
        status, doc = results["answer"]  # type: ignore[misc]
        assert status == 500 and doc["message"].startswith("policy-timeout: data.runaway.negative_pair"), doc
        assert results["seconds"] < 4  # type: ignore[operator]
        assert request(served.addr, "POST", "/v1/data/runaway/negative_pair", b'{"input": {"n": 100}}') == (200, {})
        allowed = (
            b'{"input": {"method": "GET", "path": "/models/production/breast-cancer-api/artifacts/model", '
            b'"user": "bob", "groups": ["ml-platform"], "consent": true}}'
        )
        assert request(served.addr, "POST", "/v1/data/access/allow", allowed) == (200, {"result": True})
        served.stop()


def test_policy_serve_refuses_a_bad_memory_limit() -> None:
    done = run_cli("policy", "serve", "--policy-memory", "12")
    assert done.returncode == 2 and "between 256 and 1048576" in done.stderr


def test_one_client_cannot_hold_the_engine_queue(library: list[PolicyFile]) -> None:
    """The engine answers one query at a time: a client with MAX_QUERIES_PER_CLIENT
    queries waiting or running gets 429 for the next, at once."""
    from controller.server.data_api import MAX_QUERIES_PER_CLIENT

    runaway = PolicyFile("runaway.rego", RUNAWAY.decode())
    tokens = Tokens({"tester": TOKEN})
    with DataApi([*library, runaway], timeout=0.5) as api, serving(create_app(routes(api), tokens=tokens)) as addr:
        answers: list[tuple[int, dict]] = []
        body = b'{"input": {"n": 100000}}'

        def ask() -> None:
            answers.append(request(addr, "POST", "/v1/data/runaway/negative_pair", body))

        threads = [threading.Thread(target=ask) for _ in range(MAX_QUERIES_PER_CLIENT + 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        statuses = sorted(status for status, _ in answers)
        assert statuses == [429] + [500] * MAX_QUERIES_PER_CLIENT, answers
        refused = next(doc for status, doc in answers if status == 429)
        assert refused["code"] == "too_many_requests"
        assert request(addr, "POST", "/v1/data/runaway/negative_pair", b'{"input": {"n": 3}}') == (200, {})
