"""Binding and running the app on uvicorn, in the foreground or in a thread.

Called by :mod:`controller.server.serve` (the CLI's serve commands) and by tests.
:func:`resolve` and :func:`listen` (or :func:`bind`, both at once) open the listening
socket before anything runs, so every reason the server cannot start (a port in use
or out of range, a host that does not resolve or is not local) is one
:class:`ServerError` with a one-line message; between the two, the caller can check
the address it is about to expose (:mod:`controller.server.guard`). Servers bind
127.0.0.1 unless told otherwise, log no access lines unless asked, and serve TLS when
given a certificate and key (:class:`TLSFiles`).
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import uvicorn
    from starlette.types import ASGIApp

DEFAULT_HOST = "127.0.0.1"
BACKLOG = 2048  # uvicorn's default


class ServerError(Exception):
    """The server cannot start; the message is one line for the user."""


@dataclass(frozen=True)
class Address:
    """Where a server will listen: what the user asked for, and what it resolved to."""

    host: str
    port: int
    family: int
    kind: int
    proto: int
    sockaddr: Any  # (ip, port) or (ip, port, flow, scope)

    @property
    def ip(self) -> str:
        return str(self.sockaddr[0])


@dataclass(frozen=True)
class TLSFiles:
    """A PEM certificate (chain) and its private key, served by uvicorn's ssl support."""

    cert: Path
    key: Path

    def check(self) -> None:
        """Load them once, so a wrong file is a one-line error before the server starts."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(self.cert, self.key)
        except ssl.SSLError:  # OpenSSL's own words ("[SSL] PEM lib (_ssl.c:3905)") say little
            reason = "not a PEM certificate (chain) and the private key that matches it"
            raise ServerError(f"cannot use the TLS certificate {self.cert} with the key {self.key}: {reason}") from None
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ServerError(f"cannot use the TLS certificate {self.cert} with the key {self.key}: {reason}") from None


def resolve(host: str = DEFAULT_HOST, port: int = 8181) -> Address:
    """The address ``host:port`` binds to (port 0: a free one, chosen when listening)."""
    if not 0 <= port <= 65535:
        raise ServerError(f"port {port} is out of range (0-65535)")
    try:
        family, kind, proto, _, sockaddr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (OSError, UnicodeError) as exc:  # socket.gaierror; an IDNA-invalid name
        raise ServerError(f"cannot resolve host {host!r}: {getattr(exc, 'strerror', None) or exc}") from None
    return Address(host, port, family, kind, proto, sockaddr)


def listen(address: Address) -> socket.socket:
    """A socket listening on ``address``."""
    sock = socket.socket(address.family, address.kind, address.proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address.sockaddr)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ServerError(f"cannot listen on {address.host}:{address.port}: {exc.strerror or exc}") from None
    return sock


def bind(host: str = DEFAULT_HOST, port: int = 8181) -> socket.socket:
    """A socket listening on ``host:port`` (port 0: a free one)."""
    return listen(resolve(host, port))


def url(sock: socket.socket, *, tls: bool = False) -> str:
    """``http(s)://host:port`` for a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    scheme = "https" if tls else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def _server(app: ASGIApp, *, access_log: bool, graceful_timeout: float | None, tls: TLSFiles | None) -> uvicorn.Server:
    import uvicorn

    config = uvicorn.Config(
        app,
        log_config=None,  # the embedding process configures logging; uvicorn's loggers propagate
        log_level="warning",
        access_log=access_log,
        server_header=False,
        lifespan="on",
        # Chosen, not left to "auto" (which takes httptools and uvloop when installed, as kserve
        # installs them): h11 is the parser our request limits and framing checks are tested with.
        http="h11",
        loop="asyncio",
        timeout_graceful_shutdown=None if graceful_timeout is None else int(graceful_timeout),
        ssl_certfile=None if tls is None else str(tls.cert),
        ssl_keyfile=None if tls is None else str(tls.key),
    )
    return uvicorn.Server(config)


def run(app: ASGIApp, sock: socket.socket, *, access_log: bool = False, tls: TLSFiles | None = None) -> None:
    """Serve ``app`` on ``sock`` until SIGINT or SIGTERM (handled by uvicorn, which
    shuts down gracefully and then re-raises the signal: Ctrl-C ends as KeyboardInterrupt)."""
    _server(app, access_log=access_log, graceful_timeout=10.0, tls=tls).run(sockets=[sock])


@contextmanager
def serving(
    app: ASGIApp,
    host: str = DEFAULT_HOST,
    port: int = 0,
    *,
    access_log: bool = False,
    tls: TLSFiles | None = None,
) -> Iterator[tuple[str, int]]:
    """Serve ``app`` on a thread; yields the bound ``(host, port)`` once it answers,
    and stops the server (waiting at most a few seconds for open requests) on exit."""
    sock = bind(host, port)
    server = _server(app, access_log=access_log, graceful_timeout=2.0, tls=tls)
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
