"""The gateway as a unit: which paths it lets through, who it lets in (by the policy
library's real access package), how it splits traffic between stable and canary, what
it mirrors to a shadow, and what it records in the metrics."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from controller.backends.serving.access import access_data, access_decider
from controller.backends.serving.config import Caller, ServiceConfig, Variant
from controller.backends.serving.gateway import (
    MAX_SHADOW_IN_FLIGHT,
    Activity,
    Decision,
    DecisionError,
    Gateway,
    WeightedSplit,
)
from controller.backends.serving.inference import Answer
from controller.backends.serving.metrics import BUCKETS, Metrics

SERVICE = "breast-cancer-api"
DIGEST = "sha256:" + "0" * 64
TOKENS = {"alice": "alice-token-0123456789", "eve": "eve-token-0123456789", "bob": "bob-token-0123456789"}
GROUPS = {"alice": ("clinicians",), "eve": ("marketing",), "bob": ("clinicians",)}


def service_doc(require_consent: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "modelplane.io/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": SERVICE},
        "spec": {
            "model": {"name": "classifier", "stage": "Production"},
            "environment": "production",
            "access": {"groups": ["clinicians", "ml-platform"], "requireConsent": require_consent},
        },
    }


def config(*variants: Variant, require_consent: bool = False) -> ServiceConfig:
    callers = tuple(
        Caller(name, hashlib.sha256(token.encode()).hexdigest(), GROUPS[name]) for name, token in TOKENS.items()
    )
    return ServiceConfig(
        SERVICE,
        "production",
        "/nowhere",
        variants or (Variant("stable", "classifier", 3, DIGEST),),
        callers,
        access_data(service_doc(require_consent), None, None),
    )


class Inner:
    """Stands for KServe's app (metadata, readiness) and for the inference path
    (:class:`~controller.backends.serving.inference.Inference`): answers 200 with the
    path the call would have in KServe's app."""

    def __init__(self, status: int = 200) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.headers: list[dict[str, str]] = []  # what the model saw of each inference call's headers
        self.status = status

    async def infer(self, model: str, protocol: str, body: bytes, headers: dict[str, str]) -> Answer:
        path = f"/v1/models/{model}:predict" if protocol == "v1" else f"/v2/models/{model}/infer"
        self.calls.append((path, body))
        self.headers.append(headers)
        return Answer(self.status, json.dumps({"path": path}).encode())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.calls.append((scope["path"], body))
        payload = json.dumps({"path": scope["path"]}).encode()
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": payload})


def gateway(cfg: ServiceConfig, inner: Inner | None = None, decide: Any = None) -> tuple[Gateway, Inner, Metrics]:
    inner = inner or Inner()
    metrics = Metrics(CollectorRegistry())
    decide = decide or access_decider(cfg.service, cfg.environment, cfg.access_data)
    return Gateway(inner, cfg, decide, inner.infer, metrics, Activity(), call_timeout=1.0), inner, metrics


async def call(
    gw: Gateway, path: str, caller: str | None = "alice", body: bytes = b"{}", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    raw = [(k.lower().encode(), v.encode()) for k, v in {"Content-Type": "application/json", **(headers or {})}.items()]
    if caller:
        raw.append((b"authorization", f"Bearer {TOKENS[caller]}".encode()))
    scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(), "headers": raw}
    sent: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    await gw(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(payload)


PREDICT = f"/v1/models/{SERVICE}:predict"


@pytest.mark.parametrize("weight", [0, 1, 10, 33.3, 50, 99, 100])
def test_the_split_sends_exactly_the_weight_to_the_canary(weight: float) -> None:
    split = WeightedSplit(weight)
    picks = [split.pick() for _ in range(1000)]
    assert sum(picks) == int(1000 * weight / 100)
    if 0 < weight < 100:  # spread out, not in a block: every 100 calls hold their share
        assert all(abs(sum(picks[i : i + 100]) - weight) <= 1 for i in range(0, 1000, 100))


def test_calls_are_routed_to_stable_and_canary_by_weight() -> None:
    gw, _inner, metrics = gateway(
        config(Variant("stable", "classifier", 3, DIGEST), Variant("canary", "classifier", 4, DIGEST, 10))
    )

    async def run() -> list[str]:
        return [(await call(gw, PREDICT))[1]["path"] for _ in range(100)]

    paths = asyncio.run(run())
    assert paths.count("/v1/models/breast-cancer-api--canary:predict") == 10
    assert paths.count("/v1/models/breast-cancer-api:predict") == 90
    counted = metrics.requests.labels(SERVICE, "canary", "4", "v1", "200")._value.get()
    assert counted == 10
    assert metrics.requests.labels(SERVICE, "stable", "3", "v1", "200")._value.get() == 90


def test_v2_paths_and_metadata_go_to_the_service_variants() -> None:
    gw, _inner, _ = gateway(config())

    async def run() -> list[tuple[int, dict[str, Any]]]:
        return [
            await call(gw, f"/v2/models/{SERVICE}/infer"),
            await call(gw, f"/v2/models/{SERVICE}"),
            await call(gw, f"/v2/models/{SERVICE}/ready"),
            await call(gw, f"/v1/models/{SERVICE}"),
        ]

    answers = asyncio.run(run())
    assert [a[1]["path"] for a in answers] == [
        "/v2/models/breast-cancer-api/infer",
        "/v2/models/breast-cancer-api",
        "/v2/models/breast-cancer-api/ready",
        "/v1/models/breast-cancer-api",
    ]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/breast-cancer-api--canary:predict",  # a variant's internal name
        "/v2/models/breast-cancer-api--shadow/infer",
        "/v1/models/other:predict",
        "/v1/models",  # would list the internal names
        "/v2/models/breast-cancer-api/versions/3/infer",  # KServe answers 501: there are no versions to name
        "/v2/repository/index",  # KServe's model repository extension: load and unload
        "/v2/repository/models/breast-cancer-api/unload",
        "/docs",
        "/",
    ],
)
def test_anything_but_the_services_own_paths_is_404_and_never_reaches_kserve(path: str) -> None:
    gw, inner, _ = gateway(config())
    status, body = asyncio.run(call(gw, path))
    assert status == 404 and SERVICE in body["error"]
    assert inner.calls == []


