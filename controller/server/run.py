"""Binding and running the app on uvicorn, in the foreground or in a thread.

Called by :mod:`controller.server.serve` (the CLI's serve commands) and by tests.
:func:`bind` opens the listening socket first, so every reason the server cannot
start (a port in use or out of range, a host that does not resolve or is not
local) is one :class:`ServerError` with a one-line message before anything runs.
Servers bind 127.0.0.1 unless told otherwise, and log no access lines unless asked.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import uvicorn
    from starlette.types import ASGIApp

DEFAULT_HOST = "127.0.0.1"
BACKLOG = 2048  # uvicorn's default


class ServerError(Exception):
    """The server cannot start; the message is one line for the user."""


def bind(host: str = DEFAULT_HOST, port: int = 8181) -> socket.socket:
    """A socket listening on ``host:port`` (port 0: a free one)."""
    if not 0 <= port <= 65535:
        raise ServerError(f"port {port} is out of range (0-65535)")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (OSError, UnicodeError) as exc:  # socket.gaierror; an IDNA-invalid name
        raise ServerError(f"cannot resolve host {host!r}: {getattr(exc, 'strerror', None) or exc}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def url(sock: socket.socket) -> str:
    """``http://host:port`` for a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _server(app: ASGIApp, *, access_log: bool, graceful_timeout: float | None) -> uvicorn.Server:
    import uvicorn

    config = uvicorn.Config(
        app,
        log_config=None,  # the embedding process configures logging; uvicorn's loggers propagate
        log_level="warning",
        access_log=access_log,
        server_header=False,
        lifespan="on",
        timeout_graceful_shutdown=None if graceful_timeout is None else int(graceful_timeout),
    )
    return uvicorn.Server(config)


def run(app: ASGIApp, sock: socket.socket, *, access_log: bool = False) -> None:
    """Serve ``app`` on ``sock`` until SIGINT or SIGTERM (handled by uvicorn, which
    shuts down gracefully and then re-raises the signal: Ctrl-C ends as KeyboardInterrupt)."""
    _server(app, access_log=access_log, graceful_timeout=10.0).run(sockets=[sock])


@contextmanager
def serving(
    app: ASGIApp, host: str = DEFAULT_HOST, port: int = 0, *, access_log: bool = False
) -> Iterator[tuple[str, int]]:
    """Serve ``app`` on a thread; yields the bound ``(host, port)`` once it answers,
    and stops the server (waiting at most a few seconds for open requests) on exit."""
    sock = bind(host, port)
    server = _server(app, access_log=access_log, graceful_timeout=2.0)
    failure: list[BaseException] = []

    def target() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # uvicorn exits with SystemExit when startup fails
            failure.append(exc)

    thread = threading.Thread(target=target, name="uvicorn", daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise ServerError(f"the server stopped while starting: {failure[0] if failure else 'no reason given'}")
            thread.join(0.01)
        host, port = sock.getsockname()[:2]
        yield host, port
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
