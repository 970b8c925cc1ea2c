"""A model server replica: one InferenceService's variants served by KServe's ModelServer.

Started by the service's supervisor (:mod:`.supervisor`, through
:mod:`.process`) as ``python -I -m controller.backends.serving.modelserver``,
with the service's configuration (:mod:`.config`) as JSON on standard input
(never in argv, which KServe parses at import) and the listening socket, which the
supervisor holds, inherited as the file descriptor named by ``MODELPLANE_LISTEN_FD``
(without it, the replica binds ``host:port`` itself).

It verifies every variant's artifact digest and loads it (skops, trusted estimator
types only) as a KServe model under the variant's internal name, puts the gateway
(:mod:`.gateway`: access, routing, shadowing, metrics) in front of KServe's app,
prints one JSON line on standard output, ``{"url": "http://127.0.0.1:PORT"}``, and
serves KServe's V1 (``:predict``) and V2 (Open Inference Protocol) endpoints until
SIGTERM or SIGINT: a request's head is limited to
:data:`~controller.http.head_limits.MAX_HEAD_BYTES` (431), inference calls through KServe's data plane directly
(:mod:`.inference`), the rest through KServe's app. A model's predictions are
micro-batched (:mod:`.batching`). Request bodies are limited to :data:`MAX_BODY_BYTES`, arriving
within :data:`BODY_TIMEOUT_S` (413, 408; :mod:`controller.http.limits`). With
``idle_seconds`` set (scale to zero), a replica that has had no call for that long
stops with status :data:`EXIT_IDLE`. A variant that cannot be loaded (missing,
tampered, untrusted types) stops the start: one line ``{"error": "..."}`` and exit
status 1, before anything is served.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from controller.backends.serving.config import MAX_CONFIG_BYTES, ConfigError, ServiceConfig, parse
from controller.backends.serving.gateway import Activity

MAX_BODY_BYTES = 8 << 20  # an inference request: thousands of rows, not an upload
BODY_TIMEOUT_S = 30.0
MAX_ROWS = 10_000  # a request's rows: more is a batch job, not a call
LISTEN_FD_ENV = "MODELPLANE_LISTEN_FD"
PARENT_PID_ENV = "MODELPLANE_PARENT_PID"  # set by .process
DRAIN_SIGNAL = signal.SIGUSR1  # stop accepting, close each connection after its next answer, then exit
DRAIN_S = 5.0
EXIT_IDLE = 75  # EX_TEMPFAIL: stopped for want of calls; the supervisor starts one on the next


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def _socket(config: ServiceConfig) -> socket.socket:
    fd = os.environ.get(LISTEN_FD_ENV)
    if fd is None:
        return _listen(config.host, config.port)
    if not fd.isdigit():
        raise ConfigError(f"{LISTEN_FD_ENV} must be a file descriptor number")
    sock = socket.socket(fileno=int(fd))
    if sock.type != socket.SOCK_STREAM:
        raise ConfigError(f"{LISTEN_FD_ENV} is not a listening stream socket")
    return sock


def _served_model_class() -> type:
    """The KServe model class (defined on first use: importing kserve costs seconds)."""
    import kserve
    import numpy as np
    import pandas as pd
    from kserve.errors import InvalidInput
    from kserve.protocol.infer_type import InferRequest, InferResponse
    from kserve.utils.utils import get_predict_input, get_predict_response

    from controller.backends.serving.batching import MicroBatcher
    from controller.state.artifacts import ArtifactStore

    class ServedVersion(kserve.Model):
        """One registered model version: loaded only after its digest is verified."""

        def __init__(self, name: str, service: str, version: int, store: ArtifactStore, digest: str) -> None:
            super().__init__(name)
            self.service = service  # what answers say they come from, whichever variant answered
            self.version = str(version)
            self.store = store
            self.digest = digest
            self.estimator: Any = None
            self.batcher: Any = None
            self.features: list[str] = []

        def load(self) -> bool:
            self.estimator = self.store.load_model(self.digest)  # verifies the digest first
            self.batcher = MicroBatcher(self.estimator.predict)
            self.features = [str(f) for f in getattr(self.estimator, "feature_names_in_", [])]
            # Rows come as arrays in the features' order (see _rows): the names are checked here.
            warnings.filterwarnings("ignore", message="X does not have valid feature names", category=UserWarning)
            self.ready = True
            return True

        def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
            """Refuse a request that is not one, cheaply, before KServe or pandas builds
            anything from it (a body of millions of empty rows would hold the event loop);
            V1 rows given as objects become an array here, not one DataFrame per row."""
            if isinstance(payload, dict):
                rows = payload.get("instances")
                if not isinstance(rows, list):
                    raise InvalidInput('a V1 request is {"instances": [rows]}, each row a list of feature values')
                _check_rows(len(rows))
                kinds = {type(row) for row in rows}
                if kinds <= {list}:
                    return payload
                if kinds <= {dict}:  # as lists of values in the model's order (KServe checks for a list)
                    return {"instances": self._object_rows(rows).tolist()}
                raise InvalidInput("every row must be a list of feature values, or every row an object")
            if isinstance(payload, InferRequest):
                if not payload.inputs:
                    raise InvalidInput("a V2 request needs one input tensor")
                for tensor in payload.inputs:
                    _check_rows(tensor.shape[0] if tensor.shape else 0)
            return payload

        def _object_rows(self, rows: list[dict[str, Any]]) -> Any:
            """V1 rows given as objects, ``{"feature": value}`` or ``{"feature": [values]}``
            (several rows in one object), as one array in the model's feature order."""
            if not self.features:
                raise InvalidInput("this model knows no feature names: send each row as a list of values")
            known = set(self.features)
            columns: dict[str, list[Any]] = {f: [] for f in self.features}
            total = 0
            for i, row in enumerate(rows):
                if row.keys() != known:
                    unknown, missing = sorted(row.keys() - known), sorted(known - row.keys())
                    problem = (
                        f"names no feature {unknown[0]!r}"
                        if unknown
                        else f"lacks the feature(s) {', '.join(missing[:5])}"
                    )
                    raise InvalidInput(f"row {i} {problem}: each object row holds exactly the model's features")
                sizes = {len(v) if isinstance(v, list) else -1 for v in row.values()}  # -1: one value, not a list
                if len(sizes) != 1 or 0 in sizes:
                    raise InvalidInput(f"row {i}: give every feature one value, or every feature as many values")
                total += max(sizes.pop(), 1)
                _check_rows(total)
                for feature in self.features:
                    value = row[feature]
                    columns[feature].extend(value if isinstance(value, list) else [value])
            try:
                return np.array([columns[f] for f in self.features], dtype=np.float64).T
            except (TypeError, ValueError):
                raise InvalidInput("feature values must be numbers") from None

        async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
            try:
                rows = self._rows(get_predict_input(payload))
            except InvalidInput:
                raise
            except (KeyError, IndexError, ValueError, TypeError, OverflowError) as exc:
                raise InvalidInput(f"the inputs cannot be read as rows of feature values ({exc})") from None
            try:
                result = await self.batcher(rows)  # with the rows of the calls that came with this one
            except ValueError as exc:  # scikit-learn's words name the estimator: not the caller's business
                raise InvalidInput(_refusal(exc)) from None
            response = get_predict_response(payload, result, self.service)
            if isinstance(response, InferResponse):
                response.model_version = self.version  # V2 answers name the registry version
            return response

        def _rows(self, inputs: Any) -> Any:
            """The inputs as a 2-D array of numbers in the model's feature order. An array,
            not a DataFrame: scikit-learn checks a DataFrame's names and dtypes on every
            call, which costs more than the prediction of one row."""
            if isinstance(inputs, pd.DataFrame):
                missing = [f for f in self.features if f not in inputs.columns]
                if missing:
                    raise InvalidInput(f"inputs lack the feature(s) {', '.join(missing[:5])}")
                inputs = (inputs[self.features] if self.features else inputs).to_numpy()
            shape = getattr(inputs, "shape", None)
            if shape is None or len(shape) != 2:
                raise InvalidInput("inputs must be rows of feature values (a 2-dimensional array)")
            if shape[0] == 0:
                raise InvalidInput("inputs hold no rows")
            if self.features and shape[1] != len(self.features):
                raise InvalidInput(f"each row must hold {len(self.features)} feature values, not {shape[1]}")
            if inputs.dtype.kind not in "biuf":
                try:
                    inputs = inputs.astype(np.float64)
                except (TypeError, ValueError):
                    raise InvalidInput("feature values must be numbers") from None
            return inputs

    def _refusal(exc: ValueError) -> str:
        if any(word in str(exc) for word in ("NaN", "infinity", "too large")):
            return "the model cannot predict these inputs: they hold missing (null, NaN) or infinite values"
        return "the model cannot predict these inputs: every value must be a finite number"

    def _check_rows(count: int) -> None:
        if count > MAX_ROWS:
            raise InvalidInput(f"at most {MAX_ROWS} rows a request, not {count}")
        if count < 1:
            raise InvalidInput("inputs hold no rows")

    return ServedVersion


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Any:
    """An error in KServe's shape, ``{"error": message}``."""
    from starlette.responses import JSONResponse

    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _http_error(request: Any, exc: Exception) -> Any:
    from starlette.exceptions import HTTPException

    from controller.http.limits import error_headers

    assert isinstance(exc, HTTPException)
    return _error(exc.status_code, str(exc.detail), error_headers(exc))


