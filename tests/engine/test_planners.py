"""The planners as tables: desired digests x the effects ledger -> actions and notes. Pure, no store."""

from __future__ import annotations

import pytest

from controller.api.status import ActionKind, ConditionType, OutcomeKind, Reason, RunStatus, Stage
from controller.engine.actions import Action, Plan
from controller.engine.desired import Desired, DesiredDataset, DesiredModel, Observed
from controller.engine.plan import plan
from controller.state.records import Effect, ModelVersion, Run

T = "sha256:train"  # the model's train key
CHECK = "sha256:check"
NOW = "2026-11-23T12:00:00.000+00:00"


def desired(*, approvals: int | None = 2, staging: bool = True, denied: dict[str, str] | None = None) -> Desired:
    return Desired(
        "rev1",
        datasets={"d": DesiredDataset("d", "sha256:dspec", "sha256:content", CHECK)},
        models={
            "m": DesiredModel("m", "d", "sha256:mspec", T, "code", staging, approvals, True),
        },
        denied=denied or {},
    )


def effect(key: str, outcome: OutcomeKind = OutcomeKind.SUCCEEDED, reason: Reason = Reason.SUCCEEDED, **kw) -> Effect:
    fields = {"message": "", "attempts": 1, "retry_after": None, "revision": "rev1", "at": NOW} | kw
    return Effect(key, ActionKind.TRAIN, "Model/m", outcome, reason, **fields)


def done(*keys: str) -> dict[str, Effect]:
    return {k: effect(k) for k in keys}


def version(stage: Stage) -> dict[str, ModelVersion]:
    return {T: ModelVersion("m", 1, "run1", stage, "sha256:artifact", "rev1", NOW)}


def observed(
    effects: dict[str, Effect], versions: dict[str, ModelVersion] | None = None, approvals: int = 0
) -> Observed:
    given = [f"approver{i}" for i in range(approvals)]
    return Observed(effects=effects, versions=versions or {}, approvals={("m", 1): given}, now=NOW)


def kinds(p: Plan) -> list[str]:
    return [f"{a.kind}" + (f"->{a.inputs['stage']}" if a.kind == ActionKind.PROMOTE else "") for a in p.actions]


def test_a_fresh_state_plans_the_whole_chain_in_order_with_dependencies() -> None:
    p = plan(desired(), observed({}))
    assert kinds(p) == ["data-gate", "train", "metric-gate", "register", "promote->Staging", "model-card"]
    assert [a.key for a in p.actions] == [CHECK, T, f"{T}/gate", f"{T}/register", f"{T}/Staging", f"{T}/card/Staging"]
    assert [a.after for a in p.actions] == [(), (CHECK,), (T,), (f"{T}/gate",), (f"{T}/register",), (f"{T}/Staging",)]
    assert p.actions[1].inputs == {
        "dataset": "d",
        "dataset_hash": "sha256:content",
        "spec_digest": "sha256:mspec",
        "code_version": "code",
    }


@pytest.mark.parametrize(
    ("effects", "versions", "approvals", "expected", "note"),
    [
        (done(CHECK), None, 0, ["train", "metric-gate", "register", "promote->Staging", "model-card"], None),
        (done(CHECK, T), None, 0, ["metric-gate", "register", "promote->Staging", "model-card"], None),
        (done(CHECK, T, f"{T}/gate"), None, 0, ["register", "promote->Staging", "model-card"], None),
        (
            done(CHECK, T, f"{T}/gate", f"{T}/register"),
            version(Stage.NONE),
            0,
            ["promote->Staging", "model-card"],
            None,
        ),
        (done(CHECK, T, f"{T}/gate", f"{T}/register", f"{T}/Staging"), version(Stage.STAGING), 0, ["model-card"], None),
        (
            done(CHECK, T, f"{T}/gate", f"{T}/register", f"{T}/Staging", f"{T}/card/Staging"),
            version(Stage.STAGING),
            1,
            [],
            (ConditionType.READY, False, Reason.AWAITING_APPROVAL),
        ),
        (
            done(CHECK, T, f"{T}/gate", f"{T}/register", f"{T}/Staging", f"{T}/card/Staging"),
            version(Stage.STAGING),
            2,
            ["promote->Production", "model-card"],
            None,
        ),
        (  # the crash of issue 7: promoted to Production, killed before its card
            done(CHECK, T, f"{T}/gate", f"{T}/register", f"{T}/Staging", f"{T}/card/Staging", f"{T}/Production"),
            version(Stage.PRODUCTION),
            2,
            ["model-card"],
            None,
        ),
        (
            done(
                CHECK,
                T,
                f"{T}/gate",
                f"{T}/register",
                f"{T}/Staging",
                f"{T}/card/Staging",
                f"{T}/Production",
                f"{T}/card/Production",
            ),
            version(Stage.PRODUCTION),
            2,
            [],
            (ConditionType.READY, True, Reason.SUCCEEDED),
        ),
        (  # archived by a newer version: nothing to do
            done(CHECK, T, f"{T}/gate", f"{T}/register", f"{T}/Staging", f"{T}/card/Staging"),
            version(Stage.ARCHIVED),
            0,
            [],
            (ConditionType.READY, True, Reason.SUCCEEDED),
        ),
    ],
    ids=[
        "data-checked",
        "trained",
        "gated",
        "registered",
        "in-staging-no-card",
        "awaiting-approval",
        "approved",
        "production-without-card",
        "production-done",
        "archived",
    ],
)
def test_the_chain_resumes_from_the_first_key_the_ledger_lacks(
    effects: dict[str, Effect],
    versions: dict[str, ModelVersion] | None,
    approvals: int,
    expected: list[str],
    note: tuple[ConditionType, bool, Reason] | None,
) -> None:
    p = plan(desired(), observed(effects, versions, approvals))
    assert kinds(p) == expected
    if expected == ["model-card"]:  # a card for the stage the version is in now
        assert versions is not None and p.actions[0].inputs["stage"] == str(versions[T].stage)
    if note:
        got = p.notes["Model/m"]
        assert (got.condition, got.status, got.reason) == note


