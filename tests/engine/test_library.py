"""reconcile_revision as a library call: from a thread, no process-wide side effects,
per-step error isolation, statuses always written, --retry after the cause is fixed."""

from __future__ import annotations

import gc
import os
import shutil
import threading
from pathlib import Path

import pytest
from loop_helpers import MODEL, git, modelplane

from controller.api.status import ConditionStatus, ConditionType, OutcomeKind, Reason, Stage
from controller.engine import steps
from controller.engine.events import Events, Phase, StepEvent
from controller.engine.reconcile import Reconciliation, Settings, reconcile_revision
from controller.state.store import Store
from controller.triggers.git_source import GitSource


def apply(repo: Path, store: Store, **kw: object) -> Reconciliation:
    return reconcile_revision(GitSource(repo), None, store, Settings(apply=True, **kw))  # type: ignore[arg-type]


def end_state(store: Store) -> dict[str, object]:
    return {
        "versions": [(v.model, v.version, v.stage) for v in store.registry.versions()],
        "ledger": sorted((e.kind, e.outcome, e.reason) for e in store.effects.all().values()),
        "statuses": {ref: s.condition(ConditionType.READY).reason for ref, s in store.statuses.all().items()},  # type: ignore[union-attr]
        "events": sorted(r.event for r in store.audit.records()),
    }


def test_reconcile_from_a_thread_matches_the_cli_and_touches_no_process_state(repo: Path, tmp_path: Path) -> None:
    twin = tmp_path / "twin"
    shutil.copytree(repo, twin)
    assert modelplane(twin, "apply").returncode == 0
    cli = Store(twin / ".modelplane")

    store = Store(repo / ".modelplane")
    cwd, gc_enabled, frozen = os.getcwd(), gc.isenabled(), gc.get_freeze_count()
    seen: list[StepEvent] = []
    results: list[Reconciliation] = []
    reads: list[int] = []
    stop = threading.Event()

    def reader() -> None:  # another thread reads statuses while the reconcile writes, and after
        while not stop.is_set():
            reads.append(len(store.statuses.all()))
        reads.append(len(store.statuses.all()))

    def worker() -> None:
        results.append(apply(repo, store, events=Events([seen.append])))

    threads = [threading.Thread(target=reader), threading.Thread(target=worker)]
    threads[0].start()
    threads[1].start()
    threads[1].join(timeout=300)
    stop.set()
    threads[0].join()
    assert results and [e.outcome for e in results[0].executed if e.outcome].count(None) == 0
    assert (os.getcwd(), gc.isenabled()) == (cwd, gc_enabled)
    # Nothing was frozen (objects frozen by an earlier in-process CLI run may have died).
    assert gc.get_freeze_count() <= frozen
    assert len(reads) > 1 and reads[-1] == 2
    assert end_state(store) == end_state(cli)
    started = [e for e in seen if e.phase == Phase.STARTED]
    finished = [e for e in seen if e.phase == Phase.FINISHED]
    assert (
        [e.action for e in started]
        == [e.action for e in finished]
        == [
            "data-gate",
            "train",
            "metric-gate",
            "register",
            "promote",
            "model-card",
        ]
    )
    assert all(e.outcome == "Succeeded" and e.duration_s is not None and e.revision for e in finished)


def test_a_step_that_raises_is_recorded_the_rest_goes_on_and_retry_recovers(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A second, independent model: its chain must complete while the first one's card step raises.
    second = (repo / MODEL).read_text().replace("name: breast-cancer-classifier", "name: second-classifier", 1)
    (repo / MODEL).with_name("second.yaml").write_text(second)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "second model")
    real_write = steps.modelcard.write

    def broken_write(card, directory):  # type: ignore[no-untyped-def]
        if card.model.name == "breast-cancer-classifier":
            raise OSError(28, "No space left on device")
        return real_write(card, directory)

    monkeypatch.setattr(steps.modelcard, "write", broken_write)
    store = Store(repo / ".modelplane")
    first = apply(repo, store)
    failed = [e for e in first.executed if e.outcome and e.outcome.kind != OutcomeKind.SUCCEEDED]
    assert all(e.outcome for e in first.executed), [e.outcome for e in failed]
    assert [(e.action.kind, e.action.name) for e in failed] == [("model-card", "breast-cancer-classifier")], [
        e.outcome for e in failed
    ]
    assert failed[0].outcome.reason == Reason.RECONCILE_FAILED  # type: ignore[union-attr]
    status = store.statuses.get("Model/breast-cancer-classifier")
    assert status is not None
    stalled = status.condition(ConditionType.STALLED)
    assert stalled is not None and stalled.status == ConditionStatus.TRUE
    assert stalled.reason == Reason.RECONCILE_FAILED and "No space left on device" in stalled.message
    assert store.statuses.get("Model/second-classifier").condition(ConditionType.READY).reason == (  # type: ignore[union-attr]
        Reason.AWAITING_APPROVAL
    )
    audit = [r for r in store.audit.records() if r.event == "reconcile-failed"]
    assert len(audit) == 1 and "OSError" in audit[0].payload["error"]
    assert first.stalled == {
        "Model/breast-cancer-classifier": "ReconcileFailed: OSError: [Errno 28] No space left on device"
    }

    monkeypatch.setattr(steps.modelcard, "write", real_write)  # the cause is fixed
    assert apply(repo, store).executed == []  # a stalled step is not retried by itself
    recovered = apply(repo, store, retry=True)
    assert [(e.action.kind, e.outcome.kind) for e in recovered.executed] == [  # type: ignore[union-attr]
        ("model-card", OutcomeKind.SUCCEEDED)
    ]
    assert store.registry.card("breast-cancer-classifier", 1) is not None
    assert store.statuses.get("Model/breast-cancer-classifier").condition(ConditionType.READY).reason == (  # type: ignore[union-attr]
        Reason.AWAITING_APPROVAL
    )
    assert [v.stage for v in store.registry.versions("breast-cancer-classifier")] == [Stage.STAGING]
    assert store.audit.verify().ok