def serve(config: ServiceConfig, listening: socket.socket | None = None) -> int:
    """Load the variants, put the gateway in front, announce the URL, serve until stopped;
    the exit status (0, or :data:`EXIT_IDLE` after ``idle_seconds`` without a call)."""
    from kserve import ModelServer
    from kserve.model_server import FASTAPI_APP_IMPORT_STRING
    from kserve.protocol.rest.server import RESTServer

    from controller.backends.serving.access import access_decider
    from controller.http.head_limits import BoundedHttpTools
    from controller.state.artifacts import ArtifactStore

    store = ArtifactStore(Path(config.artifacts))
    for variant in config.variants:
        store.verify(variant.digest)  # a missing or tampered artifact fails the start before KServe loads
    served = _served_model_class()
    models = [
        served(v.internal_name(config.service), config.service, v.version, store, v.digest) for v in config.variants
    ]
    for model in models:
        model.load()
    decide = access_decider(config.service, config.environment, config.access_data)
    sock = listening or _socket(config)
    host, port = sock.getsockname()[:2]
    server = ModelServer(http_port=port, enable_grpc=False, enable_docs_url=False, workers=1)
    import logging

    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)  # ModelServer() set it back to INFO
    logging.getLogger("uvicorn.error").setLevel(logging.ERROR)  # not a line per malformed request: the log is bounded
    for model in models:
        server.register_model(model)
    rest = RESTServer(
        FASTAPI_APP_IMPORT_STRING,
        server.dataplane,
        server.model_repository_extension,
        port,
        event_loop="uvloop",
        grace_period=5,
    )
    rest.config.access_log = False  # one formatted line per call, for nobody
    rest.config.http = BoundedHttpTools  # httptools, with a bound on the request head (431)
    from kserve.model_server import app
    from prometheus_client import REGISTRY
    from starlette.exceptions import HTTPException

    from controller.backends.serving.gateway import Activity, Gateway
    from controller.backends.serving.inference import Inference
    from controller.backends.serving.metrics import Metrics
    from controller.http.limits import BodyLimits

    # Added last, so outermost: a body over the limit is refused before it is counted or read.
    # KServe's /metrics serves the default registry: these metrics come out there too.
    activity = Activity()
    inference = Inference(server.dataplane)  # inference calls skip KServe's FastAPI app (see .inference)
    app.add_middleware(
        Gateway, config=config, decide=decide, infer=inference, metrics=Metrics(REGISTRY), activity=activity
    )
    app.add_middleware(BodyLimits, max_bytes=MAX_BODY_BYTES, seconds=BODY_TIMEOUT_S, respond=_error)
    app.add_exception_handler(HTTPException, _http_error)
    idle = _stop_when_idle(rest, activity, config.idle_seconds) if config.idle_seconds else threading.Event()
    app.router.on_startup.append(lambda: _drain_on_signal(rest, activity))
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    print(json.dumps({"url": url}), flush=True)
    # Nobody reads standard output after the announcement: were a library to log there,
    # a full pipe would block the server. From here on it goes nowhere.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    # What is loaded now (KServe, scikit-learn, the models) lives as long as the process: out of
    # the collector's sight, so that its full collections stop scanning it under load (they
    # held every call in flight for ~100 ms: the p99 at 32 concurrent calls, docs/benchmarks.md).
    gc.freeze()
    rest.run(sockets=[sock])
    return EXIT_IDLE if idle.is_set() else 0


