"""Attack: alter or remove a trained model's artifact. It must never reach a higher stage:
the step stalls (ArtifactCorrupt / ArtifactMissing), the audit log records it, `registry
verify` names it, and restoring the file plus `apply --retry` recovers."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.api.status import ConditionType, Reason, Stage
from controller.cli import main
from controller.engine.reconcile import Settings, reconcile_revision
from controller.state.store import Store
from controller.triggers.git_source import GitSource


def apply(repo: Path, store: Store, *, retry: bool = False) -> None:
    reconcile_revision(GitSource(repo), None, store, Settings(apply=True, retry=retry))


@pytest.mark.parametrize(
    ("attack", "reason"),
    [("alter", Reason.ARTIFACT_CORRUPT), ("remove", Reason.ARTIFACT_MISSING)],
    ids=["altered", "removed"],
)
def test_a_tampered_artifact_never_reaches_production(
    repo: Path, attack: str, reason: Reason, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(repo / ".modelplane")
    apply(repo, store)
    (version,) = store.registry.versions("breast-cancer-classifier")
    artifact = store.artifacts.path(version.artifact_digest)
    original = artifact.read_bytes()
    if attack == "alter":
        artifact.write_bytes(original.replace(b"sklearn", b"sklearm", 1))
    else:
        artifact.unlink()
    for who in ("alice", "bob"):
        store.approvals.approve("breast-cancer-classifier", 1, who)

    apply(repo, store)
    assert [v.stage for v in store.registry.versions("breast-cancer-classifier")] == [Stage.STAGING]
    status = store.statuses.get("Model/breast-cancer-classifier")
    stalled = status.condition(ConditionType.STALLED) if status else None
    assert stalled is not None and stalled.status == "True" and stalled.reason == reason
    assert version.artifact_digest in stalled.message
    rejected = [r for r in store.audit.records() if r.event == "artifact-rejected"]
    assert len(rejected) == 1 and rejected[0].payload["artifact"] == version.artifact_digest

    assert main(["registry", "verify", "--state-dir", str(store.state_dir)]) == 1
    assert capsys.readouterr().out.endswith("1 version(s) checked, 1 with a missing or altered artifact\n")

    apply(repo, store)  # not retried by itself: nothing changed
    assert [v.stage for v in store.registry.versions("breast-cancer-classifier")] == [Stage.STAGING]
    artifact.write_bytes(original)  # restored from a backup
    apply(repo, store, retry=True)
    assert [v.stage for v in store.registry.versions("breast-cancer-classifier")] == [Stage.PRODUCTION]
    assert main(["registry", "verify", "--state-dir", str(store.state_dir)]) == 0
    assert store.audit.verify().ok