@pytest.mark.parametrize(
    ("failed_key", "reason", "dataset_note", "model_note"),
    [
        (CHECK, Reason.DATA_CONTRACT_FAILED, Reason.DATA_CONTRACT_FAILED, Reason.DEPENDENCY_NOT_READY),
        (T, Reason.TRAINING_FAILED, Reason.SUCCEEDED, Reason.TRAINING_FAILED),
        (f"{T}/gate", Reason.GATE_FAILED, Reason.SUCCEEDED, Reason.GATE_FAILED),
        (T, Reason.RECONCILE_FAILED, Reason.SUCCEEDED, Reason.RECONCILE_FAILED),
    ],
    ids=["data-contract", "training", "gate", "step-raised"],
)
def test_a_stalled_key_stalls_its_resource_and_what_depends_on_it(
    failed_key: str, reason: Reason, dataset_note: Reason, model_note: Reason
) -> None:
    effects = done(CHECK, T)
    effects[failed_key] = effect(failed_key, OutcomeKind.STALLED, reason, message="why")
    p = plan(desired(), observed(effects))
    assert p.actions == []
    assert p.notes["Dataset/d"].reason == dataset_note
    assert p.notes["Model/m"].condition == ConditionType.STALLED and p.notes["Model/m"].reason == model_note


def test_retry_replans_only_what_raised() -> None:
    raised = done(CHECK) | {T: effect(T, OutcomeKind.STALLED, Reason.RECONCILE_FAILED, message="boom")}
    assert kinds(plan(desired(), observed(raised), retry=True))[:1] == ["train"]
    decided = done(CHECK, T) | {f"{T}/gate": effect(f"{T}/gate", OutcomeKind.STALLED, Reason.GATE_FAILED)}
    assert plan(desired(), observed(decided), retry=True).actions == []


@pytest.mark.parametrize(
    ("retry_after", "retry", "planned"),
    [
        ("2026-11-23T13:00:00.000+00:00", False, False),
        ("2026-11-23T11:00:00.000+00:00", False, True),
        ("2026-11-23T13:00:00.000+00:00", True, True),
    ],
    ids=["backing-off", "due", "forced"],
)
def test_a_retry_outcome_backs_off_until_due(retry_after: str, retry: bool, planned: bool) -> None:
    effects = done(CHECK) | {
        T: effect(T, OutcomeKind.RETRY, Reason.DATA_CHANGED, message="moved", retry_after=retry_after)
    }
    p = plan(desired(), observed(effects), retry=retry)
    assert (kinds(p)[:1] == ["train"]) is planned
    if not planned:
        assert p.notes["Model/m"].reason == Reason.RETRYING and "moved" in p.notes["Model/m"].message


def test_policy_denial_stalls_without_actions() -> None:
    p = plan(desired(denied={"Model/m": "models.x: no"}), observed(done(CHECK)))
    assert p.actions == [] and p.notes["Model/m"].reason == Reason.POLICY_DENIED


def test_without_automatic_staging_the_chain_ends_at_register() -> None:
    p = plan(desired(staging=False), observed({}))
    assert kinds(p) == ["data-gate", "train", "metric-gate", "register"]
    settled = plan(desired(staging=False), observed(done(CHECK, T, f"{T}/gate", f"{T}/register"), version(Stage.NONE)))
    assert settled.actions == [] and settled.notes["Model/m"].message == "v1 is in None"


def test_train_reason_explains_what_changed() -> None:
    last = Run("r0", "sha256:old", "m", RunStatus.PASSED, "rev0", "d", "sha256:other", "sha256:mspec", NOW)
    obs = Observed(effects=done(CHECK), last_run={"m": last}, now=NOW)
    train = plan(desired(), obs).actions[0]
    assert train.reason.startswith("dataset content changed other…→content…")


def test_actions_round_trip_through_json() -> None:
    for action in plan(desired(), observed({})).actions:
        assert Action.from_json(action.to_json()) == action


def test_only_approvals_by_listed_approvers_count() -> None:
    """Taking someone off the project's approvers withdraws the approvals they gave:
    the plan waits, and says whose approvals it did not count."""
    effects = done(CHECK, T, f"{T}/gate", f"{T}/register", f"{T}/Staging", f"{T}/card/Staging")
    versions = {T: ModelVersion("m", 1, "run1", Stage.STAGING, "sha256:artifact", "rev1", NOW)}
    obs = Observed(effects=effects, versions=versions, approvals={("m", 1): ["mallory", "eve", "alice"]}, now=NOW)
    anyone = plan(desired(), obs)
    assert kinds(anyone) == ["promote->Production", "model-card"]
    listed = desired()
    listed.approvers = frozenset({"alice", "bob"})
    waiting = plan(listed, obs)
    assert waiting.actions == []
    note = waiting.notes["Model/m"]
    assert note.reason == Reason.AWAITING_APPROVAL
    assert note.message == (
        "v1 is in Staging with 1/2 approvals for Production (not counted: mallory, eve, not in the project's approvers)"
    )
