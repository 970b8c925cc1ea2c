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


def test_aliases_resolve_move_and_are_audited(tmp_path: Path) -> None:
    s = Store(tmp_path / "state")
    for i, run in enumerate(("r1", "r2"), start=1):
        s.start_run(run, f"k{i}", "m", None, "d", "sha256:" + "0" * 64, "x")
        s.conn.execute("UPDATE runs SET status = 'passed' WHERE id = ?", (run,))
        s.register("m", run, "sha256:" + str(i) * 64, None)
    s.set_alias("m", "champion", 1, actor="alice")
    assert s.resolve_version("m", "champion") == 1
    s.set_alias("m", "champion", s.resolve_version("m", "v2"), actor="bob")
    assert s.aliases("m") == {"champion": 2}
    moves = [
        r.payload
        for r in __import__("controller.state.audit_log", fromlist=["x"]).records(s.conn)
        if r.event == "alias"
    ]
    assert moves == [
        {"alias": "champion", "version": 1, "previous": None},
        {"alias": "champion", "version": 2, "previous": 1},
    ]
    with pytest.raises(KeyError, match="would shadow a stage"):
        s.set_alias("m", "production", 1, actor="eve")
    with pytest.raises(KeyError, match="has no version, stage or alias 'challenger'"):
        s.resolve_version("m", "challenger")
    assert s.verify_audit().ok


def test_an_older_database_is_migrated_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from controller.state import db

    state = tmp_path / "state"
    monkeypatch.setattr(db, "MIGRATIONS", db.MIGRATIONS[:1])
    old = db.connect(state)
    old.execute("INSERT INTO approvals (model, version, approver, at) VALUES ('m', 1, 'alice', 'then')")
    old.close()
    monkeypatch.undo()
    s = Store(state)
    assert s.conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] == len(db.MIGRATIONS) == 2
    assert s.conn.execute("SELECT count(*) FROM aliases").fetchone()[0] == 0
    assert s.approvals("m", 1) == ["alice"]
