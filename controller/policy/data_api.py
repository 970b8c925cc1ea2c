"""OPA's Data and Policy APIs over the embedded engine, without HTTP.

Called by :mod:`controller.server.data_api`, which maps ``POST|GET|PUT /v1/data/{path}``
and ``GET|PUT|DELETE /v1/policies/{id}`` onto :class:`DataApi` and its errors onto OPA's
status codes. Nothing here knows of HTTP: operations take paths, JSON values and
policy text, and return JSON values or raise :class:`InvalidRequest`,
:class:`~controller.policy.sources.PolicyLoadError` or
:class:`~controller.policy.engine.EngineError` (``PolicyTimeout`` among them).

The engine runs in a process of its own (:class:`~controller.policy.worker.EngineWorker`),
so every evaluation has a time limit and a runaway rule is stopped there, never in
the server. One thread of this process talks to it: async callers await that
thread's work (the event loop never blocks on the engine), and every change to the
policies and data also runs there, in order, so that thread is the only writer and no
lock is needed. A change may carry a ``commit`` callback (recording it in the audit
log, say): it runs there too, after the new policies or data compiled (and a written
policy's package evaluated once, with no input, within the time limit) and before
they are served; if it raises, nothing changes.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, TypeVar

from controller.policy.engine import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT, EngineError
from controller.policy.sources import (
    BUILTIN,
    PolicyFile,
    PolicyLoadError,
    in_library,
    library_packages,
    package_of,
    package_problem,
)
from controller.policy.worker import EngineWorker

# A path deeper than this is refused: queries are compiled to Rego references and
# written data nests one object per segment; no real document is this deep.
MAX_PATH_SEGMENTS = 64
# Queried paths become Rego references (``data.a.b``): only identifiers, so a path
# can never inject Rego into the query.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Policy ids are relative paths (``policies/access.rego``) of plain segments: no ``..``,
# no hidden or empty segments, no backslashes, so an id can never name a place outside
# wherever policies are kept.
_POLICY_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*\Z")
MAX_POLICY_ID_CHARS = 256

T = TypeVar("T")
Commit = Callable[[], object]


class InvalidRequest(ValueError):
    """The caller's mistake: a path that cannot be queried, data of the wrong shape."""


def _split(path: str, *, identifiers: bool) -> list[str]:
    parts = [p for p in path.split("/") if p]
    if len(parts) > MAX_PATH_SEGMENTS:
        raise InvalidRequest(f"path has {len(parts)} segments; at most {MAX_PATH_SEGMENTS} are allowed")
    if identifiers:
        for part in parts:
            if not _IDENTIFIER.match(part):
                raise InvalidRequest(f"path segment {part!r} is not a Rego identifier ([A-Za-z_][A-Za-z0-9_]*)")
    return parts


def policy_id(raw: str) -> str:
    """``raw`` as a policy id, or :class:`InvalidRequest` (a leading or trailing slash is
    refused like any empty segment, never quietly dropped)."""
    value = raw
    if not value:
        raise InvalidRequest("a policy needs an id")
    if len(value) > MAX_POLICY_ID_CHARS or not _POLICY_ID.match(value):
        raise InvalidRequest(
            f"policy id {value[:MAX_POLICY_ID_CHARS]!r} is not a relative path of plain names "
            f"(letters, digits, _ . -, not starting with '.'; at most {MAX_POLICY_ID_CHARS} characters)"
        )
    return value


def _with_value(data: dict[str, Any], parts: list[str], value: Any, path: str) -> dict[str, Any]:
    """A copy of ``data`` with ``value`` at ``parts``; objects on the way are copied,
    the rest is shared (documents are replaced, never changed in place)."""
    head, rest = parts[0], parts[1:]
    if not rest:
        return {**data, head: value}
    child = data.get(head, {})
    if not isinstance(child, dict):
        raise InvalidRequest(f"/{path} is not an object path")
    return {**data, head: _with_value(child, rest, value, path)}


class _EngineThread:
    """One thread that runs tasks in the order they were submitted."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy-engine")

    def _submit(self, task: Callable[[], T]) -> Future[T]:
        try:
            return self._pool.submit(task)
        except RuntimeError:  # shut down
            raise EngineError("the Data API is closed") from None

    def run(self, task: Callable[[], T]) -> T:
        """Run ``task`` here and wait for it (blocking the caller)."""
        return self._submit(task).result()

    async def arun(self, task: Callable[[], T]) -> T:
        """Run ``task`` here; the caller's event loop stays free meanwhile."""
        return await asyncio.wrap_future(self._submit(task))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


