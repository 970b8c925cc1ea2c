"""Losing or rewriting the state never looks like a fresh start.

Attacks: delete the database, delete the whole state directory (the repo's anchor
remembers), truncate the log, rewrite the log and its head together (a signed head
catches it), keep the key inside the state directory, corrupt the database file."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from controller.cli import main
from controller.state.anchor import KEY_ENV, KEY_FILE_ENV, StateLost
from controller.state.db import StateError
from controller.state.store import Store


def git(cwd: Path, *args: str) -> str:
    ident = ["-c", "user.name=Ada Lovelace", "-c", "user.email=ada@example.org"]
    return subprocess.run(["git", *ident, *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "README").write_text("platform\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "init")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    store = Store(tmp_path / ".modelplane")
    for i in range(4):
        store.audit.append("test", f"Model/m{i}", {"n": i})
    store.close()
    return tmp_path


def test_a_deleted_database_is_state_lost(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / ".modelplane" / "state.db").unlink()
    with pytest.raises(StateLost, match=r"is gone but .* shows it held audit records"):
        Store(repo / ".modelplane")
    assert main(["status"]) == 3
    assert capsys.readouterr().err.startswith("modelplane: state lost: the state database ")
    assert not (repo / ".modelplane" / "state.db").exists()  # not silently recreated


def test_a_truncated_log_is_state_lost(repo: Path) -> None:
    conn = sqlite3.connect(repo / ".modelplane" / "state.db")
    with conn:
        conn.execute("DELETE FROM audit_log WHERE seq > 2")
    conn.close()
    with pytest.raises(StateLost, match="says the log reached record 4, the database has 2"):
        Store(repo / ".modelplane")


def test_the_repo_anchor_catches_a_lost_state_directory(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "anchor"]) == 0
    assert "anchored record 4 " in capsys.readouterr().out
    assert git(repo, "log", "-1", "--format=%B", "refs/modelplane/audit").startswith("4 ")
    shutil.rmtree(repo / ".modelplane")
    (repo / "specs").mkdir()
    (repo / "specs" / "d.yaml").write_text(
        "apiVersion: modelplane.io/v1alpha1\nkind: Dataset\nmetadata: {name: d}\n"
        "spec: {source: {sklearn: iris}, target: target}\n"
    )
    assert main(["plan", "--no-policy"]) == 3
    err = capsys.readouterr().err
    assert "state.db does not exist, but the repo's audit anchor proves the state held record 4" in err
    for command in (["status"], ["registry", "verify"], ["policy", "written"], ["audit", "sign-head"]):
        assert main(command) == 3, command
    assert not (repo / ".modelplane" / "state.db").exists()  # no command made a fresh one


def test_a_rewritten_chain_and_head_are_caught_by_the_signature(
    repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(KEY_ENV, "a-key-the-controller-host-keeps-apart")
    with pytest.raises(StateLost, match="not signed although an audit key is set"):
        Store(repo / ".modelplane")  # a key set on a log kept without one: adopted explicitly, once
    assert main(["audit", "sign-head"]) == 2  # only from an anchor exported before the key
    monkeypatch.delenv(KEY_ENV)
    assert main(["audit", "anchor"]) == 0
    monkeypatch.setenv(KEY_ENV, "a-key-the-controller-host-keeps-apart")
    assert main(["audit", "sign-head"]) == 0
    store = Store(repo / ".modelplane")
    store.audit.append("test", "Model/x", {"n": 9})  # the head is signed from now on
    assert store.audit.verify().ok
    store.close()
    # The attacker rewrites record 5 and recomputes the chain and the head, but has no key.
    from controller.state import audit_log

    conn = sqlite3.connect(repo / ".modelplane" / "state.db")
    conn.row_factory = sqlite3.Row
    with conn:
        row = conn.execute("SELECT * FROM audit_log WHERE seq = 5").fetchone()
        payload = '{"n":666}'
        forged = audit_log._hash(
            5, row["at"], row["event"], row["actor"], row["revision"], row["subject"], payload, row["prev_hash"]
        )
        conn.execute("UPDATE audit_log SET payload = ?, hash = ? WHERE seq = 5", (payload, forged))
    conn.close()
    (repo / ".modelplane" / "audit.head").write_text(f"5 {forged}\n")
    # Every command refuses it, so nothing signs a new head over the forgery.
    with pytest.raises(StateLost, match="the recorded head is not signed although an audit key is set"):
        Store(repo / ".modelplane")
    (repo / ".modelplane" / "audit.head").write_text(f"5 {forged} {'0' * 64}\n")
    with pytest.raises(StateLost, match="the recorded head's signature does not verify"):
        Store(repo / ".modelplane")
    assert main(["audit", "sign-head"]) == 3  # only an unsigned head is adopted, never a wrongly signed one
    (repo / ".modelplane" / "audit.head").unlink()
    with pytest.raises(StateLost, match=r"audit\.head is missing but the log .* has 5 records and an audit key is set"):
        Store(repo / ".modelplane")
    assert main(["approve", "m", "Staging", "--as", "alice"]) in (2, 3)
    assert not (repo / ".modelplane" / "audit.head").exists()  # nothing signed the forged chain


def test_a_key_file_inside_the_state_directory_is_refused(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = repo / ".modelplane" / "audit.key"
    key.write_text("0123456789abcdef0123")
    monkeypatch.setenv(KEY_FILE_ENV, str(key))
    with pytest.raises(StateError, match="is inside the state directory"):
        Store(repo / ".modelplane")


def test_a_missing_head_with_records_fails_verify(repo: Path) -> None:
    (repo / ".modelplane" / "audit.head").unlink()
    result = Store(repo / ".modelplane").audit.verify()
    assert not result.ok and result.problem == "the audit head (audit.head) is missing but the log has 4 records"


def test_a_corrupt_database_is_one_line(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = repo / ".modelplane" / "state.db"
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    db.write_bytes(b"this is not SQLite" * 100)
    assert main(["state", "check"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"modelplane: the state database {db} is unreadable (file is not a database)")


def test_state_check_reports_each_part(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["state", "check"]) == 0
    assert capsys.readouterr().out.splitlines() == ["ok   database integrity", "ok   audit chain (4 records)"]


def _rechain(db: Path, head: Path, seq: int, actor: str) -> None:
    """What an attacker with write access to the state (and no key) does: change record
    ``seq`` and recompute every hash after it, and the head."""
    from controller.state import audit_log

    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    with conn:
        rows = conn.execute("SELECT * FROM audit_log WHERE seq >= ? ORDER BY seq", (seq,)).fetchall()
        prev = rows[0]["prev_hash"]
        for row in rows:
            who = actor if row["seq"] == seq else row["actor"]
            digest = audit_log._hash(
                row["seq"], row["at"], row["event"], who, row["revision"], row["subject"], row["payload"], prev
            )
            conn.execute(
                "UPDATE audit_log SET actor = ?, prev_hash = ?, hash = ? WHERE seq = ?", (who, prev, digest, row["seq"])
            )
            prev = digest
    conn.close()
    head.write_text(f"{rows[-1]['seq']} {prev}\n")


def test_verify_and_check_compare_with_the_repos_anchor(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A wiped state, or one rewritten with its head, is not 'intact' once the repo holds an anchor."""
    assert main(["audit", "anchor"]) == 0
    _rechain(repo / ".modelplane" / "state.db", repo / ".modelplane" / "audit.head", 2, "mallory")
    assert Store(repo / ".modelplane").audit.verify().ok  # the chain alone cannot tell
    capsys.readouterr()
    for command in (["audit", "verify"], ["state", "check"]):
        assert main(command) == 3
        assert "does not hold the audit chain anchored in the repo (record 4" in capsys.readouterr().err
    shutil.rmtree(repo / ".modelplane")
    for command in (["audit", "verify"], ["state", "check"]):
        assert main(command) == 3
        assert "proves the state held record 4" in capsys.readouterr().err
    assert not (repo / ".modelplane").exists()  # never created


