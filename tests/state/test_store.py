"""The store's areas through their API: runs, registry, approvals, aliases, the ledger, migrations, threads."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from controller.api.status import ActionKind, OutcomeKind, Reason, RunStatus, Stage
from controller.state import db
from controller.state.store import Store

DATA = "sha256:" + "0" * 64


def passed_run(store: Store, run_id: str, key: str, model: str = "m") -> None:
    """A run that trained and passed its gates, through the store's API."""
    store.runs.start(run_id, key, model, None, "d", DATA, "spec")
    store.runs.finish(
        key,
        status=RunStatus.TRAINED,
        params={},
        metrics={"roc_auc": 0.9},
        fairness={},
        trials=[],
        environment={},
        artifact_digest="sha256:" + "1" * 64,
        duration_s=1.0,
        error=None,
        revision=None,
    )
    assert store.runs.record_gates(key, passed=True, gates=[], fairness={}, revision=None)


def events(store: Store) -> list[str]:
    return [r.event for r in store.audit.records()]


def test_approval_by_the_same_person_counts_once(tmp_path: Path) -> None:
    s = Store(tmp_path / "state")
    passed_run(s, "r1", "k1")
    s.registry.register("m", "r1", "sha256:" + "1" * 64, None)
    assert s.approvals.approve("m", 1, "alice") is True
    assert s.approvals.approve("m", 1, "alice") is False
    assert s.approvals.of("m", 1) == ["alice"]
    assert events(s) == ["train", "metric-gate", "register", "approve"]
    with pytest.raises(KeyError, match="m has no version 7"):
        s.approvals.approve("m", 7, "bob")


def test_a_run_finishes_once_and_the_gate_decides_once(tmp_path: Path) -> None:
    s = Store(tmp_path / "state")
    passed_run(s, "r1", "k1")
    assert s.runs.record_gates("k1", passed=False, gates=[], fairness={}, revision=None) is False
    run = s.runs.by_key("k1")
    assert run is not None and run.status == RunStatus.PASSED and run.metrics == {"roc_auc": 0.9}
    assert s.runs.get("r") is not None and s.runs.get("%") is None  # a prefix, not a LIKE pattern


def test_aliases_resolve_move_and_are_audited(tmp_path: Path) -> None:
    s = Store(tmp_path / "state")
    for i, run in enumerate(("r1", "r2"), start=1):
        passed_run(s, run, f"k{i}")
        s.registry.register("m", run, "sha256:" + str(i) * 64, None)
    s.registry.set_alias("m", "champion", 1, actor="alice")
    assert s.registry.resolve("m", "champion") == 1
    s.registry.set_alias("m", "champion", s.registry.resolve("m", "v2"), actor="bob")
    assert s.registry.aliases("m") == {"champion": 2}
    moves = [r.payload for r in s.audit.records() if r.event == "alias"]
    assert moves == [
        {"alias": "champion", "version": 1, "previous": None},
        {"alias": "champion", "version": 2, "previous": 1},
    ]
    with pytest.raises(KeyError, match="would shadow a stage"):
        s.registry.set_alias("m", "production", 1, actor="eve")
    with pytest.raises(KeyError, match="has no version, stage or alias 'challenger'"):
        s.registry.resolve("m", "challenger")
    assert s.audit.verify().ok


def test_promotion_archives_the_previous_holder_in_one_transaction(tmp_path: Path) -> None:
    s = Store(tmp_path / "state")
    for i, run in enumerate(("r1", "r2"), start=1):
        passed_run(s, run, f"k{i}")
        s.registry.register("m", run, "sha256:" + str(i) * 64, None)
        s.registry.promote(
            "m",
            i,
            Stage.PRODUCTION,
            key=f"k{i}/Production",
            actor="x",
            reason="y",
            revision=None,
            archive_existing=True,
        )
    assert [(v.version, v.stage) for v in s.registry.versions("m")] == [(1, Stage.ARCHIVED), (2, Stage.PRODUCTION)]
    assert (
        s.registry.promote("m", 2, Stage.PRODUCTION, key="k2/Production", actor="x", reason="y", revision=None) is False
    )


def test_the_ledger_keeps_a_success_final_and_counts_attempts(tmp_path: Path) -> None:
    s = Store(tmp_path / "state")
    s.effects.record("k", ActionKind.TRAIN, "Model/m", OutcomeKind.RETRY, Reason.DATA_CHANGED, "moved")
    s.effects.record("k", ActionKind.TRAIN, "Model/m", OutcomeKind.RETRY, Reason.DATA_CHANGED, "moved")
    assert s.effects.get("k").attempts == 2  # type: ignore[union-attr]
    s.effects.record("k", ActionKind.TRAIN, "Model/m", OutcomeKind.SUCCEEDED, Reason.SUCCEEDED, "done")
    s.effects.record("k", ActionKind.TRAIN, "Model/m", OutcomeKind.STALLED, Reason.RECONCILE_FAILED, "late")
    entry = s.effects.get("k")
    assert entry is not None and (entry.outcome, entry.message) == (OutcomeKind.SUCCEEDED, "done")


