"""OPA's Data API, served from the embedded engine.

``POST /v1/data/{path}`` with ``{"input": ...}`` answers ``{"result": ...}`` (no
``result`` when undefined), ``GET /health`` answers ``{}``; policies and data can
be read and replaced with ``GET|PUT /v1/policies/{id}`` and ``PUT /v1/data/{path}``,
so OPA clients (``opa-python-client`` among them) work against it unchanged.

:class:`DataApi` holds the logic and knows nothing of HTTP; :func:`serve` wraps
it in a threaded HTTP server bound to 127.0.0.1 unless told otherwise. The
controller's server will mount :class:`DataApi` for runtime decisions.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

from controller.policy.embedded import EmbeddedEngine
from controller.policy.engine import EngineError
from controller.policy.sources import PolicyFile, PolicyLoadError

MAX_BODY_BYTES = 1 << 20
log = logging.getLogger(__name__)

Answer = tuple[int, dict[str, Any] | None]
T = TypeVar("T")


def _error(status: HTTPStatus, code: str, message: str) -> Answer:
    return status, {"code": code, "message": message}


class _EngineThread:
    """Owns one regorus engine on one thread.

    A regorus engine may only be used, and dropped, by the thread that made it:
    every call, every replacement and the final drop run on this thread.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="regorus")
        self._engine: EmbeddedEngine | None = None  # touched only on the pool thread

    def _run(self, task: Callable[[], T]) -> T:
        """Run ``task`` on the engine thread. Errors are re-raised here without their
        traceback, whose frames would otherwise drop an engine on this thread."""

        def guarded() -> tuple[T | None, Exception | None]:
            try:
                return task(), None
            except PolicyLoadError as exc:
                return None, PolicyLoadError(exc.message, exc.file, exc.line, exc.column)
            except EngineError as exc:
                return None, EngineError(str(exc))

        value, error = self._pool.submit(guarded).result()
        if error is not None:
            raise error
        return value  # type: ignore[return-value]

    def call(self, fn: Callable[[EmbeddedEngine], T]) -> T:
        def task() -> T:
            assert self._engine is not None
            return fn(self._engine)

        return self._run(task)

    def replace(self, policies: list[PolicyFile], data: dict[str, Any]) -> None:
        """Build a new engine; on a load error the old one stays."""

        def task() -> None:
            engine = EmbeddedEngine(policies)
            engine.load_data(data)
            self._engine = engine  # the old engine is dropped here, on its own thread

        self._run(task)

    def close(self) -> None:
        self._pool.submit(setattr, self, "_engine", None).result()
        self._pool.shutdown(wait=True)


