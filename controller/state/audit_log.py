"""The audit log: append-only, hash-chained records of everything decided.

Each record holds the previous record's hash; its own hash covers its
sequence number, time, event, actor, revision, subject, payload and that
previous hash. :func:`verify` walks the chain and names the first record that
was edited, removed or reordered.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


@dataclass(frozen=True)
class Record:
    seq: int
    at: str
    event: str
    actor: str
    revision: str | None
    subject: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


def _hash(
    seq: int, at: str, event: str, actor: str, revision: str | None, subject: str, payload: str, prev: str
) -> str:
    body = json.dumps([seq, at, event, actor, revision, subject, payload, prev], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def canonical(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def append(
    conn: sqlite3.Connection,
    event: str,
    subject: str,
    payload: dict[str, Any],
    *,
    actor: str = "modelplane",
    revision: str | None = None,
) -> Record:
    """Append one record. Call inside the transaction that makes the change it records."""
    last = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (last["seq"] + 1, last["hash"]) if last else (1, GENESIS)
    at = datetime.now(UTC).isoformat(timespec="microseconds")
    text = canonical(payload)
    digest = _hash(seq, at, event, actor, revision, subject, text, prev)
    conn.execute(
        "INSERT INTO audit_log (seq, at, event, actor, revision, subject, payload, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, at, event, actor, revision, subject, text, prev, digest),
    )
    return Record(seq, at, event, actor, revision, subject, payload, prev, digest)


def records(conn: sqlite3.Connection, subject: str | None = None, events: Sequence[str] = ()) -> list[Record]:
    """The records (of ``subject``, of the ``events`` named, when given), oldest first."""
    where, params = [], []
    if subject:
        where.append("subject = ?")
        params.append(subject)
    if events:
        where.append(f"event IN ({', '.join('?' for _ in events)})")
        params.extend(events)
    query = "SELECT * FROM audit_log" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq"
    rows = conn.execute(query, params).fetchall()
    return [
        Record(
            r["seq"],
            r["at"],
            r["event"],
            r["actor"],
            r["revision"],
            r["subject"],
            json.loads(r["payload"]),
            r["prev_hash"],
            r["hash"],
        )
        for r in rows
    ]


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    problem: str | None = None
    seq: int | None = None


def verify(conn: sqlite3.Connection) -> Verification:
    """Walk the chain from the first record; report the first break."""
    prev, expected_seq, checked = GENESIS, 1, 0
    for r in conn.execute("SELECT * FROM audit_log ORDER BY seq"):
        if r["seq"] != expected_seq:
            return Verification(False, checked, f"record {expected_seq} is missing (next is {r['seq']})", expected_seq)
        if r["prev_hash"] != prev:
            return Verification(
                False,
                checked,
                f"record {r['seq']} does not follow record {r['seq'] - 1}: removed or reordered",
                r["seq"],
            )
        digest = _hash(
            r["seq"], r["at"], r["event"], r["actor"], r["revision"], r["subject"], r["payload"], r["prev_hash"]
        )
        if digest != r["hash"]:
            return Verification(
                False, checked, f"record {r['seq']} was edited: its content does not match its hash", r["seq"]
            )
        prev, expected_seq, checked = r["hash"], expected_seq + 1, checked + 1
    return Verification(True, checked)
