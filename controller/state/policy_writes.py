"""The policy-writes area: policies and data written over the Data API, by whom.

Called by :mod:`controller.server.serve` (``modelplane policy serve
--allow-policy-writes`` / ``--allow-data-writes``). The audit log is the record: every
write is an audit record with the client's name as actor and the SHA-256 of what it
wrote (never the token, never the data itself); a written policy's text is kept in the
artifact store under that digest. :meth:`PolicyWrites.current` replays the records, so
a restarted server serves the policies written before it stopped, each verified
against its digest.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.state.artifacts import ArtifactStore, sha256
from controller.state.audit import AuditTrail
from controller.state.audit_log import Record
from controller.state.db import Database

POLICY_WRITTEN = "policy-written"
POLICY_DELETED = "policy-deleted"
POLICY_FORGOTTEN = "policy-forgotten"  # an operator dropped a write: the repo's version (if any) is served again
DATA_WRITTEN = "data-written"


@dataclass(frozen=True)
class WrittenPolicy:
    """The last write of one policy id: its text, or None when it was deleted."""

    id: str
    text: str | None
    client: str
    at: str


class PolicyWrites:
    def __init__(self, db: Database, audit: AuditTrail, artifacts: ArtifactStore) -> None:
        self._db = db
        self._audit = audit
        self._artifacts = artifacts

    def write(self, policy_id: str, text: str, client: str) -> str:
        """Record a policy written by ``client``; returns the digest of its text."""
        data = text.encode("utf-8")
        with self._db.transaction():
            digest = self._artifacts.put(data)  # content-addressed: a rolled-back write leaves a harmless blob
            self._audit.append(
                POLICY_WRITTEN,
                f"policy/{policy_id}",
                {"id": policy_id, "sha256": digest, "bytes": len(data)},
                actor=client,
            )
        return digest

    def delete(self, policy_id: str, client: str) -> None:
        self._audit.append(POLICY_DELETED, f"policy/{policy_id}", {"id": policy_id}, actor=client)

    def forget(self, policy_id: str, actor: str) -> bool:
        """Drop what was written (or deleted) over HTTP for ``policy_id``, so the repo's
        version, if any, is served again (audited, with ``actor``); False when nothing
        written is in force for that id."""
        if policy_id not in {w.id for w in self.current(texts=False)}:
            return False
        self._audit.append(POLICY_FORGOTTEN, f"policy/{policy_id}", {"id": policy_id}, actor=actor)
        return True

    def data_written(self, path: str, body: bytes, client: str) -> None:
        """Record a document written to ``data.<path>``: its digest and size, not its content."""
        self._audit.append(
            DATA_WRITTEN, f"data/{path}", {"path": path, "sha256": sha256(body), "bytes": len(body)}, actor=client
        )

    def current(self, *, texts: bool = True) -> list[WrittenPolicy]:
        """Every policy id written or deleted and not forgotten since, with its last write,
        in the order of those last writes. Raises
        :class:`~controller.state.artifacts.ArtifactError` when a written text is missing
        or does not match its recorded digest (with ``texts``; without, texts are "")."""
        last: dict[str, Record] = {}
        for record in self._audit.records(events=(POLICY_WRITTEN, POLICY_DELETED, POLICY_FORGOTTEN)):
            policy_id = str(record.payload["id"])
            last.pop(policy_id, None)  # keep the dict in the order of last writes
            if record.event != POLICY_FORGOTTEN:
                last[policy_id] = record
        return [
            WrittenPolicy(
                policy_id,
                (self._text(r) if texts else "") if r.event == POLICY_WRITTEN else None,
                r.actor,
                r.at,
            )
            for policy_id, r in last.items()
        ]

    def _text(self, record: Record) -> str:
        return self._artifacts.get(str(record.payload["sha256"])).decode("utf-8")
