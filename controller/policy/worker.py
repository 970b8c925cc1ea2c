"""An embedded engine in a process of its own, where a decision can be stopped.

Used by :class:`controller.policy.data_api.DataApi` (``modelplane policy serve``).
regorus has no execution limit in its Python binding and holds the GIL while it
evaluates, so a runaway rule in the serving process would stall every request,
``/health`` included, and grow without bound. Here the engine lives in a child
process (``python -m controller.policy.worker``): :class:`EngineWorker` sends it one
request at a time and waits at most ``timeout`` seconds for each evaluation. A child
that does not answer in time is killed and a new one is started with the last
policies and data that were kept; the caller gets :class:`PolicyTimeout`. The child's
address space is limited (``memory_mb``), so a rule that allocates without end dies
there, not in the server: the caller gets :class:`EngineError` and the worker is
restarted the same way. The child dies with the server, even mid-evaluation.

The protocol is private to this module: frames of a 4-byte big-endian length and a
JSON object, over the child's stdin and stdout. Nothing is pickled. The child runs
Python isolated (``-I``, from ``/``: nothing in the server's working directory can
shadow a module it imports) with a minimal environment (no tokens or keys of the
server's), and its stderr is the parent's.

Requests (``op``): ``build`` compiles policies with data into a candidate engine and
answers the packages they declare; ``check`` evaluates packages of the candidate
with no input; ``keep`` makes the candidate the engine that answers; ``drop`` discards
it; ``data`` replaces the data of the engine that answers; ``query`` evaluates a path.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO

from controller.policy.engine import DEFAULT_MEMORY_MB, EngineError
from controller.policy.sources import PolicyFile, PolicyLoadError

# Compiling policies and loading data is not an evaluation; it is linear in their size,
# but a large data document takes a while: loads get this long at least.
LOAD_TIMEOUT_S = 60.0
_FRAME = struct.Struct(">I")
_ENVIRONMENT = ("PATH", "LANG", "LC_ALL", "TZ")
_PR_SET_PDEATHSIG = 1
MAX_ANSWER_BYTES = 64 << 20  # an answer the server holds and sends; more is refused


class PolicyTimeout(EngineError):
    """An evaluation did not finish within the time limit; it was stopped."""


class AnswerTooLarge(EngineError):
    """An answer over :data:`MAX_ANSWER_BYTES`: the server does not take it in."""


class EngineStopped(EngineError):
    """The engine's process died during a request (its memory limit, a signal); it was restarted."""


def _how(code: int | None) -> str:
    if code is None:
        return "it did not exit"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


# The child.


def _read_frame(stream: BinaryIO) -> dict[str, Any] | None:
    head = stream.read(_FRAME.size)
    if len(head) < _FRAME.size:
        return None
    (length,) = _FRAME.unpack(head)
    body: dict[str, Any] = json.loads(stream.read(length))
    return body


def _write_frame(stream: BinaryIO, message: dict[str, Any]) -> None:
    body = json.dumps(message).encode()
    stream.write(_FRAME.pack(len(body)) + body)
    stream.flush()


def _error(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, PolicyLoadError):
        return {"error": "load", "message": exc.message, "file": exc.file, "line": exc.line, "column": exc.column}
    return {"error": "engine", "message": str(exc)}


def _serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    # Imported here: the parent imports this module too, and never needs regorus for it.
    from controller.policy.embedded import EmbeddedEngine

    engine: EmbeddedEngine | None = None
    candidate: EmbeddedEngine | None = None
    while (request := _read_frame(stdin)) is not None:
        op = request["op"]
        try:
            if op == "build":
                candidate = None
                built = EmbeddedEngine([PolicyFile(p, t) for p, t in request["policies"]])
                built.set_data_json(request["data"])
                candidate = built
                answer: dict[str, Any] = {"packages": sorted({r.package for r in built.rules()})}
            elif op == "check":
                if candidate is None:
                    raise EngineError("nothing was built to check")
                for package in request["packages"]:
                    candidate.check_package(package)
                answer = {}
            elif op == "keep":
                engine, candidate = candidate, None
                answer = {}
            elif op == "drop":
                candidate = None
                answer = {}
            elif op == "data":
                if engine is None:
                    raise EngineError("no policies are loaded")
                engine.set_data_json(request["data"])
                answer = {}
            elif op == "query":
                if engine is None:
                    raise EngineError("no policies are loaded")
                answer = {"value": engine.query(request["path"], json.loads(request["input"]))}
            else:
                raise EngineError(f"unknown request {op!r}")
        except (EngineError, PolicyLoadError) as exc:
            answer = _error(exc)
        _write_frame(stdout, answer)


def _die_with(parent: int) -> None:
    """Be killed when ``parent`` dies (Linux), even in the middle of a runaway rule."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before that took effect
        os._exit(1)


def main(argv: Sequence[str] | None = None) -> None:
    """The child's entry point: ``python -m controller.policy.worker MEMORY_MB PARENT_PID``."""
    args = list(sys.argv[1:] if argv is None else argv)
    memory_mb = int(args[0])
    _die_with(int(args[1]))
    if memory_mb > 0:
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server; the server stops this
    _serve(sys.stdin.buffer, sys.stdout.buffer)


# The parent.


