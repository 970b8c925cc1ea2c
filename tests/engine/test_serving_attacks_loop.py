"""Attacks on served models through the reconcile loop and the CLI, on the example served
on 127.0.0.1: a canary spec edited mid-rollout, a hand-altered serving configuration,
(a service stopped after a rollback, its port taken while down: tests/engine/test_canary.py).

These tests were written to demonstrate problems found by attacking the serving target
(issue 9). Each is marked ``xfail`` (strict, on an AssertionError) while its problem is
open: the fix makes it pass, and strictness makes that fail until the mark is removed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from loop_helpers import MODEL, git, modelplane
from serving_helpers import PREDICT, ROWS, SERVICE, Traffic, promote_to_production

INTERVAL_S = 6  # long enough that an apply ends well inside one interval


def call(url: str, token: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", "X-Consent": "true"}
    return httpx.post(url + PREDICT, json=ROWS, headers=headers, timeout=30)


def weights(repo: Path) -> dict[str, float]:
    status = json.loads(modelplane(repo, "serve", "status", "-o", "json").stdout)[0]
    return {v["role"]: v["weight"] for v in status["variants"]}


@pytest.fixture
def served(approved_repo: Path) -> Iterator[tuple[Path, str, str]]:
    """The example with canary steps of INTERVAL_S seconds, v1 in Production and served; a caller."""
    repo = approved_repo
    service = repo / SERVICE
    service.write_text(
        service.read_text()
        .replace("interval: 30s", f"interval: {INTERVAL_S}s")
        .replace("minRequests: 200", "minRequests: 3")
    )
    git(repo, "commit", "-qam", "short canary steps for the test")
    out = modelplane(repo, "apply")  # v1 (trained and approved once per session) to Production, served
    assert "deploy breast-cancer-api: first deployment" in out.stdout, out.stdout + out.stderr
    token = modelplane(repo, "serve", "caller", "add", "clara", "--group", "clinicians").stdout.strip()
    url = modelplane(repo, "serve", "url", "breast-cancer-api").stdout.strip()
    settled = modelplane(repo, "apply")  # the new caller is in the recorded configuration too
    assert modelplane(repo, "apply").stdout.startswith("Nothing to do"), settled.stdout + settled.stderr
    yield repo, url, token


@pytest.mark.served
def test_a_canary_step_changed_mid_rollout_is_observed_for_its_whole_interval(
    served: tuple[Path, str, str],
) -> None:
    """v2 at its first step (10%) for longer than the interval; then the steps are edited in
    git to [60, 100]. The new rollout starts v2 at 60% and must observe that step for an
    interval before judging it. It once kept the clock of the old rollout's first step (same
    version, same step number: "a re-run does not restart the clock"), so the same apply
    judged "the canary at 60%" at once, on the data of the 10% step."""
    repo, url, token = served
    model = repo / MODEL
    model.write_text(model.read_text().replace("random_state: 42", "random_state: 7"))
    git(repo, "commit", "-qam", "v2")
    promote_to_production(repo)
    with Traffic(url, token):
        out = modelplane(repo, "apply")
        assert "canary v2 takes 10% of the calls" in out.stdout, out.stdout + out.stderr
        time.sleep(INTERVAL_S + 2)  # the 10% step has served its interval (not yet analysed)
        service = repo / SERVICE
        service.write_text(service.read_text().replace("steps: [10, 50, 100]", "steps: [60, 100]"))
        git(repo, "commit", "-qam", "canary steps 60, 100")
        out = modelplane(repo, "apply")
    assert "canary v2 takes 60% of the calls" in out.stdout, out.stdout + out.stderr
    assert "60% -> 100%" not in out.stdout, out.stdout
    assert weights(repo) == {"stable": 100.0, "canary": 60.0}
