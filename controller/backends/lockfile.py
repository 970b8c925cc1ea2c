"""Who holds a lock file: how modelplane tells that a background process of its own runs.

The supervisors and the Prometheus that modelplane starts each hold an exclusive
``flock`` on a file for as long as they live. Whether one runs is whether that lock is
held (:func:`held`); which process it is comes from the kernel's own table of locks
(``/proc/locks``, :func:`holder`), never from a pid written in a file that anyone with
access to the state directory could change.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


def held(path: Path) -> bool:
    """Whether some process holds the exclusive lock on ``path`` now."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock this process took
    return False


def holder(path: Path) -> int | None:
    """The pid of the process holding the ``flock`` on ``path`` (None: nobody, or unknown)."""
    try:
        info = path.stat()
        table = Path("/proc/locks").read_text()
    except OSError:
        return None
    device = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    for line in table.splitlines():
        fields = line.split()
        if "->" in fields:  # a process waiting for the lock, not holding it
            continue
        # "1: FLOCK  ADVISORY  WRITE 12345 08:01:123456 0 EOF"
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == device and fields[4].isdigit():
            return int(fields[4])
    return None
