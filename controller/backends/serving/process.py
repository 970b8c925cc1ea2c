"""Starting and stopping a local model server process (see :mod:`.modelserver`).

A library call with no process-wide side effects: it starts a child process, waits
until it has loaded its models and listens (or says why it could not), and stops
it with SIGTERM (SIGKILL after a grace period). Supervision (restarts, adoption
after a controller restart) and the deploy step that will call this are not built
yet.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
START_TIMEOUT = 60.0  # importing KServe and loading the models
STOP_GRACE = 10.0


class ServingError(Exception):
    """A model server that could not start, with its reason."""


@dataclass(frozen=True)
class ModelVersion:
    """A model to serve under ``name``: the artifact with this digest."""

    name: str
    digest: str


@dataclass
class ModelServerProcess:
    """A running model server: its process and the URL it answers on."""

    process: subprocess.Popen[bytes] = field(repr=False)
    url: str
    models: tuple[ModelVersion, ...]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

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
    models: list[ModelVersion],
    artifacts: Path,
    *,
    host: str = DEFAULT_HOST,
    port: int = 0,
    timeout: float = START_TIMEOUT,
) -> ModelServerProcess:
    """Start a model server for ``models`` (artifacts in the store at ``artifacts``),
    listening on ``host:port`` (port 0: a free one), and wait until it serves them.
    Raises :class:`ServingError` with the server's reason when it cannot start."""
    config = {
        "host": host,
        "port": port,
        "artifacts": str(artifacts.resolve()),
        "models": [{"name": m.name, "digest": m.digest} for m in models],
    }
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
    env["KSERVE_LOGLEVEL"] = "WARNING"
    process = subprocess.Popen(
        [sys.executable, "-I", "-m", "controller.backends.serving.modelserver"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd="/",
        env=env,
        start_new_session=True,  # a Ctrl-C at the controller's terminal is the controller's to handle
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(json.dumps(config).encode())
    process.stdin.close()
    try:
        url = _announced_url(process, timeout)
    except BaseException:
        _kill(process)
        process.stdout.close()
        raise
    return ModelServerProcess(process, url, tuple(models))


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