def test_a_failure_is_in_the_ledger_and_the_audit_log_together(tmp_path: Path) -> None:
    s = Store(tmp_path / "state")
    s.effects.record_failure("k", ActionKind.MODEL_CARD, "Model/m", "OSError: disk full", revision="abc")
    assert s.effects.get("k").reason == Reason.RECONCILE_FAILED  # type: ignore[union-attr]
    record = s.audit.records()[-1]
    assert (record.event, record.payload["error"], record.revision) == ("reconcile-failed", "OSError: disk full", "abc")


def test_an_effect_and_its_ledger_entry_commit_or_roll_back_together(tmp_path: Path) -> None:
    s = Store(tmp_path / "state")
    passed_run(s, "r1", "k1")
    with pytest.raises(RuntimeError), s.transaction():
        s.registry.register("m", "r1", "sha256:" + "1" * 64, None)
        s.effects.record("k1/register", ActionKind.REGISTER, "Model/m", OutcomeKind.SUCCEEDED, Reason.SUCCEEDED)
        raise RuntimeError("crash between the effect and the commit")
    assert s.registry.versions("m") == [] and s.effects.get("k1/register") is None
    assert "register" not in events(s)


def test_writers_on_many_threads_and_a_second_process_never_see_database_is_locked(tmp_path: Path) -> None:
    s = Store(tmp_path / "state")
    other = Store(tmp_path / "state")  # another opener of the same file (as another process would be)
    errors: list[BaseException] = []

    def write(store: Store, who: str) -> None:
        try:
            for i in range(40):
                store.audit.append("test", f"Model/{who}", {"i": i})
                store.statuses.all()
        except BaseException as exc:  # pragma: no cover - the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(s if i % 2 else other, f"t{i}")) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert s.audit.verify().checked == 240
    s.close()
    other.close()


def test_an_older_database_is_migrated_in_place_with_its_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setattr(db, "MIGRATIONS", db.MIGRATIONS[:2])
    db.Database(state).close()
    monkeypatch.undo()
    old = sqlite3.connect(state / db.DB_FILE)  # what the previous release wrote
    with old:
        old.execute(
            "INSERT INTO data_checks (key, dataset, dataset_hash, success, evidence, at) "
            "VALUES ('c1', 'd', 'h', 1, '{\"summary\": \"ok\"}', 'then')"
        )
        old.execute(
            "INSERT INTO runs (id, key, model, status, dataset, dataset_hash, spec_digest, started_at) "
            "VALUES ('r1', 'T', 'm', 'passed', 'd', 'h', 's', 'then')"
        )
        old.execute(
            "INSERT INTO model_versions (model, version, run_id, stage, artifact_digest, created_at) "
            "VALUES ('m', 1, 'r1', 'Production', 'a', 'then')"
        )
        for stage in ("Staging", "Production"):
            old.execute(
                "INSERT INTO promotions (key, model, version, from_stage, to_stage, actor, reason, at) "
                f"VALUES ('m/v1/{stage}', 'm', 1, 'x', '{stage}', 'modelplane', 'r', 'then')"
            )
        old.execute(
            "INSERT INTO cards (model, version, json_path, markdown_path, html_path, at) "
            "VALUES ('m', 1, 'j', 'm', 'h', 'then')"
        )
        old.execute("INSERT INTO approvals (model, version, approver, at) VALUES ('m', 1, 'alice', 'then')")
    old.close()
    s = Store(state)
    assert s.db.execute("SELECT max(version) FROM schema_version").fetchone()[0] == len(db.MIGRATIONS) == 7
    ledger = {k: (e.kind, e.outcome) for k, e in s.effects.all().items()}
    assert ledger == {
        "c1": (ActionKind.DATA_GATE, OutcomeKind.SUCCEEDED),
        "T": (ActionKind.TRAIN, OutcomeKind.SUCCEEDED),
        "T/gate": (ActionKind.METRIC_GATE, OutcomeKind.SUCCEEDED),
        "T/register": (ActionKind.REGISTER, OutcomeKind.SUCCEEDED),
        "T/Staging": (ActionKind.PROMOTE, OutcomeKind.SUCCEEDED),
        "T/Production": (ActionKind.PROMOTE, OutcomeKind.SUCCEEDED),
        "T/card/Production": (ActionKind.MODEL_CARD, OutcomeKind.SUCCEEDED),
    }
    assert s.approvals.of("m", 1) == ["alice"]
    card = s.registry.card("m", 1)
    assert card is not None and card.stage == "Production"


def test_a_new_state_directory_is_its_users_alone(tmp_path: Path) -> None:
    """The state holds the audit log, the registry and the artifacts: other users of the
    machine may not read it (an existing directory's mode is the operator's choice)."""
    store = Store(tmp_path / "fresh" / ".modelplane")
    try:
        assert (store.state_dir.stat().st_mode & 0o777) == 0o700
    finally:
        store.close()
