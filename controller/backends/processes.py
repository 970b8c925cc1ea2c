"""Stopping the processes modelplane runs in the background: SIGTERM, then SIGKILL.

:func:`terminate` stops a child this process started (a :class:`subprocess.Popen`, or
anything with its ``poll``/``send_signal``/``wait``/``kill``); :func:`terminate_pid` a
process it did not start (a supervisor or a Prometheus left running by an earlier
command), whose end is told by ``running`` (its lock), not by a pid that may be reused.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Protocol


class Child(Protocol):
    returncode: int | None

    def poll(self) -> int | None: ...

    def send_signal(self, sig: int) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...


def terminate(child: Child, grace: float) -> int | None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; the exit status."""
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(grace)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return child.returncode


def terminate_pid(pid: int, running: Callable[[], bool], grace: float) -> None:
    """SIGTERM ``pid``, then SIGKILL when ``running()`` still holds after ``grace`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while running():
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.05)