def test_anchor_refuses_to_launder_a_rewritten_history(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "anchor"]) == 0  # before the key
    monkeypatch.setenv(KEY_ENV, "a-key-the-controller-host-keeps-apart")
    assert main(["audit", "sign-head"]) == 0
    store = Store(repo / ".modelplane")
    store.audit.append("test", "Model/x", {"n": 9})
    store.close()
    assert main(["audit", "anchor"]) == 0
    anchored = git(repo, "rev-parse", "refs/modelplane/audit")
    signed_head = (repo / ".modelplane" / "audit.head").read_text()
    _rechain(repo / ".modelplane" / "state.db", repo / ".modelplane" / "audit.head", 3, "mallory")
    (repo / ".modelplane" / "audit.head").write_text(signed_head)  # the old signed head, over a new chain
    capsys.readouterr()
    assert main(["approve", "m", "Staging", "--as", "alice"]) == 3  # nothing writes (and signs) over it
    assert "was rewritten: record 5 is not the one audit.head records" in capsys.readouterr().err
    assert (repo / ".modelplane" / "audit.head").read_text() == signed_head
    _rechain(repo / ".modelplane" / "state.db", repo / ".modelplane" / "audit.head", 3, "mallory")
    capsys.readouterr()
    assert main(["audit", "anchor"]) == 3  # with the key at hand, it still refuses
    assert capsys.readouterr().err.startswith("modelplane: state lost: ")
    (repo / ".modelplane" / "audit.head").write_text(f"{Store.__name__}")  # a garbled head: still refused
    assert main(["audit", "anchor"]) == 3
    assert git(repo, "rev-parse", "refs/modelplane/audit") == anchored


