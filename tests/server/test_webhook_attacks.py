"""Attacks on the webhook routes (``modelplane controller``): each test is a problem found by
attacking them (written as a strict xfail while it was open); each passes since its fix.

Run over real HTTP (uvicorn on 127.0.0.1) with GitHub's and GitLab's real bodies, as
``test_webhooks_http.py`` does."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serverhttp import request

from controller.server.app import create_app
from controller.server.auth import Tokens
from controller.server.run import serving
from controller.server.webhooks import WebhookSecrets, routes
from controller.state.store import Store
from controller.triggers.webhooks import Filters, decide, gitlab_token_matches, read_github

upstream = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "upstream"  # ../shared/upstream, copied
SECRET = b"a-webhook-secret-of-the-attacks"
PUSH: dict[str, Any] = json.loads((upstream / "github-webhooks" / "push.with-new-branch.payload.json").read_bytes())
GITLAB_PUSH: dict[str, Any] = json.loads((upstream / "gitlab-webhooks" / "push.json").read_bytes())
BRANCH = PUSH["ref"].removeprefix("refs/heads/")  # master; its commit touches README.md
Address = tuple[str, int]


def _served(tmp_path: Path, secrets: WebhookSecrets) -> Iterator[tuple[Address, Store]]:
    store = Store(tmp_path / ".modelplane")
    filters = Filters(branches=(BRANCH, "main"), paths=("specs/**", "README.md"))
    app = create_app(routes(store, secrets, filters), tokens=Tokens({"t": "x" * 20}))
    try:
        with serving(app) as address:
            yield address, store
    finally:
        store.close()


@pytest.fixture
def hooked(tmp_path: Path) -> Iterator[tuple[Address, Store]]:
    yield from _served(tmp_path, WebhookSecrets(github=SECRET, gitlab=SECRET))


@pytest.fixture
def github_only(tmp_path: Path) -> Iterator[tuple[Address, Store]]:
    yield from _served(tmp_path, WebhookSecrets(github=SECRET))


def push(after: str, before: str = "0" * 40, **changes: Any) -> bytes:
    return json.dumps({**PUSH, "after": after, "before": before, **changes}).encode()


def github(address: Address, body: bytes, delivery: str, event: str = "push") -> tuple[int, dict]:
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest(),
    }
    return request(address, "POST", "/webhooks/github", body, token=None, headers=headers)


def pending(store: Store) -> list[str]:
    return [i.sha for i in store.queue.items() if i.state == "pending"]


A, B, C = "a" * 40, "b" * 40, "c" * 40


# --- queue semantics -------------------------------------------------------------------


def test_an_older_push_arriving_late_does_not_supersede_the_newer_commit(hooked: tuple[Address, Store]) -> None:
    address, store = hooked
    assert github(address, push(B, before=A), "newer")[1]["status"] == "queued"  # A -> B, delivered first
    assert github(address, push(A, before="0" * 40), "older")[0] == 202  # 0 -> A, delivered late (no order guarantee)
    # The branch's head is B: the one commit waiting should be B, not A.
    assert pending(store) == [B]


def test_a_captured_delivery_replayed_under_a_new_delivery_id_is_not_queued_again(
    hooked: tuple[Address, Store],
) -> None:
    address, store = hooked
    captured = push(A)
    assert github(address, captured, "genuine-1")[1]["status"] == "queued"
    assert github(address, push(B, before=A), "genuine-2")[1]["status"] == "queued"
    # The attacker holds the first body and its signature; the delivery id is theirs to choose.
    _, answer = github(address, captured, "attacker-chosen-id")
    assert answer["status"] != "queued", answer
    assert pending(store) == [B]


def test_a_force_push_back_to_an_older_commit_is_reconciled(hooked: tuple[Address, Store]) -> None:
    address, _ = hooked
    assert github(address, push(B, before=A), "d-1")[1]["status"] == "queued"
    # `git push --force origin A:master`: GitHub lists no commits (nothing new), forced is true.
    status, answer = github(address, push(A, before=B, forced=True, created=False, commits=[], head_commit=None), "d-2")
    assert (status, answer["status"]) == (202, "queued"), answer


def test_a_forced_push_counts_its_paths_as_incomplete() -> None:
    commits = [{**PUSH["commits"][0], "added": [], "removed": [], "modified": ["docs/readme.md"]}]
    body = push(C, before=B, forced=True, created=False, commits=commits)
    delivery = read_github({"x-github-event": "push", "x-github-delivery": "x"}, body)
    decision = decide(delivery, Filters(branches=(BRANCH,)))
    assert decision.reconcile, decision.reason


def test_a_push_whose_commit_is_not_a_commit_id_is_refused(hooked: tuple[Address, Store]) -> None:
    address, store = hooked
    status, answer = github(address, push("--upload-pack=touch /tmp/owned"), "d-1")
    assert status == 400, answer
    assert store.queue.items() == []


def test_deleting_a_branch_withdraws_its_waiting_commit(hooked: tuple[Address, Store]) -> None:
    address, store = hooked
    assert github(address, push(A), "d-1")[1]["status"] == "queued"
    deleted = push("0" * 40, before=A, deleted=True, created=False, commits=[], head_commit=None)
    assert github(address, deleted, "d-2")[1]["status"] == "ignored"
    assert pending(store) == []


def test_a_branch_has_one_commit_in_progress_at_a_time(tmp_path: Path) -> None:
    store = Store(tmp_path / ".modelplane")
    try:
        queue = store.queue
        kw: dict[str, Any] = {"repository": "o/r", "branch": "main", "enqueue": True, "reason": "r"}
        queue.receive("github", "1", "push", sha=A, **kw)
        assert queue.lease("w1", 60) is not None
        queue.receive("github", "2", "push", sha=B, **kw)
        assert queue.lease("w2", 60) is None  # main is being reconciled by w1
    finally:
        store.close()


# --- path patterns ----------------------------------------------------------------------


def test_double_star_slash_matches_zero_directories() -> None:
    body = push(A, commits=[{**PUSH["commits"][0], "added": ["specs/model.yaml", "top.yaml"], "modified": []}])
    delivery = read_github({"x-github-event": "push"}, body)
    assert decide(delivery, Filters((BRANCH,), ("specs/**/*.yaml",))).reconcile
    assert decide(delivery, Filters((BRANCH,), ("**/top.yaml",))).reconcile


def test_a_single_star_stays_in_its_directory() -> None:
    body = push(A, commits=[{**PUSH["commits"][0], "added": ["specs/archive/old/x.yaml"], "modified": []}])
    delivery = read_github({"x-github-event": "push"}, body)
    assert not decide(delivery, Filters((BRANCH,), ("specs/*.yaml",))).reconcile


# --- bodies ---------------------------------------------------------------------------


def test_a_lone_surrogate_in_a_signed_body_is_400_not_500(hooked: tuple[Address, Store]) -> None:
    address, _ = hooked
    body = json.dumps({**PUSH, "ref": "refs/heads/\ud800"}).encode()  # ASCII escapes: valid JSON
    status, answer = github(address, body, "d-1")
    assert status in (202, 400), (status, answer)


# --- unauthenticated clients ------------------------------------------------------------


def test_unauthenticated_refusals_do_not_grow_the_audit_log_without_bound(hooked: tuple[Address, Store]) -> None:
    address, store = hooked
    for i in range(300):
        headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": f"x{i}", "X-Hub-Signature-256": "sha256=00"}
        assert request(address, "POST", "/webhooks/github", b"{}", token=None, headers=headers)[0] == 401
    refused = [e for e in store.audit.records() if e.event == "webhook-refused"]
    assert len(refused) < 100, f"{len(refused)} audit records from one client in a burst"


def test_a_wrong_gitlab_token_is_refused_before_the_body_arrives(hooked: tuple[Address, Store]) -> None:
    address, _ = hooked
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(
            b"POST /webhooks/gitlab HTTP/1.1\r\nHost: x\r\nX-Gitlab-Event: Push Hook\r\n"
            b"X-Gitlab-Token: wrong-token-wrong-token\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000\r\n\r\n{"
        )
        sock.settimeout(2)
        try:
            first = sock.recv(64)
        except TimeoutError:
            first = b""
    assert first.startswith(b"HTTP/1.1 401"), "no answer within 2 s: the server waits for the body"


# --- GitLab -----------------------------------------------------------------------------


def test_a_gitlab_retry_with_the_same_idempotency_key_is_a_duplicate(hooked: tuple[Address, Store]) -> None:
    address, _ = hooked
    body = json.dumps({**GITLAB_PUSH, "commits": [{**GITLAB_PUSH["commits"][0], "added": ["specs/m.yaml"]}]}).encode()
    headers = {"X-Gitlab-Token": SECRET.decode(), "X-Gitlab-Event": "Push Hook", "Idempotency-Key": "key-1"}
    first = request(
        address, "POST", "/webhooks/gitlab", body, token=None, headers={**headers, "X-Gitlab-Event-UUID": "u-1"}
    )
    assert first[1]["status"] == "queued", first
    retry = request(
        address, "POST", "/webhooks/gitlab", body, token=None, headers={**headers, "X-Gitlab-Event-UUID": "u-2"}
    )
    assert retry[1]["status"] == "duplicate", retry


def test_a_non_ascii_gitlab_secret_either_matches_or_is_refused_at_start() -> None:
    secret = "ein-geheimnis-für-gitlab"
    as_received = secret.encode().decode("latin-1")  # what Starlette makes of the header GitLab sends
    assert gitlab_token_matches(secret.encode(), as_received)


# --- routes -----------------------------------------------------------------------------


def test_a_source_without_a_secret_is_like_any_unknown_path(github_only: tuple[Address, Store]) -> None:
    """It has no route: whoever lacks the bearer token learns nothing of which sources exist (401)."""
    address, _ = github_only
    status, _ = request(address, "POST", "/webhooks/gitlab", b"{}", token=None, headers={"X-Gitlab-Token": "x"})
    assert status == 401
    assert (
        request(address, "POST", "/webhooks/gitlab", b"{}", token="x" * 20, headers={"X-Gitlab-Token": "x"})[0] == 404
    )


def test_a_trailing_slash_is_not_the_webhook_route(hooked: tuple[Address, Store]) -> None:
    """``/webhooks/github/`` is not the route (docs/webhooks.md): a signed delivery there is
    refused like any unknown path, and nothing is queued."""
    address, store = hooked
    body = push(A)
    signature = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": signature}
    status, _ = request(address, "POST", "/webhooks/github/", body, token=None, headers=headers)
    assert status == 401 and store.queue.items() == []
