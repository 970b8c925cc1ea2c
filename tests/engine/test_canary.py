"""Progressive delivery end to end, through the CLI: the example served on 127.0.0.1, a new
version promoted in the registry walking the canary steps to 100% under live traffic with
Prometheus analysis, then a slow version rolled back with the evidence in the audit log,
and a caller outside the allowed groups refused by the access policy."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from loop_helpers import MODEL, git, modelplane
from serving_helpers import PREDICT, ROWS, SERVICE, Traffic, promote_to_production


def events(repo: Path) -> list[tuple[str, dict[str, Any]]]:
    conn = sqlite3.connect(repo / ".modelplane" / "state.db")
    try:
        rows = conn.execute("SELECT event, payload FROM audit_log ORDER BY seq").fetchall()
    finally:
        conn.close()
    return [(event, json.loads(payload)) for event, payload in rows]


@pytest.fixture
def served(approved_repo: Path) -> Iterator[tuple[Path, str, str]]:
    """The example with short canary intervals, v1 in Production and served; a caller."""
    repo = approved_repo
    service = repo / SERVICE
    service.write_text(
        service.read_text()
        .replace("steps: [10, 50, 100]", "steps: [20, 100]")
        .replace("interval: 30s", "interval: 2s")
        .replace("minRequests: 200", "minRequests: 3")
        .replace("maxLatencyP99: 50ms", "maxLatencyP99: 100ms")
    )
    git(repo, "commit", "-qam", "short canary steps for the test")
    out = modelplane(repo, "apply")  # v1 (trained and approved once per session) to Production, served
    assert "deploy breast-cancer-api: first deployment" in out.stdout, out.stdout + out.stderr
    token = modelplane(repo, "serve", "caller", "add", "clara", "--group", "clinicians").stdout.strip()
    url = modelplane(repo, "serve", "url", "breast-cancer-api").stdout.strip()
    yield repo, url, token


@pytest.mark.served
def test_a_new_version_walks_the_canary_to_100_under_live_traffic(served: tuple[Path, str, str]) -> None:
    repo, url, token = served
    # v2: a change in git, trained, approved, promoted in the registry: the canary starts.
    model = repo / MODEL
    model.write_text(model.read_text().replace("random_state: 42", "random_state: 7"))
    git(repo, "commit", "-qam", "v2")
    promote_to_production(repo)
    with Traffic(url, token) as traffic:
        out = modelplane(repo, "apply", "--watch", "--watch-timeout", "120", timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    for line in (
        "canary v2 (breast-cancer-classifier stage Production) at 20% beside v1",
        "canary v2: 20% -> 100%",
        "promoting the canary: v2 is stable",
    ):
        assert line in out.stdout, out.stdout
    assert set(traffic.codes) == {200}, traffic.codes  # no call failed while the canary moved
    recorded = events(repo)
    steps = [p for e, p in recorded if e == "canary-step"]
    assert [s["weight"] for s in steps] == [100.0]
    assert all(s["analysis"]["verdict"] == "passed" for s in steps)
    assert [e for e, _ in recorded if e.startswith("canary-")][-1] == "canary-promoted"
    status = json.loads(modelplane(repo, "serve", "status", "-o", "json").stdout)[0]
    assert [(v["role"], v["version"], v["weight"]) for v in status["variants"]] == [("stable", 2, 100.0)]


@pytest.mark.served
def test_a_slow_version_is_rolled_back_and_a_stopped_service_comes_back(served: tuple[Path, str, str]) -> None:
    """v2 is a random forest of 4,000 trees, ~130 ms a call, over the 100 ms p99 the analysis
    allows (the example's gradient boosting answers in a few milliseconds): its canary is
    rolled back with the evidence. Then the service is stopped: apply starts the stable
    version again (the rollback does not keep it down); stopped again with its port taken
    meanwhile, apply serves it elsewhere and says so."""
    repo, url, token = served
    model = repo / MODEL
    text = model.read_text()
    start, end = text.index("  estimator:"), text.index("  metrics:")
    model.write_text(
        text[:start]
        + "  estimator:\n    framework: sklearn\n    class: sklearn.ensemble.RandomForestClassifier\n"
        + "    params:\n      n_estimators: 4000\n      max_depth: 3\n      random_state: 0\n"
        + text[end:]
    )
    git(repo, "commit", "-qam", "v2: a slow forest")
    promote_to_production(repo)
    with Traffic(url, token) as traffic:
        out = modelplane(repo, "apply", "--watch", "--watch-timeout", "120", timeout=300)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "rolling back: breast-cancer-api/canary over 2s: p99 latency (s)" in out.stdout, out.stdout
    assert set(traffic.codes) == {200}, traffic.codes
    (rollback,) = [p for e, p in events(repo) if e == "canary-rolled-back"]
    assert rollback["analysis"]["verdict"] == "failed" and rollback["canary_version"] == 2
    p99 = next(m for m in rollback["analysis"]["measurements"] if m["name"] == "p99_latency_seconds")
    assert p99["value"] > p99["limit"] == 0.1
    status_text = modelplane(repo, "status").stdout
    assert "InferenceService/breast-cancer-api: Stalled (CanaryRolledBack)" in status_text
    served_now = json.loads(modelplane(repo, "serve", "status", "-o", "json").stdout)[0]
    assert [(v["role"], v["version"]) for v in served_now["variants"]] == [("stable", 1)]
    # The rolled-back revision is not tried again until git changes.
    again = modelplane(repo, "apply")
    assert again.stdout.startswith("Nothing to apply; 1 resource(s) stalled"), again.stdout
    assert "InferenceService/breast-cancer-api: CanaryRolledBack: canary v2 at 20% rolled back to v1" in again.stdout

    # Stopped: the next apply starts the stable version again, rollback or not.
    assert modelplane(repo, "serve", "stop", "breast-cancer-api").returncode == 0
    out = modelplane(repo, "apply")
    status = json.loads(modelplane(repo, "serve", "status", "-o", "json").stdout)[0]
    assert status["state"] == "ready", out.stdout + out.stderr
    headers = {"Authorization": f"Bearer {token}", "X-Consent": "true"}
    assert httpx.post(status["url"] + PREDICT, json=ROWS, headers=headers).status_code == 200

    # Stopped again, and its port taken meanwhile: apply serves it elsewhere, and says so.
    port = urlsplit(url).port
    assert modelplane(repo, "serve", "stop", "breast-cancer-api").returncode == 0
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the port's closed connections linger
        squatter.bind(("127.0.0.1", port or 0))
        squatter.listen(1)
        out = modelplane(repo, "apply")
    moved = modelplane(repo, "serve", "url", "breast-cancer-api").stdout.strip()
    assert moved != url
    assert f"the endpoint moved from {url} to {moved} (its port was taken)" in out.stdout, out.stdout + out.stderr


SERVED_BLOCK = re.compile(r"^```console served\n(.*?)^```", re.S | re.M)


@pytest.mark.served
def test_the_documented_calls_work_and_a_caller_outside_the_groups_is_refused(served: tuple[Path, str, str]) -> None:
    """The ``console served`` blocks of docs/serving.md, with $URL and $TOKEN of the example;
    then the access policy refusing a caller of another group, and a removed caller's token."""
    repo, url, token = served
    docs = Path(__file__).resolve().parents[2] / "docs"
    shutil.copytree(docs / "examples", repo / "docs" / "examples")
    blocks = SERVED_BLOCK.findall((docs / "serving.md").read_text())
    lines = [line for block in blocks for line in block.splitlines()]
    examples: list[tuple[str, list[str]]] = []
    for line in lines:
        if line.startswith("$ "):
            examples.append((line[2:], []))
        else:
            examples[-1][1].append(line)
    assert len(examples) >= 3
    env = {**os.environ, "URL": url, "TOKEN": token}
    for command, expected in examples:
        out = subprocess.run(command, shell=True, cwd=repo, capture_output=True, text=True, env=env, timeout=60)
        assert (out.stdout + out.stderr).rstrip("\n") == "\n".join(expected), command

    # The token is nowhere in the state: not in the database, the audit log, the serving files.
    state = repo / ".modelplane"
    holding = [p for p in state.rglob("*") if p.is_file() and token.encode() in p.read_bytes()]
    assert holding == []

    # A caller outside the allowed groups is refused by the access policy.
    outsider = modelplane(repo, "serve", "caller", "add", "mallory", "--group", "marketing").stdout.strip()
    headers = {"X-Consent": "true"}
    refused = httpx.post(url + PREDICT, json=ROWS, headers={**headers, "Authorization": f"Bearer {outsider}"})
    assert refused.status_code == 403
    assert "user mallory" in refused.json()["error"] and "clinicians" in refused.json()["error"]
    allowed = httpx.post(url + PREDICT, json=ROWS, headers={**headers, "Authorization": f"Bearer {token}"})
    assert (allowed.status_code, allowed.json()) == (200, {"predictions": [0, 1]})
    # Removed: the token stops working at once.
    assert modelplane(repo, "serve", "caller", "remove", "clara").returncode == 0
    gone = httpx.post(url + PREDICT, json=ROWS, headers={**headers, "Authorization": f"Bearer {token}"})
    assert gone.status_code == 401
