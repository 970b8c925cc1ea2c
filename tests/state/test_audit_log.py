"""The hash-chained audit log: any edit, removal or reordering is found and named."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.state.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "state")
    for i in range(5):
        s.audit("test", f"Model/m{i}", {"n": i}, actor="alice", revision="abc")
    return s


def test_intact_chain_verifies(store: Store) -> None:
    result = store.verify_audit()
    assert (result.ok, result.checked) == (True, 5)


def test_edited_record_is_named(store: Store) -> None:
    store.conn.execute("UPDATE audit_log SET payload = '{\"n\":99}' WHERE seq = 3")
    result = store.verify_audit()
    assert (result.ok, result.seq) == (False, 3)
    assert result.problem == "record 3 was edited: its content does not match its hash"


def test_edited_actor_is_found(store: Store) -> None:
    store.conn.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    assert store.verify_audit().seq == 2


def test_removed_record_is_named(store: Store) -> None:
    store.conn.execute("DELETE FROM audit_log WHERE seq = 2")
    result = store.verify_audit()
    assert (result.ok, result.seq, result.problem) == (False, 2, "record 2 is missing (next is 3)")


def test_removed_tail_is_found_by_the_head_file(store: Store) -> None:
    store.conn.execute("DELETE FROM audit_log WHERE seq >= 4")
    result = store.verify_audit()
    assert not result.ok and result.problem == "records after 3 were removed (the log reached record 5)"


def test_reordered_records_are_found(store: Store) -> None:
    rows = store.conn.execute("SELECT * FROM audit_log WHERE seq IN (2, 3) ORDER BY seq").fetchall()
    store.conn.execute("DELETE FROM audit_log WHERE seq IN (2, 3)")
    for row, seq in zip(rows, (3, 2), strict=True):
        store.conn.execute(
            "INSERT INTO audit_log (seq, at, event, actor, revision, subject, payload, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                seq,
                row["at"],
                row["event"],
                row["actor"],
                row["revision"],
                row["subject"],
                row["payload"],
                row["prev_hash"],
                row["hash"],
            ),
        )
    result = store.verify_audit()
    assert not result.ok and result.seq == 2


def test_approval_by_the_same_person_counts_once(tmp_path: Path) -> None:
    s = Store(tmp_path / "state")
    s.start_run("r1", "k1", "m", None, "d", "sha256:" + "0" * 64, "x")
    s.conn.execute("UPDATE runs SET status = 'passed' WHERE id = 'r1'")
    s.register("m", "r1", "sha256:" + "1" * 64, None)
    assert s.approve("m", 1, "alice") is True
    assert s.approve("m", 1, "alice") is False
    assert s.approvals("m", 1) == ["alice"]
    assert [r.event for r in __import__("controller.state.audit_log", fromlist=["records"]).records(s.conn)] == [
        "register",
        "approve",
    ]
    with pytest.raises(KeyError, match="m has no version 7"):
        s.approve("m", 7, "bob")


def test_cli_audit_verify_passes_then_names_the_edited_record(store: Store) -> None:
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("modelplane")
    state_dir = str(store.state_dir)
    ok = subprocess.run([str(exe), "audit", "verify", "--state-dir", state_dir], capture_output=True, text=True)
    assert (ok.returncode, ok.stdout) == (0, "audit log intact: 5 records, hash chain verified\n")
    store.conn.execute("UPDATE audit_log SET revision = 'forged' WHERE seq = 4")
    bad = subprocess.run([str(exe), "audit", "verify", "--state-dir", state_dir], capture_output=True, text=True)
    assert bad.returncode == 1
    assert bad.stdout == (
        "audit log BROKEN at record 4: record 4 was edited: its content does not match its hash "
        "(3 records verified before it)\n"
    )
