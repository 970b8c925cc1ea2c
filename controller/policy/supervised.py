"""Deciding where a decision can be stopped: forked deciders under a time limit.

Called by :func:`controller.policy.evaluate.evaluate` when the engine can be
forked (the embedded engine) and this process may fork. regorus has no execution
limit in its Python binding and holds the GIL while it evaluates, so nothing in
this process can interrupt a runaway rule: decisions run in forked children (each
with its copy of the engine, its policies and data), and the parent watches them.

Each child reports the index of every resource it starts to decide, then sends
its results. A child may allocate ``memory_mb`` beyond what it inherited (its
address space is limited). A child that reports nothing for ``timeout`` seconds is
killed, and one that dies (its memory limit, a signal) is done for: the resource
it was deciding is denied (``policy-timeout`` or ``policy-memory``), naming the
packages that do not finish on their own (found by deciding each package alone,
in parallel children under the same limits, for that resource); the resources
before it in its slice are decided again and those after it go on, each in a new
child. Nothing is ever decided in this process, where it could not be stopped.
After ``max_stopped`` stopped decisions the rest are not decided at all
(``policy-not-decided``): a runaway rule costs a bounded time, not a multiple of
the number of resources.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import struct
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from controller.policy.engine import DEFAULT_MEMORY_MB

Part = TypeVar("Part")  # what deciding a slice gives: (findings, records)
Progress = Callable[[int], None]

MAX_STOPPED = 3  # stopped decisions before the rest are not decided
_PROGRESS = b"P"  # + 4 bytes: the index about to be decided
_RESULT = b"R"  # + 8 bytes of length + the pickled part
_INDEX = struct.Struct("<I")
_LENGTH = struct.Struct("<Q")


@dataclass
class _Child:
    pid: int
    fd: int
    part: Sequence[int]
    deadline: float
    current: int | None = None
    buffer: bytearray = field(default_factory=bytearray)
    result: bytes | None = None


class Supervisor(Generic[Part]):
    """Decides slices of indexes in forked children, ``timeout`` seconds per decision.

    ``run(indexes, progress)`` decides some indexes (calling ``progress(i)`` before
    each); ``stopped(index, packages, why)`` is the part for a resource whose decision
    was stopped (``why``: "time" or "memory"); ``probe(index, package)`` decides one
    package for one resource (run only to find which packages are at fault);
    ``not_decided(index, stops)`` is the part for a resource left undecided once
    ``max_stopped`` decisions were stopped."""

    def __init__(
        self,
        run: Callable[[Sequence[int], Progress], Part],
        stopped: Callable[[int, list[str], str], Part],
        probe: Callable[[int, str], Any],
        packages: list[str],
        timeout: float,
        *,
        memory_mb: int = DEFAULT_MEMORY_MB,
        max_stopped: int = MAX_STOPPED,
        not_decided: Callable[[int, int], Part] | None = None,
    ) -> None:
        self.run = run
        self.stopped = stopped  # (index, packages, "time" or "memory") -> the denial
        self.probe = probe
        self.packages = packages
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.max_stopped = max_stopped
        self.not_decided = not_decided  # (index, stops so far) -> the denial of a resource left undecided
        self._stops = 0

    def decide(self, slices: Sequence[Sequence[int]], workers: int) -> list[Part]:
        pending: deque[Sequence[int]] = deque(s for s in slices if len(s))
        done: list[tuple[int, Part]] = []
        active: dict[int, _Child] = {}
        try:
            while pending or active:
                if self._stops >= self.max_stopped and self.not_decided is not None:
                    while pending:
                        for index in pending.popleft():
                            done.append((index, self.not_decided(index, self._stops)))
                while pending and len(active) < max(1, workers):
                    child = self._start(pending.popleft())
                    active[child.fd] = child
                if not active:
                    continue
                soonest = min(c.deadline for c in active.values())
                wait = None if soonest == float("inf") else max(0.0, soonest - time.monotonic())
                readable, _, _ = select.select(list(active), [], [], wait)
                for fd in readable:
                    child = active[fd]
                    if self._read(child):  # the child closed its end: finished, or died
                        del active[fd]
                        done.extend(self._finish(child, pending))
                now = time.monotonic()
                for fd, child in list(active.items()):
                    if now >= child.deadline:
                        del active[fd]
                        _kill(child.pid)
                        done.extend(self._stop(child, pending, "time"))
        finally:
            for child in active.values():
                _kill(child.pid)
                os.close(child.fd)
        return [part for _, part in sorted(done, key=lambda item: item[0])]

    def _start(self, part: Sequence[int]) -> _Child:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: decide, report, leave without the parent's exit handlers
            code = 1
            try:
                _limit_memory(self.memory_mb)
                os.close(read)
                with os.fdopen(write, "wb", buffering=0) as out:

                    def progress(index: int) -> None:
                        out.write(_PROGRESS + _INDEX.pack(index))

                    payload = pickle.dumps(self.run(part, progress), pickle.HIGHEST_PROTOCOL)
                    out.write(_RESULT + _LENGTH.pack(len(payload)) + payload)
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        return _Child(pid, read, part, time.monotonic() + self.timeout)

    def _read(self, child: _Child) -> bool:
        """Take what the child wrote; True at end of stream."""
        chunk = os.read(child.fd, 1 << 16)
        if not chunk:
            return True
        child.buffer += chunk
        view = child.buffer
        at = 0
        while at < len(view) and child.result is None:
            tag = view[at : at + 1]
            if tag == _PROGRESS:
                if len(view) - at < 1 + _INDEX.size:
                    break
                child.current = _INDEX.unpack_from(view, at + 1)[0]
                child.deadline = time.monotonic() + self.timeout
                at += 1 + _INDEX.size
            elif tag == _RESULT:
                if len(view) - at < 1 + _LENGTH.size:
                    break
                (length,) = _LENGTH.unpack_from(view, at + 1)
                end = at + 1 + _LENGTH.size + length
                if len(view) < end:
                    break
                child.result = bytes(view[at + 1 + _LENGTH.size : end])
                at = end
            else:  # not our framing: treat as a dead child
                at = len(view)
        del child.buffer[:at]
        return False

    def _finish(self, child: _Child, pending: deque[Sequence[int]]) -> list[tuple[int, Part]]:
        _, status = os.waitpid(child.pid, 0)
        if status == 0 and child.result is not None:
            os.close(child.fd)
            return [(child.part[0], pickle.loads(child.result))]
        # It died without a result (its memory limit, a signal): never decided here,
        # where nothing could stop it.
        return self._stop(child, pending, "memory")

    def _stop(self, child: _Child, pending: deque[Sequence[int]], why: str) -> list[tuple[int, Part]]:
        os.close(child.fd)
        self._stops += 1
        part = list(child.part)
        stuck = child.current if child.current is not None else part[0]
        at = part.index(stuck)
        before, after = part[:at], part[at + 1 :]
        if after:
            pending.appendleft(after)
        if before:
            pending.appendleft(before)
        return [(stuck, self.stopped(stuck, self._failing_packages(stuck), why))]

    def _failing_packages(self, index: int) -> list[str]:
        """The packages that, decided alone for this resource (under the same limits), do
        not finish in time or die."""
        children: dict[int, str] = {}
        failing: list[str] = []
        for package in self.packages:
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    _limit_memory(self.memory_mb)
                    self.probe(index, package)
                    code = 0
                finally:
                    os._exit(code)
            children[pid] = package
        deadline = time.monotonic() + self.timeout
        while children and time.monotonic() < deadline:
            for pid in list(children):
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    if status != 0:
                        failing.append(children[pid])
                    del children[pid]
            time.sleep(0.01)
        for pid in children:
            _kill(pid)
        return sorted([*failing, *children.values()]) or list(self.packages)


def _limit_memory(memory_mb: int) -> None:
    """Let this (forked) process allocate at most ``memory_mb`` beyond what it holds now."""
    if memory_mb <= 0:
        return
    import resource

    with contextlib.suppress(OSError, ValueError):
        pages = int(open("/proc/self/statm").read().split()[0])  # noqa: SIM115 - a forked child, about to work
        limit = pages * os.sysconf("SC_PAGE_SIZE") + memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
