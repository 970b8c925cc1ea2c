"""Webhook deliveries from GitHub and GitLab: authenticated, read, and decided on.

Pure functions, no HTTP framework: the server's webhook routes
(:mod:`controller.server.webhooks`) hand them the raw body and the headers, and record
what they return. Nothing here touches git or the state.

- **Authentication.** GitHub signs the raw body with HMAC-SHA256 under a shared secret
  (``X-Hub-Signature-256: sha256=<hex>``); GitLab sends the shared secret itself
  (``X-Gitlab-Token``). Both are compared in constant time (:func:`github_signed`,
  :func:`gitlab_token_matches`); a delivery that fails is never read further.
- **Reading.** :func:`read_github` and :func:`read_gitlab` turn a body into a
  :class:`Delivery`: the event, the delivery's id (GitHub's ``X-GitHub-Delivery``;
  GitLab's ``X-Gitlab-Event-UUID``, or the body's digest when it has none), the
  repository, and for a push the branch, the commit it moves to and the paths its
  commits touched. GitHub's form-encoded bodies (``payload=<json>``) are read too. A
  body that is not what its event says is a :class:`WebhookError` (400).
- **Deciding.** :func:`decide` says whether a delivery asks for a reconcile: a push to
  a watched branch touching a watched path (``specs/**``, ``policies/**``, ``chaos/**``
  by default). Everything else is recorded and ignored, with the reason.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

DEFAULT_PATHS = ("specs/**", "policies/**", "chaos/**")
ZERO_SHA = "0" * 40  # a push that deletes its branch moves it to this
MAX_ID_CHARS = 128


class WebhookError(ValueError):
    """A delivery that cannot be read; the message says what is wrong, and holds no secret."""


@dataclass(frozen=True)
class Delivery:
    source: str  # github, gitlab
    id: str
    event: str  # push, ping, pull_request, pull_request_review, merge_request, ...
    action: str | None = None
    repository: str | None = None
    branch: str | None = None  # a push's branch (refs/heads/<branch>); None for tags and other refs
    sha: str | None = None  # the commit a push moves the branch to
    before: str | None = None  # the commit the branch was at before the push
    paths: tuple[str, ...] = ()  # the paths the pushed commits added, modified or removed
    paths_complete: bool = True  # False when the payload lists only some commits (GitHub: at most 20)
    default_branch: str | None = None
    sender: str | None = None
    pull_request: int | None = None


@dataclass(frozen=True)
class Filters:
    """Which pushes ask for a reconcile: branches (None: the repository's default branch)
    and path patterns (``*`` within a directory, ``**/`` any number of them, a trailing
    ``/**`` anything below)."""

    branches: tuple[str, ...] | None = None
    paths: tuple[str, ...] = DEFAULT_PATHS


@dataclass(frozen=True)
class Decision:
    reconcile: bool
    reason: str
    matched: tuple[str, ...] = field(default_factory=tuple)
    withdraw: bool = False  # the branch is gone: its waiting commits are not reconciled


def github_signed(secret: bytes, body: bytes, signature: str | None) -> bool:
    """Whether ``signature`` (``X-Hub-Signature-256``) is the HMAC-SHA256 of ``body`` under
    ``secret``; compared in constant time."""
    if not signature or not signature.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.strip().encode())


def gitlab_token_matches(secret: bytes, token: str | None) -> bool:
    """Whether ``token`` (``X-Gitlab-Token``) is the shared secret; compared in constant time
    (as digests, so that the time does not depend on the length either)."""
    if token is None:
        return False
    raw = token.encode("latin-1", errors="replace")  # the header's bytes, as HTTP servers decode them
    return hmac.compare_digest(hashlib.sha256(secret).digest(), hashlib.sha256(raw).digest())


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name.lower())
    return value.strip() if isinstance(value, str) else None


def _document(body: bytes, content_type: str | None) -> dict[str, Any]:
    text: str | bytes = body
    if (content_type or "").split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded":
        try:
            fields = parse_qs(body.decode("utf-8"), strict_parsing=True, max_num_fields=10)
        except (UnicodeDecodeError, ValueError):
            raise WebhookError("the form body cannot be read") from None
        if len(fields.get("payload", [])) != 1:
            raise WebhookError("a form-encoded delivery holds its JSON in one 'payload' field")
        text = fields["payload"][0]
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise WebhookError("the body is not JSON") from None
    if not isinstance(document, dict):
        raise WebhookError("the body is not a JSON object")
    try:
        json.dumps(document, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise WebhookError("the body holds text that is not Unicode (a lone surrogate escape)") from None
    return document


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _paths(commits: Any) -> tuple[str, ...]:
    if not isinstance(commits, list):
        raise WebhookError("'commits' is not a list")
    paths: set[str] = set()
    for commit in commits:
        if not isinstance(commit, dict):
            raise WebhookError("a commit is not an object")
        for kind in ("added", "modified", "removed"):
            listed = commit.get(kind) or []
            if not isinstance(listed, list) or not all(isinstance(p, str) for p in listed):
                raise WebhookError(f"a commit's '{kind}' is not a list of paths")
            paths.update(listed)
    return tuple(sorted(paths))


_COMMIT_ID = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


def _commit_id(value: Any, what: str) -> str | None:
    """A commit id (SHA-1 or SHA-256, hex), or None when absent; anything else is refused
    (it would reach git)."""
    if value is None:
        return None
    if not isinstance(value, str) or not _COMMIT_ID.match(value):
        raise WebhookError(f"'{what}' is not a commit id (40 or 64 hex digits)")
    return value


def _branch(ref: Any) -> str | None:
    if not isinstance(ref, str):
        raise WebhookError("a push names its 'ref'")
    return ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None


def _delivery_id(value: str | None, body: bytes) -> str:
    if value is None:
        return "sha256:" + hashlib.sha256(body).hexdigest()  # the same body twice is the same delivery
    if not value or len(value) > MAX_ID_CHARS or not value.isprintable():
        raise WebhookError("the delivery id header is empty, too long or not printable")
    return value


def read_github(headers: Mapping[str, str], body: bytes) -> Delivery:
    """A GitHub delivery (headers with lower-case names), once its signature is checked."""
    event = _header(headers, "x-github-event")
    if not event:
        raise WebhookError("no X-GitHub-Event header: is this a GitHub delivery?")
    delivery = _delivery_id(_header(headers, "x-github-delivery"), body)
    document = _document(body, _header(headers, "content-type"))
    repository = _object(document.get("repository"))
    sender = _object(document.get("sender"))
    common: dict[str, Any] = {
        "source": "github",
        "id": delivery,
        "event": event,
        "action": _text(document.get("action")),
        "repository": _text(repository.get("full_name")),
        "default_branch": _text(repository.get("default_branch")),
        "sender": _text(sender.get("login")),
    }
    if event == "push":
        commits = document.get("commits", [])
        sha = _commit_id(document.get("after"), "after")
        if sha is None:
            raise WebhookError("a push names the commit it moves to ('after')")
        forced = document.get("forced") is True  # commits dropped or the branch moved back: not all listed
        return Delivery(
            **common,
            branch=_branch(document.get("ref")),
            sha=sha,
            before=_commit_id(document.get("before"), "before"),
            paths=_paths(commits),
            paths_complete=not forced and len(commits) < 20,  # past 20 commits, take no chance
        )
    if event in ("pull_request", "pull_request_review"):
        pull = document.get("pull_request")
        if not isinstance(pull, dict) or not isinstance(pull.get("number"), int):
            raise WebhookError(f"a {event} event holds its 'pull_request' with a number")
        head = _object(pull.get("head"))
        return Delivery(**common, pull_request=pull["number"], sha=_commit_id(head.get("sha"), "head.sha"))
    return Delivery(**common)


def read_gitlab(headers: Mapping[str, str], body: bytes) -> Delivery:
    """A GitLab delivery (headers with lower-case names), once its token is checked."""
    event = _header(headers, "x-gitlab-event")
    if not event:
        raise WebhookError("no X-Gitlab-Event header: is this a GitLab delivery?")
    # A retry keeps its Idempotency-Key (GitLab 17+) but may get a new event UUID.
    delivery = _delivery_id(_header(headers, "idempotency-key") or _header(headers, "x-gitlab-event-uuid"), body)
    document = _document(body, _header(headers, "content-type"))
    project = _object(document.get("project"))
    common: dict[str, Any] = {
        "source": "gitlab",
        "id": delivery,
        "repository": _text(project.get("path_with_namespace")),
        "default_branch": _text(project.get("default_branch")),
        "sender": _text(document.get("user_username")),
    }
    kind = document.get("object_kind")
    if event == "Push Hook" or kind == "push":
        sha = _commit_id(document.get("checkout_sha"), "checkout_sha") or _commit_id(document.get("after"), "after")
        if sha is None:
            raise WebhookError("a push names the commit it moves to ('after')")
        commits = document.get("commits", [])
        total = document.get("total_commits_count")
        complete = not isinstance(total, int) or total <= len(commits) if isinstance(commits, list) else True
        return Delivery(
            **common, event="push", branch=_branch(document.get("ref")), sha=sha, paths=_paths(commits),
            paths_complete=complete, before=_commit_id(document.get("before"), "before"),
        )  # fmt: skip
    if event == "Merge Request Hook" or kind == "merge_request":
        attributes = document.get("object_attributes")
        if not isinstance(attributes, dict) or not isinstance(attributes.get("iid"), int):
            raise WebhookError("a merge request event holds 'object_attributes' with an iid")
        last = _object(attributes.get("last_commit"))
        return Delivery(
            **common, event="merge_request", action=_text(attributes.get("action")), pull_request=attributes["iid"],
            sha=_commit_id(last.get("id"), "last_commit.id"),
        )  # fmt: skip
    return Delivery(**common, event=event)


@functools.lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    """A path pattern as git and shells read it: ``*`` and ``?`` within one directory,
    ``**/`` any number of directories (none included), a trailing ``/**`` anything below."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def _matches(path: str, pattern: str) -> bool:
    return _glob(pattern).match(path) is not None


def decide(delivery: Delivery, filters: Filters) -> Decision:
    """Whether ``delivery`` asks for a reconcile of its commit, and why (not)."""
    if delivery.event == "ping":
        return Decision(False, "a ping: the webhook works")
    if delivery.event != "push":
        return Decision(False, f"{delivery.event} events do not reconcile (pull-request review is not built yet)")
    if delivery.branch is None:
        return Decision(False, "a push to a tag or another ref, not a branch")
    if delivery.sha is None or delivery.sha == ZERO_SHA:
        return Decision(False, f"branch {delivery.branch} was deleted", withdraw=True)
    watched: Sequence[str] = filters.branches or ([delivery.default_branch] if delivery.default_branch else [])
    if delivery.branch not in watched:
        return Decision(False, f"branch {delivery.branch} is not watched (watched: {', '.join(watched) or 'none'})")
    if not delivery.paths_complete:
        return Decision(True, "the push lists only some of its commits: every path counts as changed")
    matched = tuple(p for p in delivery.paths if any(_matches(p, pattern) for pattern in filters.paths))
    if not matched:
        return Decision(False, f"no changed path matches {', '.join(filters.paths)}")
    return Decision(True, f"{len(matched)} watched path(s) changed", matched)
