"""The audit area: append to the hash chain, verify it, read it back.

Records are appended inside the transaction of the change they record (the
areas call :meth:`AuditTrail.append` from within theirs). After each commit the
chain's head is written outside the database (``audit.head``), so that a
truncated log shows.
"""

from __future__ import annotations

import fcntl
import hmac
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from controller.state import anchor, audit_log
from controller.state.db import Database

HEAD_FILE = "audit.head"


class AuditTrail:
    def __init__(self, db: Database, state_dir: Path, *, adopt_key: bool = False) -> None:
        self._db = db
        self._head = state_dir / HEAD_FILE
        self._key = anchor.load_key(state_dir)
        db.on_commit.append(self._write_head)
        self._check_head(state_dir, adopt_key)
        # A log that was empty when opened has no head until this process's first commit
        # writes one: its own first records, not yet committed, have none to check against.
        self._opened_empty = self.last() is None

    def _check_head(self, state_dir: Path, adopt_key: bool) -> None:
        """Refuse to work on a log its recorded head does not vouch for: nothing written
        after this would be signed over a rewritten chain. ``adopt_key`` lets an unsigned
        head pass (see :meth:`sign_head`)."""
        try:
            recorded = self.recorded_head()
        except anchor.StateError as exc:
            raise anchor.StateLost(f"{self._head}: {exc}: restore the state directory from a backup") from None
        restore = "Restore the state directory from a backup; do not start afresh ('modelplane state check' tells more)"
        if recorded is None:
            last = self.last()
            if last is not None and self._key is not None:
                raise anchor.StateLost(
                    f"{self._head} is missing but the log in {state_dir} has {last.seq} records and an audit key is "
                    f"set: the chain cannot be vouched for. {restore}"
                )
            return
        problem = self._head_problem(recorded, adopt_key=adopt_key)
        if problem is not None:
            what, detail = problem
            raise anchor.StateLost(f"{self._head}: {what}" + (f": {detail}" if detail else "") + f". {restore}")

    def _still_vouched(self) -> None:
        """The check of :meth:`_check_head`, again before a record is written: the log may
        have been changed since this process opened it."""
        recorded = self.recorded_head()
        if recorded is None:
            if self._key is not None and self.last() is not None and not self._opened_empty:
                raise anchor.StateLost(
                    f"{self._head} was removed while the log has records and an audit key is set: refusing to "
                    "write. Restore the state directory from a backup"
                )
            return
        problem = self._head_problem(recorded)
        if problem is not None:
            what, detail = problem
            raise anchor.StateLost(
                f"{self._head}: {what}; refusing to write"
                + (f" ({detail})" if detail else "")
                + ". Restore the state directory from a backup"
            )

    def _head_problem(self, recorded: anchor.Head, *, adopt_key: bool = False) -> tuple[str, str | None] | None:
        """Why the log is not the one ``recorded`` vouches for, as (what, detail), or None:
        records lost or rewritten up to the head, the head's signature (while a key is
        set; an unsigned one passes when adopting a key), and with a key, a record after
        the head that carries no valid signature of its own."""
        last = self.last()
        if last is None or last.seq < recorded.seq:
            have = last.seq if last else 0
            reached = f"{HEAD_FILE} says the log reached record {recorded.seq}, the database has {have}"
            return "records were lost", reached
        if self.hash_at(recorded.seq) != recorded.hash:
            return "the log was rewritten", f"record {recorded.seq} is not the one {HEAD_FILE} records"
        problem = anchor.signature_problem(recorded, self._key)
        if problem:
            return None if adopt_key and recorded.mac is None else (problem, None)
        forged = self._unsigned_after(recorded.seq)
        if forged is not None:
            return (
                f"record {forged}, after the signed head, carries no valid signature",
                "it was not written by modelplane with the key",
            )
        return None

    def _unsigned_after(self, seq: int) -> int | None:
        """With a key: the first record after ``seq`` (the signed head) that does not carry
        its own valid signature, or None. Records are signed as they are written, so one
        that is not was written by someone without the key."""
        if self._key is None:
            return None
        rows = self._db.execute("SELECT seq, hash, mac FROM audit_log WHERE seq > ? ORDER BY seq", (seq,))
        for row in rows:
            expected = anchor.sign(self._key, row["seq"], row["hash"])
            if row["mac"] is None or not hmac.compare_digest(row["mac"], expected):
                return int(row["seq"])
        return None

    def sign_head(self, exported: anchor.Head | None) -> anchor.Head:
        """Sign the head of a log kept without a key so far (the key is set now).

        What vouches for the log before the key is ``exported``, the repo's anchor: it
        must be there, unsigned (a signed one means a key was in use: an unsigned head is
        a rewrite with its signature stripped) and name the log's last record, and the
        chain must verify. Raises :class:`~controller.state.anchor.StateLost` when the log
        is not the one the anchor vouches for, :class:`~controller.state.db.StateError`
        when adopting is not possible yet."""
        if self._key is None:
            raise anchor.StateError(f"no audit key is set ({anchor.KEY_ENV} or {anchor.KEY_FILE_ENV})")
        if exported is None:
            raise anchor.StateError(
                "export the log's head first, before the key is set ('modelplane audit anchor' without the key, "
                "then push refs/modelplane/audit), so that what the key starts from is vouched for"
            )
        if exported.mac is not None:
            raise anchor.StateLost(
                "the repo's audit anchor is signed, so a key was in use already: an unsigned head means the log "
                "was rewritten since. Restore the state directory from a backup"
            )
        last = self.last()
        if self.hash_at(exported.seq) != exported.hash or last is None or last.seq != exported.seq:
            raise anchor.StateLost(
                f"the log does not end at record {exported.seq} as the repo's anchor proves (it has "
                f"{last.seq if last else 0} records): only a log the anchor vouches for, record for record, can "
                "adopt a key. Restore the state directory from a backup, or anchor again before the key is set"
            )
        result = audit_log.verify(self._db.conn)
        if not result.ok:
            raise anchor.StateLost(f"the audit log does not verify at record {result.seq}: {result.problem}")
        tmp = self._head.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(last.text())
        tmp.replace(self._head)
        return last

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
        skip it when an event with the same ``payload['key']`` is there already.

        Before each record the recorded head is checked again (as at open): a chain
        rewritten while this process runs (a long apply, a server) is refused, never
        extended and signed over."""
        with self._db.transaction() as conn:
            self._still_vouched()
            if (
                once
                and conn.execute(
                    "SELECT 1 FROM audit_log WHERE event = ? AND subject = ? AND json_extract(payload, '$.key') = ?",
                    (event, subject, payload["key"]),
                ).fetchone()
            ):
                return False
            record = audit_log.append(conn, event, subject, payload, actor=actor, revision=revision)
            if self._key is not None:
                mac = anchor.sign(self._key, record.seq, record.hash)
                conn.execute("UPDATE audit_log SET mac = ? WHERE seq = ?", (mac, record.seq))
        return True

    def records(self, subject: str | None = None, events: Sequence[str] = ()) -> list[audit_log.Record]:
        return audit_log.records(self._db.conn, subject, events)

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
            recorded = self.recorded_head()
            if recorded is not None and recorded.seq >= row["seq"]:
                return
            tmp = self._head.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(anchor.signed(self._key, row["seq"], row["hash"]).text())
            tmp.replace(self._head)

    def recorded_head(self) -> anchor.Head | None:
        """The head last written outside the database (None before the first record)."""
        try:
            return anchor.Head.parse(self._head.read_text())
        except FileNotFoundError:
            return None

    def last(self) -> anchor.Head | None:
        """The head of the chain in the database, signed when a key is set."""
        row = self._db.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        return None if row is None else anchor.signed(self._key, row["seq"], row["hash"])

    def hash_at(self, seq: int) -> str | None:
        row = self._db.execute("SELECT hash FROM audit_log WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else str(row["hash"])

    def check_anchor(self, exported: anchor.Head) -> None:
        """Refuse a store that does not contain the chain an exported anchor proves. An
        anchor exported before the key was set carries no signature: it vouches by its
        hash alone (the repo, not the state, keeps it)."""
        problem = anchor.signature_problem(exported, self._key) if exported.mac is not None else None
        if problem:
            raise anchor.StateLost(f"the exported audit anchor: {problem}")
        if self.hash_at(exported.seq) != exported.hash:
            last = self.last()
            raise anchor.StateLost(
                f"the state does not hold the audit chain anchored in the repo (record {exported.seq}, "
                f"the database has {last.seq if last else 0} records"
                + (", with another history)" if last and last.seq >= exported.seq else ")")
                + ": restore the state directory from a backup; do not start afresh"
            )

    def verify(self) -> audit_log.Verification:
        result = audit_log.verify(self._db.conn)
        recorded = self.recorded_head()
        if result.ok and recorded is None and result.checked:
            return audit_log.Verification(
                False,
                result.checked,
                f"the audit head ({HEAD_FILE}) is missing but the log has {result.checked} records",
                result.checked,
            )
        if result.ok and recorded is not None:
            seq, digest = recorded.seq, recorded.hash
            problem = anchor.signature_problem(recorded, self._key)
            if problem:
                return audit_log.Verification(False, result.checked, problem, seq)
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
            forged = self._unsigned_after(seq)
            if forged is not None:
                return audit_log.Verification(
                    False, result.checked, f"record {forged}, after the signed head, carries no valid signature", forged
                )
        return result