class DataApi:
    """The Data and Policy APIs over one embedded engine; requests may come from any thread."""

    def __init__(self, files: list[PolicyFile], data: dict[str, Any] | None = None) -> None:
        self._lock = threading.Lock()  # one writer at a time for policies and data
        self._policies = {f.path.strip("/"): PolicyFile(f.path.strip("/"), f.text) for f in files}
        self._data: dict[str, Any] = dict(data or {})
        self._engine = _EngineThread()
        self._engine.replace(list(self._policies.values()), self._data)

    def close(self) -> None:
        self._engine.close()

    def handle(self, method: str, path: str, body: bytes) -> Answer:
        route = urlparse(path).path
        if route in ("/health", "/health/"):
            return (
                (HTTPStatus.OK, {})
                if method == "GET"
                else _error(HTTPStatus.METHOD_NOT_ALLOWED, "invalid_method", method)
            )
        if route.startswith("/v1/data"):
            return self._data_api(method, unquote(route[len("/v1/data") :]).strip("/"), body)
        if route.startswith("/v1/policies"):
            return self._policy_api(method, unquote(route[len("/v1/policies") :]).strip("/"), body)
        return _error(HTTPStatus.NOT_FOUND, "resource_not_found", f"no such endpoint: {route}")

    def _data_api(self, method: str, data_path: str, body: bytes) -> Answer:
        if method in ("POST", "GET"):
            input_doc = None
            if method == "POST" and body.strip():
                try:
                    doc = json.loads(body)
                except json.JSONDecodeError as exc:
                    return _error(HTTPStatus.BAD_REQUEST, "invalid_parameter", f"body is not JSON: {exc}")
                if not isinstance(doc, dict):
                    return _error(HTTPStatus.BAD_REQUEST, "invalid_parameter", 'body must be {"input": ...}')
                input_doc = doc.get("input")
            try:
                value = self._engine.call(lambda engine: engine.query(data_path, input_doc))
            except EngineError as exc:
                return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", str(exc))
            return HTTPStatus.OK, ({} if value is None else {"result": value})
        if method == "PUT":
            try:
                value = json.loads(body or b"null")
            except json.JSONDecodeError as exc:
                return _error(HTTPStatus.BAD_REQUEST, "invalid_parameter", f"body is not JSON: {exc}")
            parts = [p for p in data_path.split("/") if p]
            if not parts:
                if not isinstance(value, dict):
                    return _error(HTTPStatus.BAD_REQUEST, "invalid_parameter", "root data must be an object")
                new = dict(value)
            else:
                new = json.loads(json.dumps(self._data))
                node = new
                for part in parts[:-1]:
                    node = node.setdefault(part, {})
                    if not isinstance(node, dict):
                        return _error(
                            HTTPStatus.BAD_REQUEST, "invalid_parameter", f"/{data_path} is not an object path"
                        )
                node[parts[-1]] = value
            with self._lock:
                self._engine.call(lambda engine: engine.load_data(new))
                self._data = new
            return HTTPStatus.NO_CONTENT, None
        return _error(HTTPStatus.METHOD_NOT_ALLOWED, "invalid_method", f"{method} is not allowed on /v1/data")

    def _policy_api(self, method: str, policy_id: str, body: bytes) -> Answer:
        if method == "GET" and not policy_id:
            with self._lock:
                return HTTPStatus.OK, {"result": [{"id": p.path, "raw": p.text} for p in self._policies.values()]}
        if method == "GET":
            policy = self._policies.get(policy_id)
            if policy is None:
                return _error(
                    HTTPStatus.NOT_FOUND, "resource_not_found", f"storage_not_found_error: policy id {policy_id!r}"
                )
            return HTTPStatus.OK, {"result": {"id": policy.path, "raw": policy.text}}
        if method == "PUT" and policy_id:
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                return _error(HTTPStatus.BAD_REQUEST, "invalid_parameter", "policy is not UTF-8 text")
            with self._lock:
                candidate = {**self._policies, policy_id: PolicyFile(policy_id, text)}
                try:
                    self._engine.replace(list(candidate.values()), self._data)
                except PolicyLoadError as exc:
                    return _error(HTTPStatus.BAD_REQUEST, "invalid_parameter", str(exc))
                self._policies = candidate
            return HTTPStatus.OK, {}
        return _error(HTTPStatus.METHOD_NOT_ALLOWED, "invalid_method", f"{method} is not allowed on /v1/policies")


class _Handler(BaseHTTPRequestHandler):
    api: DataApi
    max_body = MAX_BODY_BYTES
    protocol_version = "HTTP/1.1"

    def _respond(self, status: int, doc: dict[str, Any] | None) -> None:
        payload = b"" if doc is None else json.dumps(doc).encode()
        self.send_response(status)
        if doc is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _dispatch(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._respond(*_error(HTTPStatus.BAD_REQUEST, "invalid_parameter", "bad Content-Length"))
            return
        if length > self.max_body:
            self.close_connection = True
            self._respond(
                *_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "invalid_parameter", f"body over {self.max_body} bytes")
            )
            return
        body = self.rfile.read(length) if length else b""
        try:
            status, doc = self.api.handle(self.command, self.path, body)
        except Exception:  # never leak a traceback to the client
            log.exception("policy Data API failed on %s %s", self.command, self.path)
            status, doc = _error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "internal error")
        self._respond(status, doc)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)


def make_server(api: DataApi, host: str = "127.0.0.1", port: int = 8181) -> ThreadingHTTPServer:
    handler = type("Handler", (_Handler,), {"api": api})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
