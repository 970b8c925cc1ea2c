"""One apply at a time per state directory: an exclusive ``flock``.

The second ``apply`` either waits (``wait=True``) or is refused with the pid of
the holder. The lock dies with its process, so a crashed apply never leaves a
stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class LockHeld(Exception):
    pass


@contextmanager
def exclusive(state_dir: Path, *, wait: bool = False, timeout: float | None = None) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = state_dir / "apply.lock"
    handle = open(path, "a+")  # noqa: SIM115 - held for the whole block
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                if not wait or (deadline is not None and time.monotonic() > deadline):
                    raise LockHeld(
                        f"another apply (pid {holder}) holds {path}; wait for it, or run with --wait"
                    ) from None
                time.sleep(0.1)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()
