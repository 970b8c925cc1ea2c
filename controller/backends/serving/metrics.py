"""Request metrics of a local InferenceService, in Prometheus' format, with buckets fine
enough for sub-millisecond predictions (KServe's own histograms start at 5 ms).

Recorded by the gateway (:mod:`.gateway`) in each model server replica, for the
inference calls it routes, and served on the replica's ``/metrics`` with KServe's
own. Labels are the service, the variant (``stable``, ``canary``, ``shadow``;
``none`` for a call refused before it was routed), the model version and the
protocol (``v1``, ``v2``):

- ``modelplane_inference_request_duration_seconds`` (histogram; service, variant, version, protocol)
- ``modelplane_inference_requests_total`` (counter; service, variant, version, protocol, code)
- ``modelplane_inference_requests_in_flight`` (gauge; service, variant)

With several replicas behind one socket, a scrape reaches one of them: the supervisor
therefore runs its replicas in prometheus_client's multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``, set before any replica exists), and every replica
answers ``/metrics`` with :func:`exposition`, the sum over all of them, dead ones
included (so that counters never go back).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

# From 0.1 ms: predict_proba on one row of the example model costs about 0.6 ms.
BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class Metrics:
    """The metrics of one replica, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.duration = Histogram(
            "modelplane_inference_request_duration_seconds",
            "Time from an inference call's arrival to its answer, by service, variant, version and protocol.",
            ("service", "variant", "version", "protocol"),
            buckets=BUCKETS,
            registry=registry,
        )
        self.requests = Counter(
            "modelplane_inference_requests",
            "Inference calls answered, by service, variant, version, protocol and HTTP status code.",
            ("service", "variant", "version", "protocol", "code"),
            registry=registry,
        )
        self.in_flight = Gauge(
            "modelplane_inference_requests_in_flight",
            "Inference calls being answered now, by service and variant.",
            ("service", "variant"),
            registry=registry,
            multiprocess_mode="livesum",  # the replicas alive now
        )


def exposition() -> tuple[bytes, str] | None:
    """Every replica's metrics, summed, when they run in multiprocess mode (None otherwise)."""
    directory = os.environ.get(MULTIPROCESS_ENV)
    if not directory:
        return None
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)
    return generate_latest(registry), CONTENT_TYPE_LATEST
