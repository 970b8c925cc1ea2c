"""Webhook deliveries as units, on GitHub's and GitLab's real bodies
(``../shared/upstream``): signatures, reading, and which deliveries ask for a reconcile."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from pathlib import Path
from urllib.parse import urlencode

import pytest

from controller.triggers.webhooks import (
    Delivery,
    Filters,
    WebhookError,
    decide,
    github_signed,
    gitlab_token_matches,
    read_github,
    read_gitlab,
)

upstream = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "upstream"  # ../shared/upstream, copied
SECRET = b"a-webhook-secret-of-the-tests"


PUSH = (upstream / "github-webhooks" / "push.payload.json").read_bytes()
NEW_BRANCH = (upstream / "github-webhooks" / "push.with-new-branch.payload.json").read_bytes()


def sign(body: bytes, secret: bytes = SECRET) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def test_a_github_signature_is_the_hmac_of_the_raw_body() -> None:
    body = PUSH
    assert github_signed(SECRET, body, sign(body))
    assert not github_signed(SECRET, body, sign(body, b"another secret"))
    assert not github_signed(SECRET, body + b" ", sign(body))  # the raw body, not its JSON
    assert not github_signed(SECRET, body, sign(body).replace("sha256=", "sha1="))
    assert not github_signed(SECRET, body, None)
    assert not github_signed(SECRET, body, "")


def test_a_gitlab_token_is_the_shared_secret() -> None:
    assert gitlab_token_matches(SECRET, SECRET.decode())
    assert not gitlab_token_matches(SECRET, SECRET.decode()[:-1])
    assert not gitlab_token_matches(SECRET, None)


def test_githubs_push_is_read_with_its_branch_commit_and_paths() -> None:
    document = json.loads(NEW_BRANCH)
    delivery = read_github({"x-github-event": "push", "x-github-delivery": "d-1"}, NEW_BRANCH)
    assert (delivery.source, delivery.id, delivery.event) == ("github", "d-1", "push")
    assert delivery.repository == document["repository"]["full_name"]
    assert delivery.branch == document["ref"].removeprefix("refs/heads/")
    assert delivery.sha == document["after"]
    expected = {p for c in document["commits"] for k in ("added", "modified", "removed") for p in c[k]}
    assert set(delivery.paths) == expected


def test_a_form_encoded_github_delivery_is_read_like_json() -> None:
    body = PUSH
    form = urlencode({"payload": body.decode()}).encode()
    headers = {"x-github-event": "push", "x-github-delivery": "d-2"}
    as_form = read_github({**headers, "content-type": "application/x-www-form-urlencoded"}, form)
    assert as_form == read_github({**headers, "content-type": "application/json"}, body)


PULL_REQUEST = upstream / "github-webhooks" / "pull_request.opened.payload.json"
REVIEW = upstream / "github-webhooks" / "pull_request_review.submitted.payload.json"


@pytest.mark.parametrize(("event", "path"), [("pull_request", PULL_REQUEST), ("pull_request_review", REVIEW)])
def test_pull_request_events_name_their_pull_request(event: str, path: Path) -> None:
    delivery = read_github({"x-github-event": event, "x-github-delivery": "d"}, path.read_bytes())
    document = json.loads(path.read_bytes())
    assert delivery.pull_request == document["pull_request"]["number"]
    assert delivery.sha == document["pull_request"]["head"]["sha"]


def test_gitlabs_push_is_read_and_identified_by_its_body_without_a_uuid() -> None:
    body = (upstream / "gitlab-webhooks" / "push.json").read_bytes()
    document = json.loads(body)
    delivery = read_gitlab({"x-gitlab-event": "Push Hook"}, body)
    assert (delivery.source, delivery.event, delivery.repository) == (
        "gitlab",
        "push",
        document["project"]["path_with_namespace"],
    )
    assert delivery.branch == document["ref"].removeprefix("refs/heads/")
    assert delivery.id == "sha256:" + hashlib.sha256(body).hexdigest()
    assert read_gitlab({"x-gitlab-event": "Push Hook", "x-gitlab-event-uuid": "u-1"}, body).id == "u-1"


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        ({}, b"{}", "no X-GitHub-Event header"),
        ({"x-github-event": "push"}, b"{not json", "the body is not JSON"),
        ({"x-github-event": "push"}, b"[1]", "not a JSON object"),
        ({"x-github-event": "push"}, b'{"ref": "refs/heads/main"}', "'after'"),
        (
            {"x-github-event": "push"},
            b'{"ref": 5, "after": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}',
            "names its 'ref'",
        ),
        (
            {"x-github-event": "push"},
            b'{"ref": "refs/heads/main", "after": "' + b"a" * 40 + b'", "commits": [{"added": "x"}]}',
            "'added'",
        ),
        ({"x-github-event": "pull_request"}, b'{"pull_request": {}}', "with a number"),
        ({"x-github-event": "push", "x-github-delivery": "x" * 200}, b"{}", "delivery id"),
        ({"x-github-event": "push", "content-type": "application/x-www-form-urlencoded"}, b"a=1", "'payload' field"),
        ({"x-github-event": "push"}, b"[" * 5000 + b"]" * 5000, "the body is not JSON"),
    ],
)
def test_a_body_that_is_not_what_its_event_says_is_refused(headers: dict[str, str], body: bytes, message: str) -> None:
    with pytest.raises(WebhookError, match=re.escape(message)):
        read_github(headers, body)


def push(branch: str | None = "main", paths: tuple[str, ...] = ("specs/model.yaml",), **extra: object) -> Delivery:
    fields = {"source": "github", "id": "d", "event": "push", "branch": branch, "sha": "a" * 40,
              "paths": paths, "default_branch": "main", **extra}  # fmt: skip
    return Delivery(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("delivery", "filters", "reconcile", "reason"),
    [
        (push(), Filters(), True, "1 watched path(s) changed"),
        (push(paths=("docs/index.md", "README.md")), Filters(), False, "no changed path matches specs/**"),
        (push(paths=("policies/a/b.rego",)), Filters(), True, "1 watched path(s) changed"),
        (push(branch="feature"), Filters(), False, "branch feature is not watched (watched: main)"),
        (push(branch="release"), Filters(branches=("main", "release")), True, "1 watched path(s) changed"),
        (push(branch=None), Filters(), False, "a push to a tag"),
        (push(sha="0" * 40), Filters(), False, "branch main was deleted"),
        (push(paths=(), paths_complete=False), Filters(), True, "the push lists only some of its commits"),
        (Delivery("github", "d", "ping"), Filters(), False, "a ping"),
        (Delivery("github", "d", "issues"), Filters(), False, "issues events do not reconcile"),
    ],
)  # fmt: skip
def test_only_a_push_to_a_watched_branch_touching_watched_paths_reconciles(
    delivery: Delivery, filters: Filters, reconcile: bool, reason: str
) -> None:
    decision = decide(delivery, filters)
    assert decision.reconcile == reconcile
    assert decision.reason.startswith(reason)
