"""OPA's Data API served from the embedded engine by the server (uvicorn on 127.0.0.1),
used through opa-python-client and plain HTTP, and the OPA-server engine (our HTTP client
for OPA) giving the same decisions as the embedded engine when pointed at that Data API
(regorus answers on both sides; no OPA binary runs)."""

from __future__ import annotations

import http.client
import json
import socket
from datetime import date
from pathlib import Path

import pytest
from opa_client import OpaClient
from serverhttp import TOKEN, cli_env, cli_server, request, run_cli

from controller.loading import load
from controller.policy.data_api import DataApi
from controller.policy.embedded import EmbeddedEngine
from controller.policy.evaluate import Context, evaluate
from controller.policy.opa import OpaServerEngine
from controller.policy.sources import PolicyFile
from controller.server.app import MAX_BODY_BYTES, create_app
from controller.server.data_api import routes
from controller.server.run import serving

TODAY = date(2026, 11, 22)


def test_binds_loopback_by_default(library: list[PolicyFile]) -> None:
    with DataApi(library) as api, serving(create_app(routes(api), tokens=None), port=0) as (host, _):
        assert host == "127.0.0.1"


def test_runtime_access_decisions_through_opa_client(server: tuple[str, int]) -> None:
    with OpaClient(host=server[0], port=server[1], retries=0, token=TOKEN) as client:
        assert client.check_health()
        alice = {
            "method": "POST",
            "path": "/models/production/breast-cancer-api/predict",
            "user": "alice",
            "groups": ["clinicians"],
            "consent": True,
        }
        assert client.query_rule(alice, "access", "allow") == {"result": True}
        no_consent = client.query_rule({**alice, "consent": False}, "access")["result"]
        assert no_consent["allow"] is False
        assert no_consent["reasons"] == [
            "InferenceService breast-cancer-api requires the caller's consent; send consent: true"
        ]
        wrong_env = client.query_rule({**alice, "path": "/models/staging/breast-cancer-api/predict"}, "access")
        assert wrong_env["result"]["allow"] is False
        assert wrong_env["result"]["reasons"] == [
            "InferenceService breast-cancer-api runs in production, not in staging as the path says"
        ]
        outsider = client.query_rule({**alice, "groups": ["marketing"]}, "access", "allow")
        assert outsider == {"result": False}


def test_undefined_path_answers_without_result(server: tuple[str, int]) -> None:
    assert request(server, "POST", "/v1/data/no/such/rule", b'{"input": {}}') == (200, {})


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/v1/data/access/allow", b"{not json", 400, "invalid_parameter"),
        ("POST", "/v1/data/access/allow", b"[1, 2]", 400, "invalid_parameter"),
        ("GET", "/v2/nothing", None, 404, "resource_not_found"),
        ("DELETE", "/v1/data/access", None, 405, "invalid_method"),
        ("PUT", "/v1/policies/broken.rego", b"package broken\n\nallow if {", 403, "unauthorized"),
        ("GET", "/v1/policies/missing.rego", None, 404, "resource_not_found"),
    ],
    ids=["bad-json", "not-an-object", "unknown-endpoint", "bad-method", "write-not-allowed", "missing-policy"],
)
def test_bad_requests_get_clear_errors(
    server: tuple[str, int], method: str, path: str, body: bytes | None, status: int, code: str
) -> None:
    got_status, doc = request(server, method, path, body)
    assert (got_status, doc["code"]) == (status, code)
    assert doc["message"]


def test_oversize_body_is_refused(server: tuple[str, int]) -> None:
    """Refused on its Content-Length, before the body is read. The client sends no body: writing
    1 MiB to a server that has already answered and closed races with the close (EPIPE)."""
    head = b"POST /v1/data/access HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n" % (
        TOKEN.encode(),
        MAX_BODY_BYTES + 1,
    )
    with socket.create_connection(server, timeout=5) as sock:
        sock.sendall(head)
        response = http.client.HTTPResponse(sock)
        response.begin()
        status, doc = response.status, json.loads(response.read())
    assert status == 413 and doc["code"] == "invalid_parameter"
    assert doc["message"] == f"request body over {MAX_BODY_BYTES} bytes"
    # exactly at the limit the body is read and answered (whitespace: no input, as OPA does)
    status, doc = request(server, "POST", "/v1/data/access", b" " * MAX_BODY_BYTES)
    assert (status, doc["result"]["allow"]) == (200, False)
    assert request(server, "GET", "/health") == (200, {})  # still serving


def test_policies_and_data_can_be_replaced(fresh_server: tuple[str, int]) -> None:
    server = fresh_server
    rego = b'package extra\n\ngreeting := sprintf("hello %s", [data.who])\n'
    assert request(server, "PUT", "/v1/policies/extra.rego", rego) == (200, {})
    assert request(server, "PUT", "/v1/data/who", b'"world"')[0] == 204
    assert request(server, "POST", "/v1/data/extra/greeting", b"{}") == (200, {"result": "hello world"})
    status, doc = request(server, "GET", "/v1/policies")
    assert status == 200 and "extra.rego" in {p["id"] for p in doc["result"]}