@pytest.mark.parametrize("path", ["/v2/health/live", "/v2/health/ready", "/v2", "/metrics"])
def test_health_and_metrics_need_no_token(path: str) -> None:
    gw, inner, _ = gateway(config())
    status, _ = asyncio.run(call(gw, path, caller=None))
    assert status == 200 and inner.calls == [(path, b"{}")]


def test_a_call_without_a_valid_token_is_401_before_kserve_sees_it() -> None:
    gw, inner, metrics = gateway(config())
    missing = asyncio.run(call(gw, PREDICT, caller=None))
    forged = asyncio.run(call(gw, PREDICT, caller=None, headers={"Authorization": "Bearer alice-token-012345678X"}))
    basic = asyncio.run(call(gw, PREDICT, caller=None, headers={"Authorization": f"Basic {TOKENS['alice']}"}))
    assert missing == (401, {"error": "send a caller token: 'Authorization: Bearer <token>'"})
    assert forged == (401, {"error": "the caller token is not valid"})
    assert basic[0] == 401
    assert inner.calls == []
    assert metrics.requests.labels(SERVICE, "none", "", "v1", "401")._value.get() == 3


@pytest.mark.parametrize(
    "content_type", ["", "application/x-www-form-urlencoded", "text/plain", "application/cloudevents+json"]
)
def test_an_inference_call_not_declared_json_is_415_with_what_to_send(content_type: str) -> None:
    gw, inner, _ = gateway(config())
    status, body = asyncio.run(call(gw, PREDICT, headers={"Content-Type": content_type}))
    assert (status, body) == (415, {"error": "send the request as JSON: 'Content-Type: application/json'"})
    assert inner.calls == []
    assert asyncio.run(call(gw, PREDICT, headers={"Content-Type": "application/json; charset=utf-8"}))[0] == 200


def test_a_caller_outside_the_allowed_groups_is_refused_by_the_access_policy() -> None:
    gw, inner, _ = gateway(config())
    status, body = asyncio.run(call(gw, PREDICT, caller="eve"))
    assert status == 403
    assert "user eve" in body["error"] and "clinicians" in body["error"]
    assert inner.calls == []
    assert asyncio.run(call(gw, PREDICT, caller="alice"))[0] == 200


def test_consent_is_required_when_the_service_says_so() -> None:
    gw, inner, _ = gateway(config(require_consent=True))
    refused = asyncio.run(call(gw, PREDICT))
    assert (
        refused[0] == 403
        and "send consent: true (consent is sent as the header 'X-Consent: true')" in (refused[1]["error"])
    )
    assert asyncio.run(call(gw, PREDICT, headers={"X-Consent": "true"}))[0] == 200
    assert asyncio.run(call(gw, PREDICT, headers={"X-Consent": "yes"}))[0] == 403
    assert len(inner.calls) == 1


