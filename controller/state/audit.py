"""The audit area: append to the hash chain, verify it, read it back.

Records are appended inside the transaction of the change they record (the
areas call :meth:`AuditTrail.append` from within theirs). After each commit the
chain's head is written outside the database (``audit.head``), so that a
truncated log shows.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

from controller.state import audit_log
from controller.state.db import Database


class AuditTrail:
    def __init__(self, db: Database, state_dir: Path) -> None:
        self._db = db
        self._head = state_dir / "audit.head"
        db.on_commit.append(self._write_head)

    def append(
        self,
        event: str,
        subject: str,
        payload: dict[str, Any],
        *,
        actor: str = "modelplane",
        revision: str | None = None,
        once: bool = False,
    ) -> bool:
        """Record an event (joining the caller's transaction, if any). With ``once``,
        skip it when an event with the same ``payload['key']`` is there already."""
        with self._db.transaction() as conn:
            if (
                once
                and conn.execute(
                    "SELECT 1 FROM audit_log WHERE event = ? AND subject = ? AND json_extract(payload, '$.key') = ?",
                    (event, subject, payload["key"]),
                ).fetchone()
            ):
                return False
            audit_log.append(conn, event, subject, payload, actor=actor, revision=revision)
        return True

    def records(self, subject: str | None = None) -> list[audit_log.Record]:
        return audit_log.records(self._db.conn, subject)

    def latest(self, event: str, subject: str) -> audit_log.Record | None:
        rows = audit_log.records(self._db.conn, subject)
        return next((r for r in reversed(rows) if r.event == event), None)

    def _write_head(self) -> None:
        """After a commit: move the head forward, never back (writers on other threads and
        processes commit concurrently; the file lock orders their read-compare-replace)."""
        row = self._db.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        if not row:
            return
        with open(self._head.with_suffix(".lock"), "a") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            if self._head_seq() >= row["seq"]:
                return
            tmp = self._head.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(f"{row['seq']} {row['hash']}\n")
            tmp.replace(self._head)

    def _head_seq(self) -> int:
        try:
            return int(self._head.read_text().split(" ", 1)[0])
        except (FileNotFoundError, ValueError):
            return 0

    def verify(self) -> audit_log.Verification:
        result = audit_log.verify(self._db.conn)
        if result.ok and self._head.exists():
            seq_text, _, digest = self._head.read_text().strip().partition(" ")
            seq = int(seq_text)
            if result.checked < seq:
                return audit_log.Verification(
                    False,
                    result.checked,
                    f"records after {result.checked} were removed (the log reached record {seq})",
                    result.checked + 1,
                )
            row = self._db.execute("SELECT hash FROM audit_log WHERE seq = ?", (seq,)).fetchone()
            if row is None or row["hash"] != digest:
                return audit_log.Verification(
                    False, result.checked, f"record {seq} does not match the recorded head", seq
                )
        return result
