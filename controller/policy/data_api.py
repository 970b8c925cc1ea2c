"""OPA's Data and Policy APIs over the embedded engine, without HTTP.

Called by :mod:`controller.server.data_api`, which maps ``POST|GET|PUT /v1/data/{path}``
and ``GET|PUT|DELETE /v1/policies/{id}`` onto :class:`DataApi` and its errors onto OPA's
status codes. Nothing here knows of HTTP: operations take paths, JSON values and
policy text, and return JSON values or raise :class:`InvalidRequest`,
:class:`~controller.policy.sources.PolicyLoadError` or
:class:`~controller.policy.engine.EngineError`.

A regorus engine is pyo3 "unsendable": it may only be used, and dropped, on the
thread that made it. :class:`DataApi` keeps its engine on one thread of its own;
async callers await that thread's work (the event loop never blocks on the engine),
and every change to the policies and data also runs there, in order, so that thread
is the only writer and no lock is needed. A change may carry a ``commit`` callback
(recording it in the audit log, say): it runs there too, after the new policies or
data compiled and before they are served, and if it raises nothing changes.
"""

from __future__ import annotations

import asyncio
import re
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, TypeVar

from controller.policy.embedded import EmbeddedEngine
from controller.policy.engine import EngineError
from controller.policy.sources import PolicyFile, PolicyLoadError

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
Outcome = tuple[Any, Exception | None]
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


def _detached(exc: Exception) -> Exception:
    """``exc`` made safe to raise on another thread.

    A traceback keeps its frames' locals alive, an engine among them; if the
    exception died on the caller's thread, so would that engine. Known errors are
    rebuilt without a traceback; anything else keeps its type and message, but the
    locals of every frame in its chain are cleared here, on the engine thread."""
    if isinstance(exc, PolicyLoadError):
        return PolicyLoadError(exc.message, exc.file, exc.line, exc.column)
    if isinstance(exc, EngineError):
        return EngineError(str(exc))
    if isinstance(exc, InvalidRequest):
        return InvalidRequest(str(exc))
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        traceback.clear_frames(link.__traceback__)
        link = link.__cause__ or link.__context__
    return exc


class _EngineThread:
    """One thread that runs tasks in the order they were submitted.

    :class:`DataApi` makes, uses and drops its engine only in tasks run here.
    Errors come back through :func:`_detached`."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="regorus")

    def _submit(self, task: Callable[[], T]) -> Future[Outcome]:
        def guarded() -> Outcome:
            try:
                return task(), None
            except Exception as exc:
                return None, _detached(exc)

        try:
            return self._pool.submit(guarded)
        except RuntimeError:  # shut down
            raise EngineError("the Data API is closed") from None

    @staticmethod
    def _unwrap(outcome: Outcome) -> Any:
        value, error = outcome
        if error is not None:
            raise error
        return value

    def run(self, task: Callable[[], T]) -> T:
        """Run ``task`` here and wait for it (blocking the caller)."""
        return self._unwrap(self._submit(task).result())

    async def arun(self, task: Callable[[], T]) -> T:
        """Run ``task`` here; the caller's event loop stays free meanwhile."""
        return self._unwrap(await asyncio.wrap_future(self._submit(task)))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


class DataApi:
    """The Data and Policy APIs over one embedded engine.

    Build it (and close it) from any thread; await its operations from any event
    loop. Use it as a context manager, or call :meth:`close`, to drop the engine on
    its own thread."""

    def __init__(self, files: list[PolicyFile], data: dict[str, Any] | None = None) -> None:
        # The policies and data are replaced whole on the engine thread, never changed
        # in place, so any thread may read the current ones. The engine itself is
        # touched only on that thread.
        self._policies = {f.path.strip("/"): PolicyFile(f.path.strip("/"), f.text) for f in files}
        self._data: dict[str, Any] = dict(data or {})
        self._engine: EmbeddedEngine | None = None
        self._closed = False
        self._thread = _EngineThread()
        try:
            self._thread.run(lambda: self._swap(self._build(self._policies, self._data), self._policies, self._data))
        except BaseException:
            self._thread.shutdown()
            raise

    def __enter__(self) -> DataApi:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Drop the engine on its thread and stop that thread (once; later calls do nothing)."""
        if self._closed:
            return
        self._closed = True
        self._thread.run(lambda: setattr(self, "_engine", None))
        self._thread.shutdown()

    # Tasks: these run on the engine thread only.

    @staticmethod
    def _build(policies: dict[str, PolicyFile], data: dict[str, Any]) -> EmbeddedEngine:
        """A new engine for ``policies`` and ``data`` (raises on a load error)."""
        engine = EmbeddedEngine(list(policies.values()))
        engine.load_data(data)
        return engine

    def _swap(self, engine: EmbeddedEngine, policies: dict[str, PolicyFile], data: dict[str, Any]) -> None:
        self._engine = engine  # the old engine is dropped here, on its own thread
        self._policies, self._data = policies, data

    def _change(self, policies: dict[str, PolicyFile], data: dict[str, Any], commit: Commit | None) -> None:
        """Serve ``policies`` and ``data`` once they load and ``commit`` succeeds; else nothing changes."""
        self._running()
        engine = self._build(policies, data)
        if commit is not None:
            commit()
        self._swap(engine, policies, data)

    def _running(self) -> EmbeddedEngine:
        if self._engine is None:
            raise EngineError("the Data API is closed")
        return self._engine

    # Operations.

    async def query(self, path: str, input_doc: Any = None) -> Any:
        """``data.<path>`` for ``input_doc``; None when undefined.

        Without an input the query sees ``input`` as ``{}``: the engine keeps the
        last input it was given, and a query must never see another caller's."""
        dotted = "/".join(_split(path, identifiers=True))
        doc = {} if input_doc is None else input_doc
        return await self._thread.arun(lambda: self._running().query(dotted, doc))

    async def put_data(self, path: str, value: Any, *, commit: Commit | None = None) -> None:
        """Replace the document at ``data.<path>`` (the whole ``data`` for an empty path)."""
        parts = _split(path, identifiers=False)
        if not parts and not isinstance(value, dict):
            raise InvalidRequest("root data must be an object")

        def task() -> None:
            new = dict(value) if not parts else _with_value(self._data, parts, value, "/".join(parts))
            engine = self._running()
            engine.load_data(new)  # the policies stay compiled: a data write is cheap
            if commit is not None:
                try:
                    commit()
                except BaseException:
                    engine.load_data(self._data)
                    raise
            self._data = new

        await self._thread.arun(task)

    def policies(self) -> list[PolicyFile]:
        return list(self._policies.values())

    def policy(self, policy_id: str) -> PolicyFile | None:
        return self._policies.get(policy_id.strip("/"))

    async def put_policy(self, raw_id: str, text: str, *, commit: Commit | None = None) -> None:
        """Add or replace one policy; on a load error (or a failed ``commit``) nothing changes."""
        pid = policy_id(raw_id)

        def task() -> None:
            self._change({**self._policies, pid: PolicyFile(pid, text)}, self._data, commit)

        await self._thread.arun(task)

    async def delete_policy(self, raw_id: str, *, commit: Commit | None = None) -> bool:
        """Remove one policy (False when there is none by that id); if the others do not
        load without it (or ``commit`` fails), nothing changes."""
        pid = policy_id(raw_id)

        def task() -> bool:
            if pid not in self._policies:
                return False
            self._change({k: v for k, v in self._policies.items() if k != pid}, self._data, commit)
            return True

        return await self._thread.arun(task)