def _decisions(outcome) -> list[tuple[str, str, str, str, str | None]]:
    return sorted((f.rule, f.resource or "", f.message, f.severity.value, f.waived_by) for f in outcome.findings)


def test_opa_server_engine_matches_embedded_engine_on_library_and_example(
    fresh_server: tuple[str, int], library: list[PolicyFile], tmp_path: Path
) -> None:
    server = fresh_server  # the OPA engine writes data.modelplane
    """``OpaServerEngine`` (the HTTP client that talks to an OPA server) against our own Data
    API, which runs regorus: it checks the client's protocol and result mapping, with the
    same Rego evaluator on both sides, not a real OPA binary."""
    # The example, plus variants that make every package's rules fire.
    example = load(["specs", "chaos"]).resources
    variants = tmp_path / "variants"
    variants.mkdir()
    for src in [*Path("specs").rglob("*.yaml"), *Path("chaos").rglob("*.yaml")]:
        text = src.read_text()
        text = (
            text.replace("threshold: 0.92", "threshold: 0.8")
            .replace("approvals: 2", "approvals: 1")
            .replace("    owner: ml-platform\n", "    team: ml-platform\n")
            .replace("steps: [10, 50, 100]", "steps: [10, 50]")
            .replace("pii: false", "pii: true")
            .replace("  blastRadius:\n    maxReplicas: 1\n    maxTrafficPercent: 10\n", "")
        )
        (variants / src.name).write_text(text)
    variant_result = load([str(variants)])
    assert variant_result.findings == []  # every variant is a valid resource, so every kind is judged
    assert sorted(r.ref for r in variant_result.resources) == sorted(r.ref for r in example)
    fired = {}
    for name, resources in (("example", example), ("variants", variant_result.resources)):
        embedded = evaluate(EmbeddedEngine(library), resources, context=Context(revision="r1"), today=TODAY)
        remote = evaluate(
            OpaServerEngine(f"http://{server[0]}:{server[1]}", token=TOKEN),
            resources,
            context=Context(revision="r1"),
            today=TODAY,
        )
        assert _decisions(remote) == _decisions(embedded)
        assert [(d.rule, d.resource, d.result) for d in remote.decisions] == [
            (d.rule, d.resource, d.result) for d in embedded.decisions
        ]
        assert {d.engine for d in remote.decisions} == {"opa"} and {d.engine for d in embedded.decisions} == {"regorus"}
        fired[name] = {f.rule for f in embedded.findings}
    assert fired["example"] == {"datasets.retention_required"}
    # the variants really exercise the library: rules of five of its six finding packages fire
    assert {
        "models.medical_min_auc",
        "models.medical_two_approvals",
        "common.owner_label",
        "datasets.pii_consent_basis",
        "services.canary_ends_at_100",
        "chaos.blast_radius_required",
    } <= fired["variants"]


def test_policy_serve_command_answers_on_loopback() -> None:
    with cli_server() as served:
        assert served.banner.startswith("serving OPA Data API on http://127.0.0.1:")
        assert request(served.addr, "GET", "/health", token=None) == (200, {})
        body = (
            b'{"input": {"method": "GET", "path": "/models/production/breast-cancer-api/artifacts/model", '
            b'"user": "bob", "groups": ["ml-platform"], "consent": true}}'
        )
        assert request(served.addr, "POST", "/v1/data/access/allow", body) == (200, {"result": True})
        # Ctrl-C: a graceful stop, exit 0, nothing on stderr (an engine dropped on the
        # wrong thread would print pyo3's complaint there).
        out, err = served.stop()
        assert (out, err) == ("clients with a token: default\n", "")


def test_validate_with_opa_url_against_the_guarded_server(tmp_path: Path) -> None:
    """``validate --opa-url`` writes data.modelplane, so it needs a server allowing data writes,
    and a token, which it takes from MODELPLANE_OPA_TOKEN (never a flag)."""
    log = ["--decision-log", str(tmp_path / "decisions.jsonl")]
    embedded = run_cli("validate", *log)
    args = ["--state-dir", str(tmp_path / "state"), "policy", "serve", "--allow-data-writes"]
    with cli_server(*args) as served:
        url = ["--opa-url", served.url]
        remote = run_cli("validate", *url, *log, env=cli_env(MODELPLANE_OPA_TOKEN=TOKEN))
        refused = run_cli("validate", *url, *log, env=cli_env(token=None))
        served.stop()
    assert (remote.returncode, remote.stdout) == (embedded.returncode, embedded.stdout)
    assert refused.returncode != 0
    assert "401" in refused.stdout + refused.stderr and TOKEN not in refused.stdout + refused.stderr
