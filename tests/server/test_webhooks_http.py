"""The webhook routes over real HTTP (uvicorn on 127.0.0.1), with GitHub's and GitLab's
real bodies: a signed push is queued once however often it is delivered, a forged one is
refused with an audit record, and nothing but a watched change is queued."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from serverhttp import request

from controller.server.app import create_app
from controller.server.auth import Tokens
from controller.server.run import serving
from controller.server.webhooks import WebhookSecrets, routes
from controller.state.store import Store
from controller.triggers.webhooks import Filters

upstream = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "upstream"  # ../shared/upstream, copied
SECRET = b"a-webhook-secret-of-the-tests"
PUSH = (upstream / "github-webhooks" / "push.with-new-branch.payload.json").read_bytes()
BRANCH = json.loads(PUSH)["ref"].removeprefix("refs/heads/")


@pytest.fixture
def hooked(tmp_path: Path) -> Iterator[tuple[tuple[str, int], Store]]:
    store = Store(tmp_path / ".modelplane")
    # Watch the payload's branch, and the paths its commits touch (the example repo's are README.md).
    filters = Filters(branches=(BRANCH,), paths=("specs/**", "README.md"))
    app = create_app(
        routes(store, WebhookSecrets(github=SECRET, gitlab=SECRET), filters), tokens=Tokens({"t": "x" * 20})
    )
    try:
        with serving(app) as address:
            yield address, store
    finally:
        store.close()


def github(
    address: tuple[str, int], body: bytes, event: str = "push", delivery: str = "d-1", **extra: str
) -> tuple[int, dict]:
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest(),
        **extra,
    }
    return request(address, "POST", "/webhooks/github", body, token=None, headers=headers)


def test_a_signed_push_is_queued_once_however_often_it_is_delivered(hooked: tuple[tuple[str, int], Store]) -> None:
    address, store = hooked
    status, answer = github(address, PUSH)
    assert (status, answer["status"]) == (202, "queued")
    for _ in range(100):  # GitHub's redeliveries, or a replay by whoever captured it
        assert github(address, PUSH) == (
            200,
            {"status": "duplicate", "reason": "delivery d-1 was received before (queued)"},
        )
    (item,) = store.queue.items()
    assert (item.id, item.branch, item.sha, item.state) == (
        answer["item"],
        BRANCH,
        json.loads(PUSH)["after"],
        "pending",
    )
    queued = [e for e in store.audit.records() if e.event == "webhook-queued"]
    assert len(queued) == 1


def test_a_newer_push_of_the_branch_supersedes_the_waiting_one(hooked: tuple[tuple[str, int], Store]) -> None:
    address, store = hooked
    newer = json.loads(PUSH)
    newer["after"] = "f" * 40
    assert github(address, PUSH, delivery="d-1")[0] == 202
    assert github(address, json.dumps(newer).encode(), delivery="d-2")[0] == 202
    states = {(i.sha, i.state) for i in store.queue.items()}
    assert states == {(json.loads(PUSH)["after"], "superseded"), ("f" * 40, "pending")}


@pytest.mark.parametrize(
    "signature",
    [None, "", "sha256=" + "0" * 64, "sha1=abc"],
    ids=["missing", "empty", "wrong", "sha1"],
)
def test_a_delivery_without_the_right_signature_is_401_and_recorded(
    hooked: tuple[tuple[str, int], Store], signature: str | None
) -> None:
    address, store = hooked
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "forged"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    status, answer = request(address, "POST", "/webhooks/github", PUSH, token=None, headers=headers)
    assert (status, answer) == (401, {"code": "unauthorized", "message": "the delivery is not authenticated"})
    assert store.queue.items() == [] and store.queue.deliveries() == []
    assert [e.event for e in store.audit.records()][-1] == "webhook-refused"


def test_a_ping_and_an_unwatched_change_are_recorded_and_ignored(hooked: tuple[tuple[str, int], Store]) -> None:
    address, store = hooked
    ping = (upstream / "github-webhooks" / "ping.payload.json").read_bytes()
    assert github(address, ping, event="ping", delivery="p-1") == (
        202,
        {"status": "ignored", "reason": "a ping: the webhook works"},
    )
    tag = (upstream / "github-webhooks" / "push.payload.json").read_bytes()
    status, answer = github(address, tag, delivery="t-1")
    assert (status, answer["status"]) == (202, "ignored") and "tag" in answer["reason"]
    assert store.queue.items() == []
    assert {d["id"]: d["outcome"] for d in store.queue.deliveries()} == {"p-1": "ignored", "t-1": "ignored"}


def test_a_malformed_signed_body_is_400(hooked: tuple[tuple[str, int], Store]) -> None:
    address, _ = hooked
    status, answer = github(address, b'{"ref": "refs/heads/main"}', delivery="m-1")
    assert status == 400 and "'after'" in answer["message"]


def test_a_gitlab_push_needs_its_token(hooked: tuple[tuple[str, int], Store]) -> None:
    address, store = hooked
    body = (upstream / "gitlab-webhooks" / "push.json").read_bytes()
    headers = {"X-Gitlab-Event": "Push Hook"}
    assert request(address, "POST", "/webhooks/gitlab", body, token=None, headers=headers)[0] == 401
    status, answer = request(
        address, "POST", "/webhooks/gitlab", body, token=None, headers={**headers, "X-Gitlab-Token": SECRET.decode()}
    )
    assert status == 202 and answer["status"] in ("queued", "ignored")
    assert [d["source"] for d in store.queue.deliveries()] == ["gitlab"]


def test_the_other_routes_still_need_the_bearer_token(hooked: tuple[tuple[str, int], Store]) -> None:
    address, _ = hooked
    assert request(address, "GET", "/webhooks/github", token=None)[0] in (401, 405)
    assert request(address, "POST", "/v1/data", b"{}", token=None)[0] == 401
