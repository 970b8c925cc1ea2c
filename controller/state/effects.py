"""The effects ledger: what became of every idempotency key.

Each step writes its ledger entry in the same transaction as its effect and
the effect's audit record; the planner decides from the ledger (and the desired
digests), so a crash at any point, and a re-run, neither duplicates nor skips
an effect. A step that raised is recorded here too (``ReconcileFailed``), with
an audit record carrying the error.
"""

from __future__ import annotations

from controller.api.status import ActionKind, OutcomeKind, Reason
from controller.state.audit import AuditTrail
from controller.state.clock import now
from controller.state.db import Database
from controller.state.records import Effect


class Ledger:
    def __init__(self, db: Database, audit: AuditTrail) -> None:
        self._db = db
        self._audit = audit

    def get(self, key: str) -> Effect | None:
        row = self._db.execute("SELECT * FROM effects WHERE key = ?", (key,)).fetchone()
        return None if row is None else Effect.from_row(row)

    def all(self) -> dict[str, Effect]:
        return {row["key"]: Effect.from_row(row) for row in self._db.execute("SELECT * FROM effects")}

    def record(
        self,
        key: str,
        kind: ActionKind,
        resource: str,
        outcome: OutcomeKind,
        reason: Reason,
        message: str = "",
        *,
        revision: str | None = None,
        retry_after: str | None = None,
    ) -> None:
        """Write (or overwrite) the entry for ``key``; joins the caller's transaction.
        A succeeded entry is final: it is never overwritten."""
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO effects (key, kind, resource, outcome, reason, message, attempts, retry_after, "
                "revision, at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET outcome = excluded.outcome, reason = excluded.reason, "
                "message = excluded.message, attempts = effects.attempts + 1, retry_after = excluded.retry_after, "
                "revision = excluded.revision, at = excluded.at WHERE effects.outcome != 'Succeeded'",
                (key, str(kind), resource, str(outcome), str(reason), message, retry_after, revision, now()),
            )

    def record_failure(self, key: str, kind: ActionKind, resource: str, error: str, *, revision: str | None) -> None:
        """A step raised: ``ReconcileFailed`` in the ledger and the error in the audit log."""
        with self._db.transaction():
            self.record(key, kind, resource, OutcomeKind.STALLED, Reason.RECONCILE_FAILED, error, revision=revision)
            self._audit.append(
                "reconcile-failed", resource, {"key": key, "action": str(kind), "error": error}, revision=revision
            )
