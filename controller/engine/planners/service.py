"""The InferenceService planner: resolve the model through the registry, deploy what changed.

A service serves the version its ``spec.model`` names *now* in the registry (a
stage, an alias or a pinned version), so a promotion rolls out without a change in
git. Its deployment is keyed by what it serves and how: the version and its
artifact, and the configuration digest (the spec, the access data the runtime
policy sees, the callers, the shadow version). A change of any of them plans one
``deploy`` action under a new key; a server found down is started again under the
key of its next start. The planner never reads the store: the registry, the
deployments and whether their servers run come in ``observed``.
"""

from __future__ import annotations

from controller.api.status import ActionKind, ConditionType, Reason
from controller.engine.actions import Action, Input, Note, Plan
from controller.engine.desired import Desired, DesiredService, Observed, digest
from controller.engine.planners.ledger import State, key_state
from controller.state.records import Deployment, ModelVersion


def config_digest(service: DesiredService, observed: Observed) -> str:
    """Everything but the versions that decides how a service is served."""
    shadow = observed.resolve(service.shadow) if service.shadow else None
    return digest(
        "serving-config",
        service.spec_digest,
        service.access_digest,
        observed.callers_digest,
        [shadow.model, shadow.version, shadow.artifact_digest] if shadow else None,
    )


def plan_services(desired: Desired, observed: Observed, plan: Plan, *, retry: bool = False) -> None:
    for name, service in sorted(desired.services.items()):
        ref = f"InferenceService/{name}"
        note = _plan_service(ref, service, desired, observed, plan, retry)
        if note is not None:
            plan.notes[ref] = note


def _plan_service(
    ref: str, service: DesiredService, desired: Desired, observed: Observed, plan: Plan, retry: bool
) -> Note | None:
    if ref in desired.denied:
        return Note(ConditionType.STALLED, True, Reason.POLICY_DENIED, desired.denied[ref])
    if service.target != "local":
        return Note(
            ConditionType.READY,
            False,
            Reason.NOT_RECONCILED,
            f"target {service.target} is validated and policy-checked, not deployed: modelplane deploys "
            "target: local today",
        )
    version = observed.resolve(service.model)
    if version is None:
        waiting = f"; Model/{service.model.model} has actions in this plan" if _pending(plan, service) else ""
        return Note(
            ConditionType.READY,
            False,
            Reason.DEPENDENCY_NOT_READY,
            f"no registered version is {service.model.describe()} yet{waiting}",
        )
    shadow = observed.resolve(service.shadow) if service.shadow else None
    config = config_digest(service, observed)
    key = digest("deploy", service.name, version.model, version.version, version.artifact_digest, config)
    deployed = observed.deployments.get(service.name)
    if deployed is not None and not observed.serving.get(service.name):
        restart = _plan_restart(ref, service, desired, observed, plan, retry, deployed, shadow)
        if not isinstance(restart, bool):
            return restart
        if restart:
            return None
    moving = deployed is not None and (deployed.stable_version, deployed.model) != (version.version, version.model)
    if moving and deployed is not None and service.canary_steps:
        return _plan_rollout(ref, service, desired, observed, plan, retry, version, config)
    starts = 1
    if deployed is None:
        reason = f"first deployment: {service.model.describe()} is v{version.version}"
    elif deployed.stable_version != version.version or deployed.model != version.model:
        reason = f"{service.model.describe()} moved: v{deployed.stable_version} -> v{version.version}"
    elif deployed.config_digest != config:
        reason = "the spec, the access data or the callers changed"
    else:
        where = f" at {deployed.url}" if deployed.url else ""
        return Note(ConditionType.READY, True, Reason.SUCCEEDED, f"serving {version.model} v{version.version}{where}")
    state = key_state(key, observed, retry=retry)
    if state.note is not None:
        return state.note
    if state.state == State.DONE:  # done, yet the deployment says otherwise: it was changed since
        return Note(ConditionType.READY, True, Reason.SUCCEEDED, f"deployed {version.model} v{version.version}")
    inputs = _inputs(service, version, shadow, config)
    plan.actions.append(
        # Never after the model's chain: what serves now must not wait for a new version's gates.
        Action(ActionKind.DEPLOY, ref, key, reason, {**inputs, "starts": starts}, (), desired.revision)
    )
    return None