class DataApi:
    """The Data and Policy APIs over one engine, each evaluation bounded by ``timeout``
    seconds and the engine's process by ``memory_mb``. With ``check``, every package is
    evaluated once with no input before anything is served (a start refuses policies
    that load but cannot evaluate).

    Build it (and close it) from any thread; await its operations from any event
    loop. Use it as a context manager, or call :meth:`close`, to stop the engine."""

    def __init__(
        self,
        files: list[PolicyFile],
        data: dict[str, Any] | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        memory_mb: int = DEFAULT_MEMORY_MB,
        check: bool = False,
    ) -> None:
        # The policies and data are replaced whole on the engine thread, never changed
        # in place, so any thread may read the current ones.
        self._policies = {f.path.strip("/"): PolicyFile(f.path.strip("/"), f.text) for f in files}
        # The built-in library's packages, when it is served: written policies may not change them.
        self._library = library_packages() if any(p.startswith(f"{BUILTIN}/") for p in self._policies) else set()
        self._data: dict[str, Any] = dict(data or {})
        self._closed = False
        self._thread = _EngineThread()
        self._worker: EngineWorker | None = None

        def start() -> None:
            policies = list(self._policies.values())
            self._worker = EngineWorker(
                policies, json.dumps(self._data), timeout=timeout, memory_mb=memory_mb, check=None if check else ()
            )

        try:
            self._thread.run(start)
        except BaseException:
            self._thread.shutdown()
            raise

    def __enter__(self) -> DataApi:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop the engine and its thread (once; later calls do nothing)."""
        if self._closed:
            return
        self._closed = True
        self._thread.run(self._stop)
        self._thread.shutdown()

    @property
    def restarts(self) -> int:
        """How many times the engine was stopped (a time limit, its memory) and started again."""
        return self._worker.restarts if self._worker is not None else 0

    # Tasks: these run on the engine thread only.

    def _stop(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.close()

    def _running(self) -> EngineWorker:
        if self._worker is None:
            raise EngineError("the Data API is closed")
        return self._worker

    def _change(self, policies: dict[str, PolicyFile], commit: Commit | None, written: str) -> None:
        """Serve ``policies`` once they load, every package evaluates once with no input
        (a package may call another's functions, through any import: each must still
        work), and ``commit`` succeeds; else nothing changes."""
        try:
            self._running().replace(list(policies.values()), json.dumps(self._data), check=None, commit=commit)
        except PolicyLoadError as exc:
            if exc.file is None:  # not placed by the engine: it is the written policy's
                raise PolicyLoadError(exc.message, written, 1, 1) from None
            raise
        self._policies = policies

    def _not_the_library(self, pid: str, written: PolicyFile | None) -> None:
        """Refuse a write that would change the built-in library: its files, or its
        packages (Rego would merge a written file into them silently)."""
        if pid.split("/", 1)[0] == BUILTIN:
            raise InvalidRequest(
                f"policy {pid!r} is the built-in library's: it cannot be written or deleted over HTTP "
                "(upgrade modelplane to change it, or serve your own copy without 'builtin')"
            )
        found = package_of(written) if written is not None else None
        if found and (problem := package_problem(found[0])):
            raise InvalidRequest(problem)
        if found and in_library(found[0], self._library):
            raise InvalidRequest(
                f"package {found[0]} is the built-in library's (or inside its namespace): a written policy may not "
                f"add to it; use a package of your own (e.g. platform_{found[0].replace('.', '_')})"
            )

    # Operations.

    async def query(self, path: str, input_doc: Any = None) -> Any:
        """``data.<path>`` for ``input_doc``; None when undefined.

        Without an input the query sees ``input`` as ``{}``, never another caller's.
        Raises :class:`~controller.policy.worker.PolicyTimeout` when the evaluation
        does not finish within the time limit (it is stopped)."""
        dotted = ".".join(_split(path, identifiers=True))
        doc = {} if input_doc is None else input_doc
        return await self._thread.arun(lambda: self._running().query(dotted, doc))

    async def put_data(self, path: str, value: Any, *, commit: Commit | None = None) -> None:
        """Replace the document at ``data.<path>`` (the whole ``data`` for an empty path)."""
        parts = _split(path, identifiers=False)
        if not parts and not isinstance(value, dict):
            raise InvalidRequest("root data must be an object")

        def task() -> None:
            new = dict(value) if not parts else _with_value(self._data, parts, value, "/".join(parts))
            worker = self._running()
            worker.set_data(json.dumps(new))  # the policies stay compiled: a data write is cheap
            if commit is not None:
                try:
                    commit()
                except BaseException:
                    worker.set_data(json.dumps(self._data))
                    raise
            self._data = new

        await self._thread.arun(task)

    def policies(self) -> list[PolicyFile]:
        return list(self._policies.values())

    def policy(self, policy_id: str) -> PolicyFile | None:
        return self._policies.get(policy_id.strip("/"))

    async def put_policy(self, raw_id: str, text: str, *, commit: Commit | None = None) -> None:
        """Add or replace one policy; if it changes the library, does not compile,
        conflicts with the others, or leaves any package unable to evaluate (once, with
        no input, within the time limit), or ``commit`` fails, nothing changes."""
        pid = policy_id(raw_id)
        written = PolicyFile(pid, text)

        def task() -> None:  # on the engine thread: reading the text's package parses it
            self._not_the_library(pid, written)
            self._change({**self._policies, pid: written}, commit, pid)

        await self._thread.arun(task)

    async def delete_policy(self, raw_id: str, *, commit: Commit | None = None) -> bool:
        """Remove one policy (False when there is none by that id); if it is the
        library's, or the rest do not load or every package evaluate without it (or
        ``commit`` fails), nothing changes."""
        pid = policy_id(raw_id)
        self._not_the_library(pid, None)

        def task() -> bool:
            if pid not in self._policies:
                return False
            self._change({k: v for k, v in self._policies.items() if k != pid}, commit, pid)
            return True

        return await self._thread.arun(task)
