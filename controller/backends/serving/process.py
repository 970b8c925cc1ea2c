"""Starting and stopping one model server replica (see :mod:`.modelserver`).

A library call with no process-wide side effects: it starts a child process for a
service's configuration, on a listening socket the caller holds (or on
``config.host:config.port``), waits until it has loaded its variants and serves
(or says why it could not), and stops it with SIGTERM (SIGKILL after a grace
period). The replica ends itself when the process that started it ends (Linux's
parent-death signal), so a supervisor killed with SIGKILL leaves no replica behind.
The supervisor (:mod:`.supervisor`) restarts replicas that end.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

from controller.backends.serving.config import ServiceConfig
from controller.backends.serving.modelserver import PARENT_PID_ENV

START_TIMEOUT = 60.0  # importing KServe and loading the models
STOP_GRACE = 10.0


class ServingError(Exception):
    """A model server that could not start, with its reason."""


@dataclass
class ModelServerProcess:
    """A running model server replica: its process and the URL it answers on."""

    process: subprocess.Popen[bytes] = field(repr=False)
    url: str
    config: ServiceConfig = field(repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def drain(self, grace: float = STOP_GRACE) -> int:
        """Replace it gracefully: it stops accepting, closes each connection after its next
        answer and exits (see :func:`.modelserver._drain_on_signal`); stopped after ``grace``."""
        from controller.backends.serving.modelserver import DRAIN_S, DRAIN_SIGNAL

        if self.process.poll() is None:
            self.process.send_signal(DRAIN_SIGNAL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(DRAIN_S + grace)
        return self.stop(grace)

    def stop(self, grace: float = STOP_GRACE) -> int:
        """SIGTERM, then SIGKILL after ``grace`` seconds; the exit status (-15: it
        ended on the SIGTERM, after finishing the requests it was answering)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode


def start(
    config: ServiceConfig, *, sock: socket.socket | None = None, timeout: float = START_TIMEOUT
) -> ModelServerProcess:
    """Start a replica serving ``config`` on ``sock`` (inherited; None: it binds
    ``config.host:config.port`` itself) and wait until it serves. Raises
    :class:`ServingError` with the replica's reason when it cannot start."""
    from controller.backends.serving.modelserver import LISTEN_FD_ENV

    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
    env["KSERVE_LOGLEVEL"] = "WARNING"
    env[PARENT_PID_ENV] = str(os.getpid())
    if sock is not None:
        env[LISTEN_FD_ENV] = str(sock.fileno())
    process = subprocess.Popen(
        [sys.executable, "-I", "-m", "controller.backends.serving.modelserver"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd="/",
        env=env,
        pass_fds=(sock.fileno(),) if sock is not None else (),
        start_new_session=True,  # a Ctrl-C at a terminal is the supervisor's to handle
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(config.to_json().encode())
    process.stdin.close()
    try:
        url = _announced_url(process, timeout)
    except BaseException:
        _kill(process)
        process.stdout.close()
        raise
    return ModelServerProcess(process, url, config)


def _announced_url(process: subprocess.Popen[bytes], timeout: float) -> str:
    """The URL the server prints once it serves, or a :class:`ServingError` with its reason."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    buffer = b""
    while True:
        left = deadline - time.monotonic()
        ready = select.select([process.stdout], [], [], max(0.0, left))[0] if left > 0 else []
        if not ready:
            raise ServingError(f"the model server did not start within {timeout:g} s")
        chunk = os.read(process.stdout.fileno(), 65536)
        if not chunk:
            process.wait()
            raise ServingError(f"the model server exited (status {process.returncode}) before it was ready")
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            try:
                message = json.loads(line)
            except ValueError:
                continue  # a library's own output
            if isinstance(message, dict) and isinstance(message.get("url"), str):
                return message["url"]
            if isinstance(message, dict) and "error" in message:
                raise ServingError(f"the model server could not start: {message['error']}")


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()