class EngineWorker:
    """A child process holding an embedded engine; every evaluation is bounded.

    Not thread-safe: one caller at a time (the Data API's engine thread). The policies
    and data the engine answers with are kept here too: a restarted child gets them."""

    def __init__(
        self,
        policies: list[PolicyFile],
        data_json: str,
        *,
        timeout: float,
        memory_mb: int = DEFAULT_MEMORY_MB,
        check: Sequence[str] | None = (),
    ) -> None:
        if timeout <= 0:
            raise ValueError("the time limit must be positive")
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._policies: list[PolicyFile] = []
        self._data_json = "{}"
        self._start()
        try:
            self.replace(policies, data_json, check=check)
        except BaseException:
            self.close()
            raise

    # Operations.

    def replace(
        self,
        policies: list[PolicyFile],
        data_json: str,
        *,
        check: Sequence[str] | None = None,
        commit: Callable[[], object] | None = None,
    ) -> None:
        """Compile ``policies`` with ``data_json`` and answer with them from now on.

        ``check`` names packages to evaluate once, with no input, before anything
        changes (None: every package of the new policies): one that fails or does not
        finish within the time limit is refused as a :class:`PolicyLoadError`, as
        policies that do not compile are. ``commit`` runs last, before the new policies
        answer; if it raises, nothing changes. Raises :class:`EngineError` when the
        engine fails otherwise."""
        packages = self._call({"op": "build", "policies": [[p.path, p.text] for p in policies], "data": data_json})[
            "packages"
        ]
        try:
            chosen = packages if check is None else [p for p in check if p in packages]
            for package in chosen:  # one at a time: each has the time limit, and a stop names it
                self._call({"op": "check", "packages": [package]}, evaluation=True)
            if commit is not None:
                commit()
        except (PolicyTimeout, EngineStopped) as exc:  # the child was restarted with what was kept
            raise PolicyLoadError(f"{exc} (evaluated once with no input before serving)") from None
        except BaseException:
            self._call({"op": "drop"})
            raise
        self._call({"op": "keep"})
        self._policies, self._data_json = list(policies), data_json

    def set_data(self, data_json: str) -> None:
        """Replace the whole data document; the policies stay compiled."""
        self._call({"op": "data", "data": data_json})
        self._data_json = data_json

    def query(self, dotted: str, input_doc: Any) -> Any:
        """``data.<dotted>`` for ``input_doc``; None when undefined. Raises
        :class:`PolicyTimeout` when it does not finish within the time limit."""
        return self._call({"op": "query", "path": dotted, "input": json.dumps(input_doc)}, evaluation=True).get("value")

    def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            assert process.stdin is not None
            process.stdin.close()  # the child sees end of input and leaves
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()

    # The child.

    def _start(self) -> None:
        # Isolated (-I): neither the working directory (a platform repo, where anyone who
        # can push could plant a 'select.py') nor PYTHON* variables nor the user's site
        # directory decide what the child imports; it runs from '/'.
        env = {k: os.environ[k] for k in _ENVIRONMENT if k in os.environ}
        self._process = subprocess.Popen(
            [sys.executable, "-I", "-m", "controller.policy.worker", str(self.memory_mb), str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd="/",
            close_fds=True,
        )

    def _restart(self) -> None:
        """Kill the child and start a new one with the policies and data that were kept."""
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        self.restarts += 1
        self._start()
        if self._policies:
            self._call({"op": "build", "policies": [[p.path, p.text] for p in self._policies], "data": self._data_json})
            self._call({"op": "keep"})

    def _call(self, request: dict[str, Any], *, evaluation: bool = False) -> dict[str, Any]:
        if self._process is not None and self._process.poll() is not None:
            self._restart()  # it died while idle (killed from outside): start again before asking
        process = self._process
        if process is None:
            raise EngineError("the policy engine is closed")
        assert process.stdin is not None and process.stdout is not None
        limit = self.timeout if evaluation else max(self.timeout, LOAD_TIMEOUT_S)
        what = ("data." + request["path"]).rstrip(".") if request["op"] == "query" else "the policies"
        if request["op"] == "data":
            what = "the data document"
        if request["op"] == "check":
            what = "package " + ", ".join(request["packages"])
        try:
            body = json.dumps(request).encode()
            process.stdin.write(_FRAME.pack(len(body)) + body)
            process.stdin.flush()
            answer = _receive(process.stdout.fileno(), time.monotonic() + limit)
        except BrokenPipeError:
            answer = None
        except AnswerTooLarge as exc:
            self._restart()  # the rest of the answer is still in the pipe: start clean
            raise EngineError(
                f"the answer for {what} is {exc.args[0]} bytes, over the limit of {MAX_ANSWER_BYTES} bytes: "
                "query a smaller part of the document"
            ) from None
        except TimeoutError:
            self._restart()
            raise PolicyTimeout(
                f"policy-timeout: {what} did not finish within {limit:g} s and was stopped "
                "(fails closed): make its rules cheaper, or raise --policy-timeout"
            ) from None
        if answer is None:
            try:
                code: int | None = process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
            self._restart()
            cause = "a rule allocates without end" if evaluation else "it is too large"
            raise EngineStopped(
                f"the policy engine stopped on {what} ({_how(code)}): over its memory limit of "
                f"{self.memory_mb} MB (--policy-memory) if {cause}; it was restarted"
            )
        if "error" in answer:
            if answer["error"] == "load":
                raise PolicyLoadError(answer["message"], answer["file"], answer["line"], answer["column"])
            raise EngineError(answer["message"])
        return answer


def _receive(fd: int, deadline: float) -> dict[str, Any] | None:
    """One frame from ``fd`` by ``deadline`` (TimeoutError), or None at end of stream."""
    buffer = bytearray()
    need = _FRAME.size
    length: int | None = None
    while True:
        while len(buffer) < need:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(fd, max(need - len(buffer), 1 << 16))
            if not chunk:
                return None
            buffer += chunk
        if length is None:
            (length,) = _FRAME.unpack_from(buffer)
            if length > MAX_ANSWER_BYTES:
                raise AnswerTooLarge(length)
            need = _FRAME.size + length
            continue
        answer: dict[str, Any] = json.loads(bytes(buffer[_FRAME.size : need]))
        return answer


if __name__ == "__main__":
    main()