def _drain_on_signal(rest: Any, activity: Activity) -> None:
    """On :data:`DRAIN_SIGNAL` (a reload replaces this replica): stop accepting connections,
    answer each open one once more with ``Connection: close``, and exit once none is left
    (at most :data:`DRAIN_S` later). Closing idle keep-alive connections at once instead
    would race with the calls clients are sending on them."""
    import asyncio

    server = rest._server  # uvicorn's Server
    loop = asyncio.get_running_loop()

    def drain() -> None:
        activity.draining = True
        for listener in server.servers:
            listener.close()  # this process stops accepting; the socket stays open in the others
        deadline = time.monotonic() + DRAIN_S

        def check() -> None:
            if not server.server_state.connections or time.monotonic() >= deadline:
                server.should_exit = True
            else:
                loop.call_later(0.05, check)

        check()

    loop.add_signal_handler(DRAIN_SIGNAL, drain)


def _stop_when_idle(rest: Any, activity: Activity, seconds: float) -> threading.Event:
    """Stop the server gracefully once it has had no call for ``seconds``; the event is
    set when it did."""
    fired = threading.Event()
    server = rest._server  # uvicorn's Server: setting should_exit ends its serve loop gracefully

    def watch() -> None:
        while not server.should_exit:
            time.sleep(min(1.0, seconds / 4))
            if activity.in_flight == 0 and time.monotonic() - activity.last >= seconds:
                fired.set()
                server.should_exit = True

    threading.Thread(target=watch, name="idle-watch", daemon=True).start()
    return fired


