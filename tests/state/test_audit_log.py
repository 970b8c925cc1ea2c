"""The hash-chained audit log: any edit, removal or reordering is found and named.

Tampering goes through a connection of its own, as an attacker with the file would."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from controller.state.store import Store


def tamper(store: Store, sql: str, params: tuple[object, ...] = ()) -> None:
    conn = sqlite3.connect(store.db.path)
    with conn:
        conn.execute(sql, params)
    conn.close()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "state")
    for i in range(5):
        s.audit.append("test", f"Model/m{i}", {"n": i}, actor="alice", revision="abc")
    return s


def test_intact_chain_verifies(store: Store) -> None:
    result = store.audit.verify()
    assert (result.ok, result.checked) == (True, 5)


def test_edited_record_is_named(store: Store) -> None:
    tamper(store, "UPDATE audit_log SET payload = '{\"n\":99}' WHERE seq = 3")
    result = store.audit.verify()
    assert (result.ok, result.seq) == (False, 3)
    assert result.problem == "record 3 was edited: its content does not match its hash"


def test_edited_actor_is_found(store: Store) -> None:
    tamper(store, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    assert store.audit.verify().seq == 2


def test_removed_record_is_named(store: Store) -> None:
    tamper(store, "DELETE FROM audit_log WHERE seq = 2")
    result = store.audit.verify()
    assert (result.ok, result.seq, result.problem) == (False, 2, "record 2 is missing (next is 3)")


def test_removed_tail_is_found_by_the_head_file(store: Store) -> None:
    tamper(store, "DELETE FROM audit_log WHERE seq >= 4")
    result = store.audit.verify()
    assert not result.ok and result.problem == "records after 3 were removed (the log reached record 5)"


def test_reordered_records_are_found(store: Store) -> None:
    conn = sqlite3.connect(store.db.path)
    conn.row_factory = sqlite3.Row
    with conn:
        rows = conn.execute("SELECT * FROM audit_log WHERE seq IN (2, 3) ORDER BY seq").fetchall()
        conn.execute("DELETE FROM audit_log WHERE seq IN (2, 3)")
        for row, seq in zip(rows, (3, 2), strict=True):
            conn.execute(
                "INSERT INTO audit_log (seq, at, event, actor, revision, subject, payload, prev_hash, hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    seq,
                    *[row[c] for c in ("at", "event", "actor", "revision", "subject", "payload", "prev_hash")],
                    row["hash"],
                ),
            )
    conn.close()
    result = store.audit.verify()
    assert not result.ok and result.seq == 2


def test_cli_audit_verify_passes_then_names_the_edited_record(store: Store) -> None:
    exe = Path(sys.executable).with_name("modelplane")
    state_dir = str(store.state_dir)
    ok = subprocess.run([str(exe), "audit", "verify", "--state-dir", state_dir], capture_output=True, text=True)
    assert (ok.returncode, ok.stdout) == (0, "audit log intact: 5 records, hash chain verified\n")
    tamper(store, "UPDATE audit_log SET revision = 'forged' WHERE seq = 4")
    bad = subprocess.run([str(exe), "audit", "verify", "--state-dir", state_dir], capture_output=True, text=True)
    assert bad.returncode == 1
    assert bad.stdout == (
        "audit log BROKEN at record 4: record 4 was edited: its content does not match its hash "
        "(3 records verified before it)\n"
    )
