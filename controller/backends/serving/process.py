"""Starting and stopping one model server replica (see :mod:`.modelserver`).

:func:`start` starts a replica as a fresh interpreter (a library call with no
process-wide side effects); :func:`fork` forks it from a process that has imported
its libraries already (:func:`preload`), as the supervisor does. Either way it
starts a child process for a service's configuration, on a listening socket the caller holds (or on
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
from typing import IO

from controller.backends.processes import terminate
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
        code = terminate(self.process, grace)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code if code is not None else -signal.SIGKILL


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


class _Forked:
    """What a replica needs of :class:`subprocess.Popen`, for a child made by :func:`fork`."""

    def __init__(self, pid: int, stdout: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.stdout: IO[bytes] | None = os.fdopen(stdout, "rb", buffering=0)

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: it has ended, how is not known
                self.returncode = -signal.SIGKILL
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"replica {self.pid}", timeout or 0.0)
            time.sleep(0.01)
        return code

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def fork(config: ServiceConfig, sock: socket.socket, *, timeout: float = START_TIMEOUT) -> ModelServerProcess:
    """Start a replica serving ``config`` on ``sock`` in a forked child of this process,
    which must have imported the model server's libraries already (:func:`preload`): the
    child skips the seconds a fresh interpreter spends importing KServe, scikit-learn and
    skops. For a single-threaded process (the supervisor) only."""
    from controller.backends.serving.modelserver import run_forked

    read_end, write_end = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            os.close(read_end)
            code = run_forked(config, sock, write_end, parent)
        finally:
            os._exit(code)
    os.close(write_end)
    process = _Forked(pid, read_end)
    try:
        url = _announced_url(process, timeout)  # type: ignore[arg-type]
    except BaseException:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
        raise
    return ModelServerProcess(process, url, config)  # type: ignore[arg-type]


def preload() -> None:
    """Import what a replica needs, once, so that :func:`fork` starts replicas quickly."""
    sys.argv = sys.argv[:1]  # KServe parses the command line when it is imported
    os.environ.setdefault("KSERVE_LOGLEVEL", "WARNING")
    import kserve.model_server
    import kserve.protocol.rest.server  # noqa: F401
    import skops.io  # noqa: F401  (and through it, scikit-learn's estimators)

    import controller.backends.serving.access
    import controller.backends.serving.modelserver
    import controller.policy.embedded  # noqa: F401


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