def test_a_policy_that_cannot_be_evaluated_refuses_the_call_and_is_asked_again() -> None:
    failures = [DecisionError("engine crashed")]

    def flaky(caller: str, groups: tuple[str, ...], consent: bool) -> Decision:
        if failures:
            raise failures.pop()
        return Decision(True)

    gw, inner, _ = gateway(config(), decide=flaky)
    status, body = asyncio.run(call(gw, PREDICT))
    assert status == 503 and "could not be evaluated (engine crashed)" in body["error"]
    assert inner.calls == []
    assert asyncio.run(call(gw, PREDICT))[0] == 200  # the failure was not kept as an answer


def test_the_shadow_gets_a_copy_and_its_answer_is_dropped() -> None:
    gw, inner, metrics = gateway(
        config(Variant("stable", "classifier", 3, DIGEST), Variant("shadow", "classifier", 5, DIGEST, 50))
    )

    async def run() -> list[tuple[int, dict[str, Any]]]:
        answers = [await call(gw, PREDICT, body=f'{{"n": {i}}}'.encode()) for i in range(10)]
        await asyncio.sleep(0.05)  # the mirrored calls run after the answers
        return answers

    answers = asyncio.run(run())
    assert {a[1]["path"] for a in answers} == {"/v1/models/breast-cancer-api:predict"}
    mirrored = [body for path, body in inner.calls if path == "/v1/models/breast-cancer-api--shadow:predict"]
    assert len(mirrored) == 5
    assert all(body.startswith(b'{"n": ') for body in mirrored)  # the caller's own body
    assert metrics.requests.labels(SERVICE, "shadow", "5", "v1", "200")._value.get() == 5


def test_a_failing_shadow_never_reaches_the_caller() -> None:
    class ShadowFails(Inner):
        async def infer(self, model: str, protocol: str, body: bytes, headers: dict[str, str]) -> Answer:
            if model.endswith("--shadow"):
                return Answer(500, b'{"error": "the shadow broke"}')
            return await super().infer(model, protocol, body, headers)

    gw, _inner, metrics = gateway(
        config(Variant("stable", "classifier", 3, DIGEST), Variant("shadow", "classifier", 5, DIGEST, 100)),
        ShadowFails(),
    )

    async def run() -> tuple[int, dict[str, Any]]:
        answer = await call(gw, PREDICT)
        await asyncio.sleep(0.05)
        return answer

    assert asyncio.run(run()) == (200, {"path": "/v1/models/breast-cancer-api:predict"})
    assert metrics.requests.labels(SERVICE, "shadow", "5", "v1", "500")._value.get() == 1


def test_shadow_copies_are_bounded() -> None:
    class SlowShadow(Inner):
        async def infer(self, model: str, protocol: str, body: bytes, headers: dict[str, str]) -> Answer:
            if model.endswith("--shadow"):
                await asyncio.sleep(0.2)
            return await super().infer(model, protocol, body, headers)

    gw, inner, _ = gateway(
        config(Variant("stable", "classifier", 3, DIGEST), Variant("shadow", "classifier", 5, DIGEST, 100)),
        SlowShadow(),
    )

    async def run() -> None:
        for _ in range(MAX_SHADOW_IN_FLIGHT + 5):
            await call(gw, PREDICT)
        await asyncio.sleep(0.3)

    asyncio.run(run())
    assert sum("--shadow" in path for path, _ in inner.calls) == MAX_SHADOW_IN_FLIGHT


def test_activity_tracks_calls_for_scale_to_zero() -> None:
    gw, _, _ = gateway(config())
    before = gw.activity.last
    asyncio.run(call(gw, PREDICT))
    assert gw.activity.last > before and gw.activity.in_flight == 0
    health_seen = gw.activity.last
    asyncio.run(call(gw, "/v2/health/ready", caller=None))  # a probe is not a call
    assert gw.activity.last == health_seen


def test_the_buckets_start_below_a_millisecond() -> None:
    assert BUCKETS[0] == 0.0001 and sum(b < 0.005 for b in BUCKETS) >= 6  # KServe's first bucket is 5 ms


def test_a_draining_replica_closes_each_connection_after_its_answer() -> None:
    gw, _, _ = gateway(config())
    sent: list[dict[str, Any]] = []

    async def run() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def send(message: Any) -> None:
            sent.append(dict(message))

        scope = {"type": "http", "method": "GET", "path": "/v2/health/ready", "headers": []}
        await gw(scope, receive, send)
        gw.activity.draining = True
        await gw(scope, receive, send)

    asyncio.run(run())
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert [(b"connection", b"close") in m["headers"] for m in starts] == [False, True]