def _plan_restart(
    ref: str,
    service: DesiredService,
    desired: Desired,
    observed: Observed,
    plan: Plan,
    retry: bool,
    deployed: Deployment,
    shadow: ModelVersion | None,
) -> Note | bool:
    """A server found down starts again serving what the deployment records (its canary
    too, at its step), whatever else is pending: a rolled-back or waiting rollout must not
    leave the stable version down. True when planned, False when the recorded version is
    gone from the registry."""
    stable = observed.registered.get((deployed.model, deployed.stable_version))
    if stable is None:
        return False
    starts = deployed.starts + 1
    base = digest("deploy", service.name, stable.model, stable.version, stable.artifact_digest, deployed.config_digest)
    key = f"{base}/start/{starts}"
    state = key_state(key, observed, retry=retry)
    if state.note is not None:
        return state.note
    inputs = {**_inputs(service, stable, shadow, deployed.config_digest), "starts": starts}
    if deployed.canary_version is not None:
        canary = observed.registered.get((deployed.model, deployed.canary_version))
        if canary is not None:
            inputs |= {
                "canary_version": canary.version,
                "canary_artifact": canary.artifact_digest,
                "canary_weight": deployed.canary_weight,
                "canary_step": deployed.canary_step,
            }
    reason = f"its server is down (start {starts})"
    plan.actions.append(Action(ActionKind.DEPLOY, ref, key, reason, inputs, (), desired.revision))
    return True


def _inputs(
    service: DesiredService, version: ModelVersion, shadow: ModelVersion | None, config: str
) -> dict[str, Input]:
    return {
        "spec_digest": service.spec_digest,
        "model": version.model,
        "version": version.version,
        "artifact": version.artifact_digest,
        "shadow_model": shadow.model if shadow else None,
        "shadow_version": shadow.version if shadow else None,
        "config_digest": config,
    }


def rollout_keys(rollout: str, steps: int) -> list[str]:
    """The ledger keys of a canary rollout: one per traffic step, then the promotion."""
    return [f"{rollout}/step/{i}" for i in range(steps)] + [f"{rollout}/promote"]


def _plan_rollout(
    ref: str,
    service: DesiredService,
    desired: Desired,
    observed: Observed,
    plan: Plan,
    retry: bool,
    version: ModelVersion,
    config: str,
) -> Note | None:
    """A new version reaches traffic only through the canary: step ``i`` moves the canary to
    ``steps[i]`` percent once the analysis of the step before passed, the last key makes it
    stable. A rollback is recorded under the key that decided it (``CanaryRolledBack``): the
    same rollout is not tried again until git changes (a new revision is a new rollout);
    ``--retry`` does not retry it."""
    deployed = observed.deployments[service.name]
    rollout = digest(
        "rollout",
        service.name,
        deployed.model,
        deployed.stable_version,
        version.model,
        version.version,
        version.artifact_digest,
        config,
        desired.revision,
    )
    steps = service.canary_steps
    for index, key in enumerate(rollout_keys(rollout, len(steps))):
        state = key_state(key, observed, retry=retry)
        if state.state == State.DONE:
            continue
        if state.note is not None:
            return state.note
        shadow = observed.resolve(service.shadow) if service.shadow else None
        promote = index == len(steps)
        weight = 100.0 if promote else steps[index]
        if index == 0:
            reason = (
                f"canary v{version.version} ({service.model.describe()}) at {weight:g}% "
                f"beside v{deployed.stable_version}"
            )
        elif promote:
            reason = f"analyse the canary at {steps[-1]:g}%, then make v{version.version} stable"
        else:
            reason = f"analyse the canary at {steps[index - 1]:g}%, then move it to {weight:g}%"
        inputs = {**_inputs(service, version, shadow, config), "step": index, "weight": weight, "promote": promote}
        plan.actions.append(Action(ActionKind.CANARY, ref, key, reason, inputs, (), desired.revision))
        return None
    return None


def _pending(plan: Plan, service: DesiredService) -> list[Action]:
    return [a for a in plan.actions if a.resource == f"Model/{service.model.model}"]
