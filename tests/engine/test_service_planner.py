"""The InferenceService planner as a table: the registry, the deployment, whether its server
runs and the ledger -> one deploy or canary action, or the service's status. Pure, no store."""

from __future__ import annotations

import pytest

from controller.api.status import ActionKind, ConditionType, OutcomeKind, Reason, Stage
from controller.engine.actions import Plan
from controller.engine.desired import Desired, DesiredService, Observed, Selector
from controller.engine.planners.service import config_digest, plan_services, rollout_keys
from controller.state.records import Deployment, Effect, ModelVersion, ServingCaller

NOW = "2026-12-03T12:00:00.000+00:00"
REF = "InferenceService/api"


def service(*, canary: tuple[float, ...] = (), target: str = "local", by: str = "stage") -> DesiredService:
    values: dict[str, str | int] = {"stage": "Production", "alias": "champion", "version": 1}
    value = values[by]
    return DesiredService("api", "sha256:spec", target, Selector("m", by, value), None, 0.0, canary, {}, "sha256:a")


def desired(svc: DesiredService, denied: dict[str, str] | None = None) -> Desired:
    return Desired("rev1", services={"api": svc}, denied=denied or {})


def versions(production: int | None = 1, count: int = 2) -> dict[tuple[str, int], ModelVersion]:
    out = {}
    for n in range(1, count + 1):
        stage = Stage.PRODUCTION if n == production else Stage.ARCHIVED
        out[("m", n)] = ModelVersion("m", n, f"run{n}", stage, f"sha256:artifact{n}", "rev1", NOW)
    return out


def deployment(svc: DesiredService, obs: Observed, stable: int = 1, **kw: object) -> Deployment:
    fields = {
        "service": "api",
        "target": "local",
        "model": "m",
        "stable_version": stable,
        "canary_version": None,
        "canary_weight": 0.0,
        "canary_step": 0,
        "canary_since": None,
        "shadow_model": None,
        "shadow_version": None,
        "config_digest": config_digest(svc, obs),
        "url": "http://127.0.0.1:4000",
        "generation": 1,
        "starts": 1,
        "revision": "rev1",
        "at": NOW,
    } | kw
    return Deployment(**fields)  # type: ignore[arg-type]


def run(svc: DesiredService, obs: Observed, denied: dict[str, str] | None = None) -> Plan:
    out = Plan("rev1")
    plan_services(desired(svc, denied), obs, out)
    return out


def effect(key: str, outcome: OutcomeKind = OutcomeKind.SUCCEEDED, reason: Reason = Reason.SUCCEEDED) -> Effect:
    return Effect(key, ActionKind.CANARY, REF, outcome, reason, "", 1, None, "rev1", NOW)


def test_a_service_never_deployed_deploys_what_its_stage_holds() -> None:
    svc = service()
    p = run(svc, Observed(registered=versions(production=1), now=NOW))
    (action,) = p.actions
    assert (action.kind, action.inputs["version"], action.inputs["artifact"]) == (
        ActionKind.DEPLOY,
        1,
        "sha256:artifact1",
    )
    assert action.reason == "first deployment: m stage Production is v1" and action.after == ()


@pytest.mark.parametrize(("by", "expected"), [("stage", 2), ("alias", 1), ("version", 1)])
def test_the_selector_resolves_through_the_registry(by: str, expected: int) -> None:
    obs = Observed(registered=versions(production=2), aliases={("m", "champion"): 1}, now=NOW)
    (action,) = run(service(by=by), obs).actions
    assert action.inputs["version"] == expected


def test_a_deployment_that_serves_what_is_asked_is_ready() -> None:
    svc = service()
    obs = Observed(registered=versions(), now=NOW, serving={"api": True})
    obs.deployments["api"] = deployment(svc, obs)
    p = run(svc, obs)
    assert p.actions == []
    assert (p.notes[REF].condition, p.notes[REF].message) == (
        ConditionType.READY,
        "serving m v1 at http://127.0.0.1:4000",
    )


def test_a_server_found_down_is_started_again_under_the_key_of_its_next_start() -> None:
    svc = service()
    obs = Observed(registered=versions(), now=NOW, serving={"api": False})
    obs.deployments["api"] = deployment(svc, obs, starts=3)
    (action,) = run(svc, obs).actions
    assert action.kind == ActionKind.DEPLOY and action.key.endswith("/start/4") and action.inputs["starts"] == 4
    assert action.reason == "its server is down (start 4)"


