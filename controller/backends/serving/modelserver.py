"""The local model server process: registered model versions served by KServe's ModelServer.

Started by :mod:`controller.backends.serving.process` as
``python -I -m controller.backends.serving.modelserver``, with its configuration as
one JSON object on standard input (never in argv, which KServe parses at import):

    {"host": "127.0.0.1", "port": 0, "artifacts": "/abs/artifact/store",
     "models": [{"name": "breast-cancer-api", "digest": "sha256:..."}]}

It binds its socket itself (127.0.0.1 unless told otherwise; KServe's own REST server
would bind 0.0.0.0), loads every model from the artifact store after verifying its
digest (skops, trusted estimator types only), then prints one JSON line on standard
output, ``{"url": "http://127.0.0.1:PORT"}``, and serves KServe's V1 (``:predict``)
and V2 (Open Inference Protocol) endpoints until SIGTERM or SIGINT, with request
metrics on ``/metrics`` (:mod:`.metrics`). Request bodies are limited to
:data:`MAX_BODY_BYTES`, arriving within :data:`BODY_TIMEOUT_S` (413, 408;
:mod:`controller.http.limits`). A model that
cannot be loaded (missing, tampered, untrusted types) stops the start: one line
``{"error": "..."}`` and exit status 1, before anything listens for requests.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

MAX_CONFIG_BYTES = 1 << 20
MAX_BODY_BYTES = 8 << 20  # an inference request: thousands of rows, not an upload
BODY_TIMEOUT_S = 30.0


class ConfigError(Exception):
    """The configuration on standard input is not what this process needs."""


def read_config(text: str) -> dict[str, Any]:
    """The process's configuration, checked: host, port, the artifact store, the models."""
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"configuration is not JSON: {exc}") from None
    if not isinstance(config, dict):
        raise ConfigError("configuration must be a JSON object")
    host, port, artifacts, models = (config.get(k) for k in ("host", "port", "artifacts", "models"))
    if not isinstance(host, str) or not host:
        raise ConfigError("'host' must be a host name or address")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise ConfigError("'port' must be a port number (0: any free port)")
    if not isinstance(artifacts, str) or not os.path.isabs(artifacts):
        raise ConfigError("'artifacts' must be the artifact store's absolute path")
    if not isinstance(models, list) or not models:
        raise ConfigError("'models' must list at least one model")
    names: set[str] = set()
    for model in models:
        if not isinstance(model, dict) or not isinstance(model.get("name"), str) or not model["name"]:
            raise ConfigError("every model needs a 'name'")
        if not isinstance(model.get("digest"), str):
            raise ConfigError(f"model {model['name']!r} needs the 'digest' of its artifact")
        if model["name"] in names:
            raise ConfigError(f"model {model['name']!r} is listed twice")
        names.add(model["name"])
    return config


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _served_model_class() -> type:
    """The KServe model class (defined on first use: importing kserve costs seconds)."""
    import kserve
    import pandas as pd
    from kserve.errors import InvalidInput
    from kserve.utils.utils import get_predict_input, get_predict_response

    from controller.state.artifacts import ArtifactStore

    class ServedVersion(kserve.Model):
        """One registered model version: loaded only after its digest is verified."""

        def __init__(self, name: str, store: ArtifactStore, digest: str) -> None:
            super().__init__(name)
            self.store = store
            self.digest = digest
            self.estimator: Any = None
            self.features: list[str] = []

        def load(self) -> bool:
            self.estimator = self.store.load_model(self.digest)  # verifies the digest first
            self.features = [str(f) for f in getattr(self.estimator, "feature_names_in_", [])]
            self.ready = True
            return True

        def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
            rows = self._rows(get_predict_input(payload))
            try:
                result = self.estimator.predict(rows)
            except ValueError as exc:
                raise InvalidInput(f"the model cannot predict these inputs: {exc}") from None
            return get_predict_response(payload, result, self.name)

        def _rows(self, inputs: Any) -> Any:
            if isinstance(inputs, pd.DataFrame):
                missing = [f for f in self.features if f not in inputs.columns]
                if missing:
                    raise InvalidInput(f"inputs lack the feature(s) {', '.join(missing[:5])}")
                return inputs[self.features] if self.features else inputs
            shape = getattr(inputs, "shape", None)
            if shape is None or len(shape) != 2:
                raise InvalidInput("inputs must be rows of feature values (a 2-dimensional array)")
            if self.features and shape[1] != len(self.features):
                raise InvalidInput(f"each row must hold {len(self.features)} feature values, not {shape[1]}")
            if inputs.dtype.kind not in "biuf":
                raise InvalidInput(f"feature values must be numbers, not {inputs.dtype}")
            return pd.DataFrame(inputs, columns=self.features) if self.features else inputs

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


def serve(config: dict[str, Any]) -> None:
    """Load the models, listen, announce the URL on standard output, and serve until stopped."""
    from kserve import ModelServer
    from kserve.model_server import FASTAPI_APP_IMPORT_STRING
    from kserve.protocol.rest.server import RESTServer

    from controller.state.artifacts import ArtifactStore

    store = ArtifactStore(Path(config["artifacts"]))
    for model in config["models"]:
        store.verify(model["digest"])  # a missing or tampered artifact fails the start before KServe loads
    served = _served_model_class()
    models = [served(m["name"], store, m["digest"]) for m in config["models"]]
    for model in models:
        model.load()
    sock = _listen(config["host"], config["port"])
    host, port = sock.getsockname()[:2]
    server = ModelServer(http_port=port, enable_grpc=False, enable_docs_url=False, workers=1)
    for model in models:
        server.register_model(model)
    rest = RESTServer(
        FASTAPI_APP_IMPORT_STRING,
        server.dataplane,
        server.model_repository_extension,
        port,
        event_loop="asyncio",
        grace_period=5,
    )
    from kserve.model_server import app
    from prometheus_client import REGISTRY
    from starlette.exceptions import HTTPException

    from controller.backends.serving.metrics import Metrics, RequestMetrics
    from controller.http.limits import BodyLimits

    # Added last, so outermost: a body over the limit is refused before it is counted or read.
    # KServe's /metrics serves the default registry: these metrics come out there too.
    app.add_middleware(RequestMetrics, metrics=Metrics(REGISTRY), models=[m.name for m in models])
    app.add_middleware(BodyLimits, max_bytes=MAX_BODY_BYTES, seconds=BODY_TIMEOUT_S, respond=_error)
    app.add_exception_handler(HTTPException, _http_error)
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    print(json.dumps({"url": url}), flush=True)
    # Nobody reads standard output after the announcement: were a library to log there,
    # a full pipe would block the server. From here on it goes nowhere.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    rest.run(sockets=[sock])


def main() -> int:
    import logging

    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    try:
        config = read_config(sys.stdin.read(MAX_CONFIG_BYTES))
        serve(config)
    except Exception as exc:  # one line for the parent, never a traceback with paths and secrets
        from controller.state.artifacts import ArtifactError

        known = (ConfigError, ArtifactError, OSError)
        message = str(exc) if isinstance(exc, known) else f"{type(exc).__name__}: {exc}"
        print(json.dumps({"error": message}), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
