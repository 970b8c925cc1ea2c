"""Request metrics of the model server, as units: which paths count, under which labels,
and what an app that fails or answers 4xx records."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from controller.backends.serving.metrics import BUCKETS, UNKNOWN, Metrics, RequestMetrics, inference_target


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/v1/models/bc:predict", ("bc", "v1")),
        ("/v2/models/bc/infer", ("bc", "v2")),
        ("/v2/models/bc/versions/3/infer", ("bc", "v2")),
        ("/v2/health/ready", None),
        ("/v2/models/bc/ready", None),
        ("/metrics", None),
        ("/v1/models/bc:explain", None),
        ("/v1/models/a/b:predict", None),
    ],
)
def test_only_inference_paths_count(path: str, target: tuple[str, str] | None) -> None:
    assert inference_target(path) == target


def test_the_buckets_start_below_a_millisecond() -> None:
    assert BUCKETS[0] == 0.0001 and sum(b < 0.005 for b in BUCKETS) >= 6  # KServe's first bucket is 5 ms


def _run(middleware: RequestMetrics, path: str) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    asyncio.run(middleware({"type": "http", "path": path}, receive, send))
    return sent


def _answering(status: int) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_requests_are_counted_by_model_protocol_and_code() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    for status, path in ((200, "/v1/models/bc:predict"), (200, "/v1/models/bc:predict"), (400, "/v2/models/bc/infer")):
        _run(RequestMetrics(_answering(status), metrics, ["bc"]), path)
    total = "modelplane_inference_requests_total"
    assert _value(registry, total, model="bc", protocol="v1", code="200") == 2
    assert _value(registry, total, model="bc", protocol="v2", code="400") == 1
    count = "modelplane_inference_request_duration_seconds_count"
    assert _value(registry, count, model="bc", protocol="v1") == 2
    assert _value(registry, "modelplane_inference_requests_in_flight", model="bc") == 0


def test_made_up_model_names_share_one_label() -> None:
    registry = CollectorRegistry()
    middleware = RequestMetrics(_answering(404), Metrics(registry), ["bc"])
    for i in range(50):
        _run(middleware, f"/v1/models/guess-{i}:predict")
    assert _value(registry, "modelplane_inference_requests_total", model=UNKNOWN, protocol="v1", code="404") == 50
    labels = {s.labels["model"] for m in registry.collect() for s in m.samples if "model" in s.labels}
    assert labels == {UNKNOWN}


def test_an_app_that_fails_before_answering_counts_as_a_500_and_leaves_nothing_in_flight() -> None:
    registry = CollectorRegistry()

    async def failing(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        _run(RequestMetrics(failing, Metrics(registry), ["bc"]), "/v1/models/bc:predict")
    assert _value(registry, "modelplane_inference_requests_total", model="bc", protocol="v1", code="500") == 1
    assert _value(registry, "modelplane_inference_requests_in_flight", model="bc") == 0


def test_other_paths_pass_through_uncounted() -> None:
    registry = CollectorRegistry()
    sent = _run(RequestMetrics(_answering(200), Metrics(registry), ["bc"]), "/v2/health/ready")
    assert sent[0]["status"] == 200
    assert _value(registry, "modelplane_inference_requests_total", model="bc", protocol="v1", code="200") == 0