def _end_with_parent() -> None:
    """Ask Linux to send SIGTERM when the process that started this one ends, and end
    now if it already has: no replica outlives its supervisor."""
    parent = os.environ.get(PARENT_PID_ENV)
    if parent is None or not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if str(os.getppid()) != parent:
        sys.exit(0)


def run_forked(config: ServiceConfig, listening: socket.socket, announce: int, parent: int) -> int:
    """The body of a replica forked from its supervisor (see :func:`.process.fork`): leave the
    supervisor's signal handling and files behind, announce on ``announce``, serve."""
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR1):
        signal.signal(signum, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)
    os.environ[PARENT_PID_ENV] = str(parent)
    _end_with_parent()
    os.dup2(announce, sys.stdout.fileno())
    keep = sorted({0, 1, 2, listening.fileno()})
    for low, high in zip(keep, [*keep[1:], os.sysconf("SC_OPEN_MAX")], strict=True):
        os.closerange(low + 1, high)  # the supervisor's lock above all: it must not outlive the supervisor
    import logging

    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    try:
        return serve(config, listening)
    except Exception as exc:
        _report(exc)
        return 1


def _report(exc: Exception) -> None:
    """One line for the parent, never a traceback with paths and secrets."""
    from controller.state.artifacts import ArtifactError

    known = (ConfigError, ArtifactError, OSError)
    message = str(exc) if isinstance(exc, known) else f"{type(exc).__name__}: {exc}"
    print(json.dumps({"error": message}), flush=True)


def main() -> int:
    import logging

    _end_with_parent()
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    try:
        return serve(parse(sys.stdin.read(MAX_CONFIG_BYTES)))
    except Exception as exc:
        _report(exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