def test_every_series_of_a_variant_starts_at_zero() -> None:
    """So that Prometheus' rate() counts a variant's first 500 too."""
    _, _, metrics = gateway(
        config(Variant("stable", "classifier", 3, DIGEST), Variant("canary", "classifier", 4, DIGEST, 10))
    )
    for variant, version in (("stable", "3"), ("canary", "4")):
        for code in ("200", "500", "503"):
            assert metrics.requests.labels(SERVICE, variant, version, "v1", code)._value.get() == 0
    samples = {s.labels.get("variant") for f in metrics.requests.collect() for s in f.samples}
    assert samples == {"stable", "canary"}


def test_an_answer_says_which_variant_and_version_gave_it() -> None:
    gw, _, _ = gateway(
        config(Variant("stable", "classifier", 3, DIGEST), Variant("canary", "classifier", 4, DIGEST, 50))
    )
    heads: list[list[tuple[bytes, bytes]]] = []

    async def run() -> None:
        for _ in range(2):
            delivered = False

            async def receive() -> dict[str, Any]:
                nonlocal delivered
                delivered = True
                return {"type": "http.request", "body": b"{}", "more_body": False}

            async def send(message: Any) -> None:
                if message["type"] == "http.response.start":
                    heads.append(list(message["headers"]))

            headers = [(b"authorization", f"Bearer {TOKENS['alice']}".encode()), (b"content-type", b"application/json")]
            await gw({"type": "http", "method": "POST", "path": PREDICT, "headers": headers}, receive, send)

    asyncio.run(run())
    said = [(dict(h)[b"modelplane-variant"], dict(h)[b"modelplane-version"]) for h in heads]
    assert sorted(said) == [(b"canary", b"4"), (b"stable", b"3")]


def test_a_version_that_does_not_answer_in_time_is_a_504_counted_against_it() -> None:
    class Stuck(Inner):
        async def infer(self, model: str, protocol: str, body: bytes, headers: dict[str, str]) -> Answer:
            await asyncio.sleep(60)
            raise AssertionError("never reached")

    gw, _, metrics = gateway(config(), Stuck())
    status, body = asyncio.run(call(gw, PREDICT))
    assert (status, body) == (504, {"error": "version 3 of breast-cancer-api did not answer within 1 s"})
    assert metrics.requests.labels(SERVICE, "stable", "3", "v1", "504")._value.get() == 1
    assert metrics.in_flight.labels(SERVICE, "stable")._value.get() == 0


def test_the_model_never_sees_the_callers_token() -> None:
    gw, inner, _ = gateway(config())
    extra = {"X-Request-Id": "req-7", "Cookie": "session=secret", "X-Consent": "true"}
    assert asyncio.run(call(gw, PREDICT, headers=extra))[0] == 200
    # JSON with parameters is JSON: KServe's decoder is told so in the words it knows.
    assert asyncio.run(call(gw, PREDICT, headers={"Content-Type": "Application/JSON; charset=utf-8"}))[0] == 200
    assert inner.headers == [
        {"content-type": "application/json", "x-request-id": "req-7"},
        {"content-type": "application/json"},
    ]


def test_a_call_refused_for_its_input_is_counted_but_not_timed() -> None:
    """The canary's p99 is the version's latency: a caller's bad input (4xx) is not part of it."""
    gw, _, metrics = gateway(config(), Inner(status=400))
    assert asyncio.run(call(gw, PREDICT))[0] == 400
    assert metrics.requests.labels(SERVICE, "stable", "3", "v1", "400")._value.get() == 1
    assert metrics.duration.labels(SERVICE, "stable", "3", "v1")._sum.get() == 0


def test_a_body_over_the_limit_is_refused_before_any_version_sees_it() -> None:
    """The body limits in front raise from receive (controller.http.limits): the gateway
    answers with their status, closes the connection, and no version is charged."""
    from starlette.exceptions import HTTPException

    gw, inner, metrics = gateway(config())
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        raise HTTPException(413, "request body over 8388608 bytes")

    async def send(message: Any) -> None:
        sent.append(dict(message))

    headers = [(b"authorization", f"Bearer {TOKENS['alice']}".encode()), (b"content-type", b"application/json")]
    asyncio.run(gw({"type": "http", "method": "POST", "path": PREDICT, "headers": headers}, receive, send))
    assert sent[0]["status"] == 413 and (b"connection", b"close") in sent[0]["headers"]
    assert json.loads(sent[1]["body"]) == {"error": "request body over 8388608 bytes"}
    assert inner.calls == []
    assert metrics.requests.labels(SERVICE, "none", "", "v1", "413")._value.get() == 1
    assert metrics.requests.labels(SERVICE, "stable", "3", "v1", "413")._value.get() == 0
