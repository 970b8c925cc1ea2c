"""Plain KServe: a minimal ``kserve.Model`` serving a joblib-saved scikit-learn model, for
``bench/serving_bench.py`` (the "plain KServe ModelServer" rows).

KServe's Python ModelServer and nothing of modelplane's: no gateway, no access check,
no body limits, no metrics of ours. The model is what KServe's own sklearn server does:
``predict`` on the decoded inputs, answered with ``get_predict_response``. It serves on
a listening socket the benchmark binds to 127.0.0.1 and passes as a file descriptor
(KServe's RESTServer would bind 0.0.0.0). Configured through the environment, as KServe
parses ``argv`` at import: ``BENCH_LISTEN_FD``, ``BENCH_MODEL`` (a joblib file),
``BENCH_MODEL_NAME`` and ``BENCH_EVENT_LOOP`` (KServe's ``--event-loop``: ``auto``, its
default, picks uvloop; modelplane's replicas use ``asyncio``). Logging as modelplane's
replicas have it: ``KSERVE_LOGLEVEL=WARNING`` (set by the benchmark) and no access log.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import joblib
import kserve
from kserve.model_server import FASTAPI_APP_IMPORT_STRING
from kserve.protocol.rest.server import RESTServer
from kserve.utils.utils import get_predict_input, get_predict_response


class PlainModel(kserve.Model):
    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path
        self.estimator: Any = None

    def load(self) -> bool:
        self.estimator = joblib.load(self.path)
        self.ready = True
        return True

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        inputs = get_predict_input(payload)
        return get_predict_response(payload, self.estimator.predict(inputs), self.name)


def main() -> None:
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    sock = socket.socket(fileno=int(os.environ["BENCH_LISTEN_FD"]))
    port = sock.getsockname()[1]
    model = PlainModel(os.environ["BENCH_MODEL_NAME"], os.environ["BENCH_MODEL"])
    model.load()
    server = kserve.ModelServer(http_port=port, enable_grpc=False, workers=1)
    server.register_model(model)
    rest = RESTServer(
        FASTAPI_APP_IMPORT_STRING,
        server.dataplane,
        server.model_repository_extension,
        port,
        event_loop=os.environ.get("BENCH_EVENT_LOOP", "auto"),
        grace_period=5,
    )
    rest.run(sockets=[sock])


if __name__ == "__main__":
    main()