def test_anchor_refuses_a_chain_that_does_not_verify(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conn = sqlite3.connect(repo / ".modelplane" / "state.db")
    with conn:
        conn.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    conn.close()
    assert main(["audit", "anchor"]) == 3
    assert "not anchored: the audit log is BROKEN at record 2" in capsys.readouterr().err
    assert subprocess.run(["git", "rev-parse", "--verify", "--quiet", "refs/modelplane/audit"], cwd=repo).returncode


def test_a_corrupt_page_is_one_line_not_a_traceback(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(repo / ".modelplane")
    for i in range(300):  # enough pages that damage lands in data, past the header
        store.audit.append("test", f"Model/n{i}", {"n": i, "pad": "x" * 200})
    store.close()
    db = repo / ".modelplane" / "state.db"
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    data = bytearray(db.read_bytes())
    data[8192:] = bytes(range(256)) * ((len(data) - 8192) // 256)  # the header and schema survive
    db.write_bytes(bytes(data))
    for command in (["state", "check"], ["audit", "verify"], ["status"], ["registry", "verify"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert err.startswith(f"modelplane: the state database {db} is unreadable (database disk image is malformed)")


def test_sign_head_cannot_launder_a_rewrite_with_its_signature_stripped(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A keyless attacker turns a wrongly signed head into an unsigned one; adopting a
    key then must not sign the forgery."""
    assert main(["audit", "anchor"]) == 0
    monkeypatch.setenv(KEY_ENV, "a-key-the-controller-host-keeps-apart")
    assert main(["audit", "sign-head"]) == 0
    store = Store(repo / ".modelplane")
    store.audit.append("approve", "Model/m", {"version": 1}, actor="alice")
    store.close()
    assert main(["audit", "anchor"]) == 0  # signed now
    _rechain(repo / ".modelplane" / "state.db", repo / ".modelplane" / "audit.head", 5, "mallory")  # unsigned head
    capsys.readouterr()
    assert main(["audit", "sign-head"]) == 3
    assert "the repo's audit anchor is signed, so a key was in use already" in capsys.readouterr().err
    assert main(["plan", "--no-policy"]) in (2, 3)
    # Before any key, the anchor must name the last record: records after it are not adopted.
    monkeypatch.delenv(KEY_ENV)


def test_a_chain_rewritten_while_a_process_runs_is_not_extended(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long apply or a server opened the state before the rewrite: its next record is
    refused, so nothing signs a new head over the forgery."""
    assert main(["audit", "anchor"]) == 0
    monkeypatch.setenv(KEY_ENV, "a-key-the-controller-host-keeps-apart")
    assert main(["audit", "sign-head"]) == 0
    running = Store(repo / ".modelplane")  # opened (and checked) before the attack
    running.audit.append("test", "Model/x", {"n": 1})
    head = (repo / ".modelplane" / "audit.head").read_text()
    _rechain(repo / ".modelplane" / "state.db", repo / ".modelplane" / "audit.head", 3, "mallory")
    with pytest.raises(StateLost, match="is not signed although an audit key is set; refusing to write"):
        running.audit.append("approve", "Model/m", {"version": 1}, actor="alice")
    (repo / ".modelplane" / "audit.head").write_text(head)  # the old signed head, over the new chain
    with pytest.raises(StateLost, match="the log was rewritten; refusing to write"):
        running.audit.append("approve", "Model/m", {"version": 1}, actor="alice")
    (repo / ".modelplane" / "audit.head").unlink()
    with pytest.raises(StateLost, match="was removed while the log has records"):
        running.audit.append("approve", "Model/m", {"version": 1}, actor="alice")
    running.close()
    assert not (repo / ".modelplane" / "audit.head").exists()


def test_a_fresh_state_with_a_key_takes_several_records_in_one_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first transaction of a new keyed log appends several records before any head
    exists (validate, then policy decisions): that is not a removed head."""
    monkeypatch.setenv(KEY_ENV, "a-key-the-controller-host-keeps-apart")
    store = Store(tmp_path / "state")
    with store.transaction():
        store.audit.append("validate", "repo", {"n": 1})
        store.audit.append("policy", "Model/m", {"n": 2})
    store.audit.append("approve", "Model/m", {"version": 1}, actor="alice")
    assert store.audit.verify().ok
    store.close()
    assert Store(tmp_path / "state").audit.verify().ok


def _forge_append(db: Path, actor: str) -> int:
    """What an attacker without the key can do: append a correctly chained record."""
    from controller.state import audit_log

    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    with conn:
        record = audit_log.append(conn, "approve", "Model/m", {"version": 1}, actor=actor)
    conn.close()
    return record.seq


def test_a_record_appended_after_the_signed_head_without_the_key_is_caught(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each record is signed as it is written: a chained forgery after the head carries no
    signature, so nothing opens the log, verifies it, or signs a head over it."""
    assert main(["audit", "anchor"]) == 0
    monkeypatch.setenv(KEY_ENV, "a-key-the-controller-host-keeps-apart")
    assert main(["audit", "sign-head"]) == 0
    store = Store(repo / ".modelplane")
    store.audit.append("approve", "Model/m", {"version": 1}, actor="alice")  # signed
    running = Store(repo / ".modelplane")  # a server that opened the log before the forgery
    store.close()
    forged = _forge_append(repo / ".modelplane" / "state.db", "mallory")
    head = (repo / ".modelplane" / "audit.head").read_text()
    with pytest.raises(StateLost, match=f"record {forged}, after the signed head, carries no valid signature"):
        Store(repo / ".modelplane")
    with pytest.raises(StateLost, match=f"record {forged}, after the signed head, carries no valid signature"):
        running.audit.append("approve", "Model/m", {"version": 1}, actor="carol")
    running.close()
    assert (repo / ".modelplane" / "audit.head").read_text() == head  # nothing signed over it
    capsys.readouterr()
    assert main(["audit", "verify"]) == 3
