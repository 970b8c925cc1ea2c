"""The webhook routes: ``POST /webhooks/github`` and ``POST /webhooks/gitlab``.

A route group for :func:`controller.server.app.create_app`. The routes need no bearer
token (they are :class:`~controller.server.auth.PublicRoute`\\ s): each delivery is
authenticated by its own signature (GitHub) or shared secret (GitLab), read, decided
on and recorded by the pure functions of :mod:`controller.triggers.webhooks` and the
state's :class:`~controller.state.queue.WorkQueue`, and answered at once. No git or
training work happens inside a request.

- ``202 {"status": "queued", "item": N}``: a push to a watched branch touching watched
  paths; its commit is queued;
- ``202 {"status": "ignored", "reason": ...}``: anything else (a ping, a tag, another
  branch, only docs changed, an event not acted on);
- ``200 {"status": "duplicate"}``: a delivery id, or a body, seen before; nothing is
  done again;
- ``401``: a missing or wrong signature or token (an audit record, at most one a minute
  per source with the count, and no detail of why); a GitLab token is checked before the
  body is read;
- ``400``: a body that is not what its event says;
- a source with no secret configured has no route: like any unknown path, it asks for
  the bearer token (401);
- ``413``, ``408``: the app's body limits.

The body limits are the app's (:mod:`controller.server.app`); the raw body is what is
verified, so it is read whole first (bounded by those limits).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from controller.server.app import error_response
from controller.server.auth import PublicRoute
from controller.server.bodies import read_body
from controller.state.store import Store
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

REFUSALS_EVERY_S = 60.0


class _Refusals:
    """Audit records of refused deliveries: the first of a source at once, then at most one
    per :data:`REFUSALS_EVERY_S` with how many were refused since (a client sending forged
    deliveries in a loop cannot grow the audit log without bound)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.last: dict[str, float] = {}
        self.unrecorded: dict[str, int] = {}

    def record(self, source: str, remote: str | None) -> None:
        clock = time.monotonic()
        count = self.unrecorded.get(source, 0) + 1
        if clock - self.last.get(source, -REFUSALS_EVERY_S) < REFUSALS_EVERY_S:
            self.unrecorded[source] = count
            return
        self.last[source], self.unrecorded[source] = clock, 0
        self.store.queue.refused(source, f"the signature or token does not match ({count} refused)", remote)


@dataclass(frozen=True)
class WebhookSecrets:
    """The shared secrets, per source; a source without one has no route."""

    github: bytes | None = None
    gitlab: bytes | None = None


def routes(store: Store, secrets: WebhookSecrets, filters: Filters | None = None) -> list[BaseRoute]:
    """The webhook routes of the sources that have a secret."""

    refusals = _Refusals(store)

    def handler(
        source: str,
        authentic: Callable[[bytes, Request], bool],
        read: Callable[[dict[str, str], bytes], Delivery],
        header_only: bool = False,
    ) -> Callable[[Request], object]:
        async def receive(request: Request) -> Response:
            remote = request.client.host if request.client else None
            if header_only and not authentic(b"", request):  # refused before its body is read
                refusals.record(source, remote)
                return error_response(401, "the delivery is not authenticated")
            body = await read_body(request)
            if not header_only and not authentic(body, request):
                refusals.record(source, remote)
                return error_response(401, "the delivery is not authenticated")
            headers = {k.lower(): v for k, v in request.headers.items()}
            try:
                delivery = read(headers, body)
            except WebhookError as exc:
                return error_response(400, str(exc))
            decision = decide(delivery, filters or Filters())
            received = store.queue.receive(
                source,
                delivery.id,
                delivery.event,
                repository=delivery.repository,
                branch=delivery.branch,
                sha=delivery.sha,
                enqueue=decision.reconcile,
                reason=decision.reason,
                paths=decision.matched,
                digest="sha256:" + hashlib.sha256(body).hexdigest(),
                before=delivery.before,
                withdraw=decision.withdraw,
            )
            if received.outcome == "duplicate":
                return JSONResponse({"status": "duplicate", "reason": received.reason}, status_code=200)
            answer: dict[str, object] = {"status": received.outcome, "reason": received.reason}
            if received.item is not None:
                answer["item"] = received.item
            return JSONResponse(answer, status_code=202)

        return receive

    found: list[BaseRoute] = []
    if secrets.github is not None:
        github = secrets.github

        def github_ok(body: bytes, request: Request) -> bool:
            return github_signed(github, body, request.headers.get("x-hub-signature-256"))

        found.append(PublicRoute("/webhooks/github", handler("github", github_ok, read_github), methods=["POST"]))
    if secrets.gitlab is not None:
        gitlab = secrets.gitlab

        def gitlab_ok(body: bytes, request: Request) -> bool:
            return gitlab_token_matches(gitlab, request.headers.get("x-gitlab-token"))

        found.append(
            PublicRoute(
                "/webhooks/gitlab", handler("gitlab", gitlab_ok, read_gitlab, header_only=True), methods=["POST"]
            )
        )
    return found
