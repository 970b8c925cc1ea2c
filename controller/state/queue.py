"""The triggers area: webhook deliveries and the durable work queue of revisions.

Written by the server's webhook routes (:mod:`controller.server.webhooks`): every
delivery is recorded once by its id (a redelivery or a replay is answered as a
duplicate and changes nothing), and a delivery that asks for a reconcile enqueues its
branch's commit, superseding the items of that branch still waiting (only the newest
commit of a branch is reconciled). A worker takes an item with a lease
(:meth:`WorkQueue.lease`); an item whose lease ran out (its worker crashed) is taken
again, with its attempts counted. Each queued, refused and superseded delivery has an
audit record in the same transaction.

The worker is :class:`controller.triggers.worker.Worker`, run by ``modelplane
controller``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from controller.state.audit import AuditTrail
from controller.state.clock import now
from controller.state.db import Database

PENDING, LEASED, DONE, FAILED, SUPERSEDED = "pending", "leased", "done", "failed", "superseded"


@dataclass(frozen=True)
class QueueItem:
    id: int
    source: str
    delivery: str | None
    repository: str | None
    branch: str
    sha: str
    before: str | None
    paths: tuple[str, ...]
    state: str
    attempts: int
    lease_owner: str | None
    lease_until: float | None
    enqueued_at: str
    finished_at: str | None
    detail: str | None

    @classmethod
    def from_row(cls, row: Any) -> QueueItem:
        data = dict(row)
        data["paths"] = tuple(json.loads(data["paths"]))
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "paths": list(self.paths)}


@dataclass(frozen=True)
class Received:
    """What became of a delivery: ``duplicate`` (seen before: nothing done), ``queued``
    (``item``), or ``ignored`` (``reason``)."""

    outcome: str
    reason: str
    item: int | None = None


class WorkQueue:
    def __init__(self, db: Database, audit: AuditTrail) -> None:
        self._db = db
        self._audit = audit

    def receive(
        self,
        source: str,
        delivery: str,
        event: str,
        *,
        repository: str | None,
        branch: str | None,
        sha: str | None,
        enqueue: bool,
        reason: str,
        paths: tuple[str, ...] = (),
        digest: str = "",
        before: str | None = None,
        withdraw: bool = False,
    ) -> Received:
        """Record a delivery once, by its id and by the ``digest`` of its body (a signed body
        sent again under another id is the same delivery); when ``enqueue``, queue its
        branch's commit in the same transaction, superseding that branch's waiting items,
        unless the branch has already moved past it (a commit whose push is the ``before``
        of a queued one arrived late). ``withdraw`` (a deleted branch) supersedes the
        branch's waiting items."""
        with self._db.transaction() as conn:
            seen = conn.execute(
                "SELECT outcome, reason, item FROM deliveries WHERE source = ? AND (id = ? OR digest = ?)",
                (source, delivery, digest or delivery),
            ).fetchone()
            if seen is not None:
                said = f"delivery {delivery} was received before ({seen['outcome']})"
                return Received("duplicate", said, seen["item"])
            item = None
            if withdraw and branch is not None:
                self._supersede(conn, source, repository, branch, f"branch {branch} was deleted")
            if enqueue and branch is not None and sha is not None:
                newer = conn.execute(
                    "SELECT sha FROM work_queue WHERE branch = ? AND repository IS ? AND before = ? LIMIT 1",
                    (branch, repository, sha),
                ).fetchone()
                if newer is not None and newer["sha"] != before:  # else: moved back from it (a force push)
                    reason = f"{branch} has moved past {sha} already (to {newer['sha']}): a late delivery"
                else:
                    item = self._enqueue(conn, source, delivery, repository, branch, sha, before, paths)
            outcome = "queued" if item is not None else "ignored"
            conn.execute(
                "INSERT INTO deliveries (source, id, event, repository, branch, sha, digest, outcome, reason, item,"
                " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (source, delivery, event, repository, branch, sha, digest or delivery, outcome, reason, item, now()),
            )
            if item is not None:
                self._audit.append(
                    "webhook-queued",
                    f"{source}:{repository or '?'}@{branch}",
                    {"delivery": delivery, "event": event, "sha": sha, "item": item, "reason": reason},
                    actor=f"webhook:{source}",
                )
        return Received(outcome, reason, item)

    def _enqueue(
        self,
        conn: Any,
        source: str,
        delivery: str,
        repository: str | None,
        branch: str,
        sha: str,
        before: str | None,
        paths: tuple[str, ...],
    ) -> int:
        self._supersede(conn, source, repository, branch, f"superseded by {sha}")
        cursor = conn.execute(
            "INSERT INTO work_queue (source, delivery, repository, branch, sha, before, paths, state, enqueued_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (source, delivery, repository, branch, sha, before, json.dumps(list(paths)), PENDING, now()),
        )
        return int(cursor.lastrowid)

    def _supersede(self, conn: Any, source: str, repository: str | None, branch: str, why: str) -> None:
        waiting = conn.execute(
            "SELECT id, sha FROM work_queue WHERE state = ? AND branch = ? AND repository IS ?",
            (PENDING, branch, repository),
        ).fetchall()
        for old in waiting:
            conn.execute(
                "UPDATE work_queue SET state = ?, finished_at = ?, detail = ? WHERE id = ?",
                (SUPERSEDED, now(), why, old["id"]),
            )
            self._audit.append(
                "queue-superseded",
                f"{source}:{repository or '?'}@{branch}",
                {"item": old["id"], "sha": old["sha"], "why": why},
                actor=f"webhook:{source}",
            )

    def lease(self, owner: str, seconds: float) -> QueueItem | None:
        """The oldest item waiting, or one whose lease ran out, now held by ``owner`` for
        ``seconds``; None when there is none."""
        clock = time.time()
        with self._db.transaction() as conn:
            # One commit of a branch at a time: not a branch another worker holds (an unexpired lease).
            row = conn.execute(
                "SELECT * FROM work_queue AS q WHERE (q.state = ? OR (q.state = ? AND q.lease_until < ?))"
                " AND NOT EXISTS (SELECT 1 FROM work_queue AS held WHERE held.state = ? AND held.lease_until >= ?"
                " AND held.branch = q.branch AND held.repository IS q.repository AND held.id != q.id)"
                " ORDER BY q.id LIMIT 1",
                (PENDING, LEASED, clock, LEASED, clock),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE work_queue SET state = ?, lease_owner = ?, lease_until = ?, attempts = attempts + 1"
                " WHERE id = ?",
                (LEASED, owner, clock + seconds, row["id"]),
            )
            updated = conn.execute("SELECT * FROM work_queue WHERE id = ?", (row["id"],)).fetchone()
        return QueueItem.from_row(updated)

    def renew(self, item: int, owner: str, seconds: float) -> bool:
        """Extend ``owner``'s lease of ``item`` by ``seconds`` from now; False when it was lost."""
        with self._db.transaction() as conn:
            changed = conn.execute(
                "UPDATE work_queue SET lease_until = ? WHERE id = ? AND state = ? AND lease_owner = ?",
                (time.time() + seconds, item, LEASED, owner),
            ).rowcount
        return changed == 1

    def finish(self, item: int, owner: str, *, ok: bool, detail: str) -> bool:
        """Close ``item`` (done or failed) if ``owner`` still holds it; False when its lease
        was lost (another worker took it over)."""
        with self._db.transaction() as conn:
            changed = conn.execute(
                "UPDATE work_queue SET state = ?, finished_at = ?, detail = ?, lease_until = NULL"
                " WHERE id = ? AND state = ? AND lease_owner = ?",
                (DONE if ok else FAILED, now(), detail, item, LEASED, owner),
            ).rowcount
        return changed == 1

    def items(self, limit: int = 50) -> list[QueueItem]:
        """The newest items first."""
        rows = self._db.execute("SELECT * FROM work_queue ORDER BY id DESC LIMIT ?", (limit,))
        return [QueueItem.from_row(r) for r in rows]

    def deliveries(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT * FROM deliveries ORDER BY received_at DESC, rowid DESC LIMIT ?", (limit,))
        return [dict(r) for r in rows]

    def refused(self, source: str, reason: str, remote: str | None) -> None:
        """An audit record of a delivery refused before it was read (a bad signature)."""
        with self._db.transaction():
            self._audit.append(
                "webhook-refused", f"{source}:webhook", {"reason": reason, "remote": remote}, actor=f"webhook:{source}"
            )
