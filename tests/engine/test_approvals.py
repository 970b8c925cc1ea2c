"""Approvals come from real people, for the version that waits for them.

Attacks: blank and look-alike identities, approving a version that is not waiting
(archived, in Production, superseded), approving from outside the allowed list."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.api.identity import IdentityError, normalise
from controller.api.status import RunStatus, Stage
from controller.cli import main
from controller.engine.approvals import ApprovalRefused, approve, revoke
from controller.state.store import Store


def version(store: Store, n: int, stage: Stage) -> None:
    run, key = f"run{n}", f"k{n}"
    store.runs.start(run, key, "m", None, "d", "sha256:" + "0" * 64, "spec")
    store.runs.finish(
        key,
        status=RunStatus.TRAINED,
        params={},
        metrics={},
        fairness={},
        trials=[],
        environment={},
        artifact_digest="sha256:" + "1" * 64,
        duration_s=0,
        error=None,
        revision=None,
    )
    store.runs.record_gates(key, passed=True, gates=[], fairness={}, revision=None)
    store.registry.register("m", run, "sha256:" + "1" * 64, None)
    if stage != Stage.NONE:
        store.registry.promote("m", n, stage, key=f"{key}/{stage}", actor="modelplane", reason="r", revision=None)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "state")
    version(s, 1, Stage.ARCHIVED)
    version(s, 2, Stage.PRODUCTION)
    version(s, 3, Stage.STAGING)
    version(s, 4, Stage.STAGING)
    return s


@pytest.mark.parametrize("raw", ["", "   ", "\t", "al ice", "<script>", "-alice", "a" * 200], ids=repr)
def test_a_blank_or_malformed_identity_is_refused(raw: str) -> None:
    with pytest.raises(IdentityError):
        normalise(raw)


def test_look_alike_identities_are_one_person(store: Store) -> None:
    for who in ("alice", "ALICE", " alice ", "Alice\t", "ａｌｉｃｅ"):  # the last in full-width letters
        approve(store, "m", "Staging", who)
    assert store.approvals.of("m", 4) == ["alice"]
    assert [r.actor for r in store.audit.records() if r.event == "approve"] == ["alice"]


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("1", "m v1 is in Archived: only the version in Staging waits for approval"),
        ("Production", "m v2 is in Production: only the version in Staging waits for approval"),
        ("3", "m v3 was superseded by v4 in Staging; approve that one"),
        ("9", "m has no version 9"),
    ],
    ids=["archived", "production", "superseded", "missing"],
)
def test_only_the_waiting_version_can_be_approved(store: Store, ref: str, message: str) -> None:
    with pytest.raises(ApprovalRefused) as refused:
        approve(store, "m", ref, "alice")
    assert str(refused.value) == message
    assert store.approvals.all() == []


def test_the_allowed_list_refuses_others(store: Store) -> None:
    with pytest.raises(ApprovalRefused, match="mallory may not approve"):
        approve(store, "m", "4", "Mallory", allowed={"alice", "bob"})
    assert approve(store, "m", "4", "Bob ", allowed={"alice", "bob"}).approvals == ("bob",)


def test_revoking_is_audited_and_lowers_the_count(store: Store) -> None:
    approve(store, "m", "4", "alice")
    approve(store, "m", "4", "bob")
    result = revoke(store, "m", "4", "ALICE")
    assert (result.changed, result.approvals) == (True, ("bob",))
    assert revoke(store, "m", "4", "alice").changed is False
    assert [(r.event, r.actor) for r in store.audit.records() if r.event in ("approve", "revoke")] == [
        ("approve", "alice"),
        ("approve", "bob"),
        ("revoke", "alice"),
    ]


def test_the_cli_refuses_with_one_line(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    state = str(store.state_dir)
    assert main(["approve", "m", "Production", "--as", "alice", "--state-dir", state]) == 2
    assert capsys.readouterr().err == (
        "modelplane: m v2 is in Production: only the version in Staging waits for approval\n"
    )
    assert main(["approve", "m", "Staging", "--as", " ", "--state-dir", state]) == 2
    assert capsys.readouterr().err == "modelplane: an identity cannot be empty\n"
    assert main(["approve", "m", "Staging", "--as", "alice", "--state-dir", state]) == 0
    assert main(["approve", "m", "Staging", "--as", "alice", "--revoke", "--state-dir", state]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "alice withdrew the approval of m v4 (0 approval(s) left)."


def test_a_misspelt_model_is_named_as_such(store: Store) -> None:
    version(store, 1, Stage.STAGING)
    with pytest.raises(ApprovalRefused, match=r"no versions of a Model named 'mm' are registered; did you mean 'm'\?"):
        approve(store, "mm", "Staging", "alice")
    with pytest.raises(ApprovalRefused, match=r"registered: m\)"):
        approve(store, "breast-cancer-classifer", "Staging", "alice")
