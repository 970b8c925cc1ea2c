"""Helpers for talking to a test server over real HTTP: the test token, plain requests,
raw exchanges on a socket, and ``modelplane policy serve`` as a subprocess."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOKEN = "test-token-0123456789abcdef"  # the client "tester" of the fixtures' servers
MODELPLANE = Path(sys.executable).with_name("modelplane")


def request(
    addr: tuple[str, int],
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    token: str | None = TOKEN,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    status, _, doc = exchange(addr, method, path, body, token=token, headers=headers)
    return status, doc


def exchange(
    addr: tuple[str, int],
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    token: str | None = TOKEN,
    headers: Mapping[str, str] | None = None,
    connection: http.client.HTTPConnection | None = None,
) -> tuple[int, http.client.HTTPMessage, dict[str, Any]]:
    """One request; (status, headers, JSON body or {})."""
    conn = connection or http.client.HTTPConnection(*addr, timeout=5)
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        raw = response.read()
        return response.status, response.headers, json.loads(raw) if raw else {}
    finally:
        conn.close()


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], dict[str, Any]]:
    """The response on a raw socket we wrote a request to."""
    response = http.client.HTTPResponse(sock)
    response.begin()
    raw = response.read()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(raw) if raw else {}


def closed_by_peer(sock: socket.socket, seconds: float = 5.0) -> bool:
    """Whether the server closes ``sock`` (reads EOF, or a reset) within ``seconds``."""
    sock.settimeout(seconds)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


@dataclass
class Served:
    """``modelplane policy serve`` running as a subprocess."""

    proc: subprocess.Popen[bytes]
    banner: str
    url: str
    port: int

    @property
    def addr(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def stop(self) -> tuple[str, str]:
        """Ctrl-C; the rest of stdout and all of stderr."""
        self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=15)
        assert self.proc.returncode == 0, err
        return out.decode(), err.decode()

    def readline(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().decode()


def cli_env(token: str | None = TOKEN, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MODELPLANE_API_TOKEN"}
    if token is not None:
        env["MODELPLANE_API_TOKEN"] = token
    return {**env, **extra}


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 30, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """A command that is expected to end by itself (a refused start)."""
    return subprocess.run(
        [str(MODELPLANE), *args], capture_output=True, text=True, env=dict(env or cli_env()), timeout=timeout, cwd=cwd
    )


@contextmanager
def cli_server(*args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Iterator[Served]:
    """``modelplane policy serve --port 0 ARGS`` until the block ends (killed then, unless
    the test stopped it). ``args`` holding ``policy`` are the whole command line instead
    (for global flags: ``--state-dir DIR policy serve ...``)."""
    argv = list(args) if "policy" in args else ["policy", "serve", *args]
    if "--port" not in argv:
        argv += ["--port", "0"]
    # Unbuffered: lines read here are not taken from what stop() reads later.
    proc = subprocess.Popen(
        [str(MODELPLANE), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env or cli_env()),
        bufsize=0,
        cwd=cwd,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline().decode()
        if not banner.startswith("serving OPA Data API on "):
            proc.kill()
            _, err = proc.communicate(timeout=10)
            raise AssertionError(f"the server did not start: {banner!r} {err.decode()!r}")
        url = banner.split(" on ")[1].split()[0]
        yield Served(proc, banner, url, int(url.rsplit(":", 1)[1]))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