def test_a_new_caller_changes_the_configuration_and_redeploys() -> None:
    svc = service()
    obs = Observed(registered=versions(), now=NOW, serving={"api": True})
    obs.deployments["api"] = deployment(svc, obs)
    obs.callers = (ServingCaller("clara", "0" * 64, ("clinicians",), NOW),)
    (action,) = run(svc, obs).actions
    assert (action.kind, action.reason) == (ActionKind.DEPLOY, "the spec, the access data or the callers changed")


def test_a_new_version_without_a_canary_replaces_the_old_one() -> None:
    svc = service()
    obs = Observed(registered=versions(production=2), now=NOW, serving={"api": True})
    obs.deployments["api"] = deployment(svc, obs, stable=1)
    (action,) = run(svc, obs).actions
    assert (action.kind, action.inputs["version"], action.reason) == (
        ActionKind.DEPLOY,
        2,
        "m stage Production moved: v1 -> v2",
    )


def canary_plan(done: int, *, last: Effect | None = None) -> tuple[Plan, list[str]]:
    """The plan of a service whose canary has ``done`` steps done (and ``last``, the next one's entry)."""
    svc = service(canary=(10.0, 50.0, 100.0))
    obs = Observed(registered=versions(production=2), now=NOW, serving={"api": True})
    obs.deployments["api"] = deployment(svc, obs, stable=1)
    first = run(svc, obs).actions[0]
    keys = rollout_keys(first.key.rsplit("/step/", 1)[0], 3)
    obs.effects = {k: effect(k) for k in keys[:done]}
    if last is not None:
        obs.effects[keys[done]] = last
    return run(svc, obs), keys


@pytest.mark.parametrize(
    ("done", "weight", "promote", "reason"),
    [
        (0, 10.0, False, "canary v2 (m stage Production) at 10% beside v1"),
        (1, 50.0, False, "analyse the canary at 10%, then move it to 50%"),
        (2, 100.0, False, "analyse the canary at 50%, then move it to 100%"),
        (3, 100.0, True, "analyse the canary at 100%, then make v2 stable"),
    ],
)
def test_a_new_version_with_a_canary_walks_its_steps_one_action_at_a_time(
    done: int, weight: float, promote: bool, reason: str
) -> None:
    p, keys = canary_plan(done)
    (action,) = p.actions
    assert (action.kind, action.key, action.inputs["weight"], action.inputs["promote"], action.reason) == (
        ActionKind.CANARY,
        keys[done],
        weight,
        promote,
        reason,
    )


def test_a_rolled_back_canary_stays_back_with_its_reason() -> None:
    rolled = Effect("k", ActionKind.CANARY, REF, OutcomeKind.STALLED, Reason.CANARY_ROLLED_BACK, "p99 0.2 > 0.1", 1,
                    None, "rev1", NOW)  # fmt: skip
    p, _ = canary_plan(1, last=rolled)
    assert p.actions == []
    assert (p.notes[REF].condition, p.notes[REF].reason, p.notes[REF].message) == (
        ConditionType.STALLED,
        Reason.CANARY_ROLLED_BACK,
        "p99 0.2 > 0.1",
    )


def test_a_step_waiting_for_its_interval_says_so() -> None:
    waiting = Effect("k", ActionKind.CANARY, REF, OutcomeKind.RETRY, Reason.PROGRESSING, "canary v2 at 10%", 1,
                     "2999-01-01T00:00:00+00:00", "rev1", NOW)  # fmt: skip
    p, _ = canary_plan(1, last=waiting)
    assert p.actions == [] and p.notes[REF].condition == ConditionType.RECONCILING


def test_no_version_in_the_stage_is_not_ready_yet() -> None:
    p = run(service(), Observed(registered=versions(production=None), now=NOW))
    assert p.actions == []
    assert (p.notes[REF].reason, p.notes[REF].message) == (
        Reason.DEPENDENCY_NOT_READY,
        "no registered version is m stage Production yet",
    )


def test_kubernetes_targets_are_validated_not_deployed() -> None:
    p = run(service(target="kubernetes"), Observed(registered=versions(), now=NOW))
    assert p.actions == [] and p.notes[REF].reason == Reason.NOT_RECONCILED


def test_a_denied_service_is_not_deployed() -> None:
    p = run(service(), Observed(registered=versions(), now=NOW), denied={REF: "services.x: no"})
    assert p.actions == [] and (p.notes[REF].reason, p.notes[REF].message) == (Reason.POLICY_DENIED, "services.x: no")
