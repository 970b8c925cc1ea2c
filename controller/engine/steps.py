"""The step functions: one per action kind, one signature, ``step(action, ctx) -> Outcome``.

Called by an executor (the local one in-process, or ``modelplane step`` in a
fresh process). A step checks that its inputs are still what the action was
planned from, calls the reconcilers (pure compute), and writes its effect, the
effect's audit record and its ledger entry in one transaction. A step records
its ``Succeeded`` and ``Stalled`` outcomes itself; ``Retry`` outcomes and
exceptions are recorded by the executor.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from controller.api import Dataset, InferenceService, Model
from controller.api.common import duration_seconds
from controller.api.inference_service import CanaryAnalysis
from controller.api.status import ActionKind, Reason, RunStatus, Stage
from controller.backends import local_prometheus, prometheus
from controller.backends.serving.local import LocalServing
from controller.backends.serving.process import ServingError
from controller.engine.actions import Action
from controller.engine.desired import counted_approvals, spec_digest
from controller.engine.events import Events, Phase, StepEvent
from controller.engine.outcomes import Outcome, Retry, Stalled, Succeeded
from controller.state.artifacts import ArtifactError, ArtifactMissing
from controller.state.clock import now
from controller.state.records import Deployment, ModelVersion, Run
from controller.state.store import Store
from reconcilers import data, datagate, deploy, metricgate, modelcard, train


@dataclass
class StepContext:
    """What a step may use: the store, the tree at the revision, the resources, events.
    Data frames are cached here in-process; they are never part of an action."""

    store: Store
    root: Path  # the platform repo's tree at ``revision``: data paths resolve against it
    revision: str | None
    datasets: dict[str, Dataset]
    models: dict[str, Model]
    events: Events = field(default_factory=Events)
    frames: dict[str, data.Loaded] = field(default_factory=dict)
    approvers: frozenset[str] | None = None  # who may approve for Production (None: anyone)
    services: dict[str, InferenceService] = field(default_factory=dict)
    access_data: dict[str, dict[str, object]] = field(default_factory=dict)  # service -> data.modelplane

    def frame(self, name: str) -> data.Loaded:
        if name not in self.frames:
            self.frames[name] = data.load(self.datasets[name], self.datasets, self.root)
        return self.frames[name]

    def progress(self, action: Action, message: str) -> None:
        self.events.emit(
            StepEvent(Phase.PROGRESS, str(action.kind), action.resource, action.key, self.revision, message=message)
        )

    def record(self, action: Action, outcome: Succeeded | Stalled) -> None:
        """The ledger entry for ``action`` (joins the caller's transaction)."""
        self.store.effects.record(
            action.key,
            action.kind,
            action.resource,
            outcome.kind,
            outcome.reason,
            outcome.message,
            revision=self.revision,
        )


def _input(action: Action, name: str) -> str:
    value = action.inputs.get(name)
    if not isinstance(value, str) or not value:
        raise KeyError(f"action {action.key} has no '{name}' input")
    return value


def _spec_moved(action: Action, resource: Dataset | Model | InferenceService) -> Retry | None:
    if spec_digest(resource) != action.inputs.get("spec_digest"):
        return Retry(Reason.SPEC_CHANGED, f"{action.resource} changed since it was planned; plan again")
    return None


def data_gate(action: Action, ctx: StepContext) -> Outcome:
    name = _input(action, "dataset")
    moved = _spec_moved(action, ctx.datasets[name])
    if moved:
        return moved
    expected = _input(action, "content_hash")
    try:
        loaded = ctx.frame(name)
    except data.DataError as exc:  # unreadable content fails its gate, recorded, until the content changes
        outcome = Stalled(Reason.DATA_UNAVAILABLE, str(exc))
        with ctx.store.transaction():
            ctx.store.checks.record(
                action.key, name, expected, ctx.revision, False, None, {"summary": str(exc), "error": str(exc)}
            )
            ctx.record(action, outcome)
        return outcome
    if loaded.content_hash != expected:
        return Retry(Reason.DATA_CHANGED, f"the data of {name} changed since it was planned ({loaded.content_hash})")
    ctx.progress(action, f"running the data contract of {name} ({len(loaded.frame)} rows)")
    gate = datagate.run_contract(ctx.datasets[name], loaded.frame)
    result: Succeeded | Stalled = (
        Succeeded(gate.summary) if gate.success else Stalled(Reason.DATA_CONTRACT_FAILED, gate.summary)
    )
    with ctx.store.transaction():
        ctx.store.checks.record(
            action.key,
            name,
            loaded.content_hash,
            ctx.revision,
            gate.success,
            gate.gx_run_id,
            {**gate.evidence, "summary": gate.summary},
        )
        ctx.record(action, result)
    return result


def train_step(action: Action, ctx: StepContext) -> Outcome:
    model = ctx.models[action.name]
    moved = _spec_moved(action, model)
    if moved:
        return moved
    loaded = ctx.frame(model.spec.dataset)
    if loaded.content_hash != action.inputs.get("dataset_hash"):
        return Retry(Reason.DATA_CHANGED, f"the data of {model.spec.dataset} changed since it was planned")
    target = model.spec.target or ctx.datasets[model.spec.dataset].spec.target
    if not target:
        stalled = Stalled(
            Reason.TRAINING_FAILED, f"no target column: set spec.target on Model {model.name} or its Dataset"
        )
        ctx.record(action, stalled)
        return stalled
    run_id = uuid.uuid4().hex[:12]  # a run restarted after a crash keeps its first id (same key)
    ctx.store.runs.start(
        run_id, action.key, model.name, ctx.revision, model.spec.dataset, loaded.content_hash, spec_digest(model)
    )
    try:
        trained = train.train(model, loaded.frame, target, lambda msg: ctx.progress(action, msg))
        fairness = metricgate.evaluate_fairness(
            model, trained.test_frame, trained.y_test, trained.y_pred, trained.y_score
        )
        artifact = ctx.store.artifacts.put_model(trained.estimator)
    except (train.TrainError, ArtifactError, ValueError) as exc:
        failed = Stalled(Reason.TRAINING_FAILED, str(exc))
        with ctx.store.transaction():
            ctx.store.runs.finish(
                action.key,
                status=RunStatus.FAILED,
                params={},
                metrics={},
                fairness={},
                trials=[],
                environment=train.environment(),
                artifact_digest=None,
                duration_s=0,
                error=str(exc),
                revision=ctx.revision,
            )
            ctx.record(action, failed)
        return failed
    shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(trained.metrics.items()))
    done = Succeeded(f"trained in {trained.duration_s:.1f}s: {shown}")
    with ctx.store.transaction():
        ctx.store.runs.finish(
            action.key,
            status=RunStatus.TRAINED,
            params=trained.params,
            metrics=trained.metrics,
            fairness=fairness,
            trials=trained.trials,
            environment=trained.environment,
            artifact_digest=artifact,
            duration_s=trained.duration_s,
            error=None,
            revision=ctx.revision,
        )
        ctx.record(action, done)
    return done


def _run(action: Action, ctx: StepContext, *statuses: RunStatus) -> Run | Retry:
    run = ctx.store.runs.by_key(_input(action, "run_key"))
    if run is None or run.status not in statuses:
        state = run.status if run else "no run"
        return Retry(Reason.DEPENDENCY_NOT_READY, f"the training run is not ready for {action.kind} ({state})")
    return run


def gate_step(action: Action, ctx: StepContext) -> Outcome:
    run = _run(action, ctx, RunStatus.TRAINED, RunStatus.PASSED, RunStatus.GATE_FAILED)
    if isinstance(run, Retry):
        return run
    model = ctx.models[action.name]
    decision = metricgate.decide(model, run.metrics, run.fairness)
    passed = decision.passed if run.status == RunStatus.TRAINED else run.status == RunStatus.PASSED
    outcome: Succeeded | Stalled = (
        Succeeded(decision.summary()) if passed else Stalled(Reason.GATE_FAILED, decision.summary())
    )
    with ctx.store.transaction():
        ctx.store.runs.record_gates(
            run.key, passed=decision.passed, gates=decision.gates, fairness=decision.fairness, revision=ctx.revision
        )
        ctx.record(action, outcome)
    return outcome


def _unverified(action: Action, ctx: StepContext, run: Run) -> Stalled | None:
    """Check the run's model artifact against its digest before it is registered, promoted or
    described: a missing or altered artifact stalls the model, in the ledger and the audit log."""
    if run.artifact_digest is None:
        return _rejected(action, ctx, None, ArtifactMissing(f"run {run.id} has no artifact"))
    return _artifact_problem(action, ctx, run.artifact_digest)


def _artifact_problem(action: Action, ctx: StepContext, digest: str) -> Stalled | None:
    try:
        ctx.store.artifacts.verify(digest)
    except ArtifactError as exc:
        return _rejected(action, ctx, digest, exc)
    return None


def _rejected(action: Action, ctx: StepContext, digest: str | None, exc: ArtifactError) -> Stalled:
    reason = Reason.ARTIFACT_MISSING if isinstance(exc, ArtifactMissing) else Reason.ARTIFACT_CORRUPT
    stalled = Stalled(reason, f"{exc}; restore it from a backup and run 'modelplane apply --retry'")
    with ctx.store.transaction():
        ctx.store.audit.append(
            "artifact-rejected",
            action.resource,
            {"key": action.key, "action": str(action.kind), "artifact": digest, "error": str(exc)},
            revision=ctx.revision,
        )
        ctx.record(action, stalled)
    return stalled


def register_step(action: Action, ctx: StepContext) -> Outcome:
    run = _run(action, ctx, RunStatus.PASSED)
    if isinstance(run, Retry):
        return run
    rejected = _unverified(action, ctx, run)
    if rejected or run.artifact_digest is None:
        return rejected or Stalled(Reason.ARTIFACT_MISSING, "no artifact")
    with ctx.store.transaction():
        version, created = ctx.store.registry.register(run.model, run.id, run.artifact_digest, ctx.revision)
        done = Succeeded(f"registered v{version.version}" + ("" if created else " (already registered)"))
        ctx.record(action, done)
    return done


def _registered(action: Action, ctx: StepContext) -> tuple[Run, ModelVersion] | Retry | Stalled:
    """The passed run and its registered version, its artifact verified; or why not."""
    run = _run(action, ctx, RunStatus.PASSED)
    if isinstance(run, Retry):
        return run
    version = ctx.store.registry.for_run(run.id)
    if version is None:
        return Retry(Reason.DEPENDENCY_NOT_READY, f"run {run.id} has no registered version yet")
    return _unverified(action, ctx, run) or (run, version)


def promote_step(action: Action, ctx: StepContext) -> Outcome:
    found = _registered(action, ctx)
    if not isinstance(found, tuple):
        return found
    _, version = found
    model = ctx.models[action.name]
    stage = Stage(_input(action, "stage"))
    if stage == Stage.PRODUCTION:
        production = model.spec.promotion.production
        need = production.approvals if production else 0
        have = len(counted_approvals(ctx.store.approvals.of(model.name, version.version), ctx.approvers))
        if have < need:  # checked again here: an approver may have been removed since the plan
            return Retry(Reason.AWAITING_APPROVAL, f"v{version.version} has {have}/{need} approvals")
    reason = action.reason if stage == Stage.PRODUCTION else "gates passed"
    with ctx.store.transaction():
        changed = ctx.store.registry.promote(
            model.name,
            version.version,
            stage,
            key=action.key,
            actor="modelplane",
            reason=reason,
            revision=ctx.revision,
            archive_existing=bool(action.inputs.get("archive")),
        )
        done = Succeeded(f"v{version.version} -> {stage}" + ("" if changed else " (already done)"))
        ctx.record(action, done)
    return done


def card_step(action: Action, ctx: StepContext) -> Outcome:
    found = _registered(action, ctx)
    if not isinstance(found, tuple):
        return found
    run, version = found
    stage = Stage(_input(action, "stage"))
    if version.stage != stage:
        return Retry(Reason.STAGE_CHANGED, f"the version is {version.stage}, not {stage}: plan again")
    model = ctx.models[action.name]
    decisions = ctx.store.audit.latest("policy", action.resource)
    card = modelcard.CardInput(
        model=model,
        version=version.version,
        stage=str(stage),
        run=run.to_dict(),
        dataset=model.spec.dataset,
        data_check=_check_dict(ctx, model.spec.dataset),
        approvals=ctx.store.approvals.of(model.name, version.version),
        policy=list(decisions.payload.get("decisions", [])) if decisions else [],
        revision=ctx.revision,
        date=now(),
    )
    paths = modelcard.write(card, ctx.store.cards_dir)
    done = Succeeded(f"model card written to {paths['html']}")
    with ctx.store.transaction():
        ctx.store.registry.record_card(model.name, version.version, stage, paths)
        ctx.record(action, done)
    return done


def _check_dict(ctx: StepContext, dataset: str) -> dict[str, object] | None:
    check = ctx.store.checks.last(dataset)
    if check is None:
        return None
    return {"success": check.success, "gx_run_id": check.gx_run_id, "dataset_hash": check.dataset_hash}


def _served(action: Action, ctx: StepContext, model: str, number: int, artifact: str | None) -> deploy.Served | Outcome:
    """The registered version an action names, its artifact verified; or why not."""
    version = ctx.store.registry.version(model, number)
    if version is None or (artifact is not None and version.artifact_digest != artifact):
        return Retry(Reason.DEPENDENCY_NOT_READY, f"{model} v{number} is not what was planned: plan again")
    return _artifact_problem(action, ctx, version.artifact_digest) or deploy.Served(
        model, number, version.artifact_digest
    )


def _planned_variants(
    action: Action, ctx: StepContext, service: InferenceService
) -> tuple[deploy.Served, deploy.Served | None] | Outcome:
    """The version an action deploys and its shadow, as planned, their artifacts verified;
    or why not (the service's spec changed since the plan, a version moved, an artifact)."""
    moved = _spec_moved(action, service)
    if moved:
        return moved
    target = _served(
        action, ctx, _input(action, "model"), int(action.inputs["version"] or 0), _input(action, "artifact")
    )
    if not isinstance(target, deploy.Served):
        return target
    shadow_model, shadow_version = action.inputs.get("shadow_model"), action.inputs.get("shadow_version")
    if not (isinstance(shadow_model, str) and isinstance(shadow_version, int)):
        return target, None
    shadow = _served(action, ctx, shadow_model, shadow_version, None)
    return (target, shadow) if isinstance(shadow, deploy.Served) else shadow


def _go_live(
    action: Action,
    ctx: StepContext,
    stable: deploy.Served,
    shadow: deploy.Served | None,
    outcome: Succeeded | Stalled,
    event: str,
    evidence: dict[str, object],
    *,
    canary: tuple[deploy.Served, int, float] | None = None,  # version, step, weight
    starts: int | None = None,
) -> Succeeded | Stalled:
    """Serve ``stable`` (with a canary and a shadow) and, once the new configuration serves,
    record the deployment, its audit record and ``outcome`` under the action's key, together.
    A configuration that cannot serve stalls the action (``ServingFailed``); what served
    before serves on."""
    service = ctx.services[action.name]
    callers = [(c.name, c.token_sha256, c.groups) for c in ctx.store.deployments.callers()]
    config = deploy.service_config(
        service,
        ctx.store.artifacts.root,
        stable,
        canary=(canary[0], canary[2]) if canary else None,
        shadow=shadow,
        callers=callers,
        access_data=ctx.access_data.get(service.name, {}),
    )
    previous = ctx.store.deployments.get(service.name)
    serving = LocalServing(ctx.store.state_dir)
    try:
        status = serving.deploy(config)
    except ServingError as exc:
        failed = Stalled(Reason.SERVING_FAILED, f"{exc}; fix it and run 'modelplane apply --retry'")
        with ctx.store.transaction():
            ctx.store.audit.append(
                "deploy-failed", action.resource, {"key": action.key, "error": str(exc)}, revision=ctx.revision
            )
            ctx.record(action, failed)
        return failed
    same_canary = previous is not None and canary is not None and previous.canary_version == canary[0].version
    deployment = Deployment(
        service=service.name,
        target="local",
        model=stable.model,
        stable_version=stable.version,
        canary_version=canary[0].version if canary else None,
        canary_weight=canary[2] if canary else 0.0,
        canary_step=canary[1] if canary else 0,
        canary_since=now() if canary else None,
        shadow_model=shadow.model if shadow else None,
        shadow_version=shadow.version if shadow else None,
        config_digest=_input(action, "config_digest"),
        url=status.url,
        generation=status.generation or 1,
        starts=starts if starts is not None else (previous.starts if previous else 1),
        revision=ctx.revision,
        at=now(),
    )
    if (
        same_canary
        and previous is not None
        and canary is not None
        and (previous.canary_step, previous.canary_weight) == (canary[1], canary[2])
    ):
        deployment = replace(deployment, canary_since=previous.canary_since)  # a re-run does not restart the clock
    if previous is not None and previous.url and status.url != previous.url:
        # Its port was taken while it was down: callers must hear of the new address.
        moved = f"the endpoint moved from {previous.url} to {status.url} (its port was taken)"
        ctx.progress(action, moved)
        evidence = {**evidence, "moved_from": previous.url}
        if isinstance(outcome, Succeeded):
            outcome = Succeeded(f"{outcome.message}; {moved}")
    with ctx.store.transaction():
        ctx.store.deployments.record(
            deployment,
            event,
            {"key": action.key, "reason": action.reason, "replicas": list(status.replicas), **evidence},
            served_config=replace(config, callers=()).to_json(),  # what a change of callers is served with
        )
        ctx.record(action, outcome)
    local_prometheus.set_targets(
        ctx.store.state_dir, {d.service: d.url for d in ctx.store.deployments.all().values() if d.url}
    )
    return outcome


def deploy_step(action: Action, ctx: StepContext) -> Outcome:
    """Serve the planned version (and shadow) of a local InferenceService: the supervisor
    reloads without a gap, or starts; the deployment and its audit record are written when
    the new configuration serves."""
    service = ctx.services[action.name]
    variants = _planned_variants(action, ctx, service)
    if not isinstance(variants, tuple):
        return variants
    stable, shadow = variants
    previous = ctx.store.deployments.get(service.name)
    starts = int(action.inputs.get("starts") or 1)
    canary: tuple[deploy.Served, int, float] | None = None
    canary_version = action.inputs.get("canary_version")
    if isinstance(canary_version, int):  # a restart of a service that was mid-rollout: its canary too
        found = _served(action, ctx, stable.model, canary_version, str(action.inputs.get("canary_artifact") or ""))
        if not isinstance(found, deploy.Served):
            return found
        canary = (found, int(action.inputs.get("canary_step") or 0), float(action.inputs.get("canary_weight") or 0))
    ctx.progress(action, f"starting {service.name}: {stable.model} v{stable.version}")
    if service.spec.canary is not None and service.spec.canary.analysis is not None:
        # Scraped from its first deployment, so that a canary's first step finds data at once.
        with contextlib.suppress(prometheus.PrometheusError):
            local_prometheus.ensure(ctx.store.state_dir)
    restarted = previous is not None and starts > previous.starts
    return _go_live(
        action,
        ctx,
        stable,
        shadow,
        Succeeded(f"serving {stable.model} v{stable.version}"),
        "restarted" if restarted else "deployed",
        {"previous_version": previous.stable_version if previous else None},
        starts=starts,
        canary=canary,
    )


CANARY_DATA_GRACE_S = 30.0  # after its interval, how long a step may wait for data before it fails safe
NO_LIMIT = 1e9  # a threshold the analysis does not set


def canary_step(action: Action, ctx: StepContext) -> Outcome:
    """One step of a canary rollout: start the canary at the first weight; or, once the step
    before has served for the analysis interval, judge the canary by its Prometheus metrics
    and move it on (to the next weight, or to stable), or roll it back to the stable version
    with the evidence (``CanaryRolledBack``). No data is never a pass: past the interval and
    a grace period, it rolls back."""
    service = ctx.services[action.name]
    variants = _planned_variants(action, ctx, service)
    if not isinstance(variants, tuple):
        return variants
    target, shadow = variants
    deployed = ctx.store.deployments.get(service.name)
    if deployed is None:
        return Retry(Reason.DEPENDENCY_NOT_READY, f"{service.name} is not deployed: plan again")
    stable = _served(action, ctx, deployed.model, deployed.stable_version, None)
    if not isinstance(stable, deploy.Served):
        return stable
    step, weight = int(action.inputs.get("step") or 0), float(action.inputs.get("weight") or 0)
    canary_spec = service.spec.canary
    analysis_spec = canary_spec.analysis if canary_spec else None
    if step == 0:
        if analysis_spec is not None:
            try:
                local_prometheus.ensure(ctx.store.state_dir)
            except prometheus.PrometheusError as exc:
                return Retry(Reason.DEPENDENCY_NOT_READY, f"the Prometheus for canary analysis: {exc}")
        ctx.progress(action, f"canary {target.model} v{target.version} at {weight:g}%")
        return _go_live(
            action,
            ctx,
            stable,
            shadow,
            Succeeded(f"canary v{target.version} takes {weight:g}% of the calls"),
            "canary-started",
            {"canary_version": target.version, "weight": weight},
            canary=(target, 0, weight),
        )
    if deployed.canary_version != target.version or deployed.canary_step != step - 1 or not deployed.canary_since:
        return Retry(Reason.DEPENDENCY_NOT_READY, f"the canary of {service.name} is not at step {step - 1}: plan again")
    interval = duration_seconds(analysis_spec.interval if analysis_spec else "1m")
    elapsed = (datetime.now(UTC) - datetime.fromisoformat(deployed.canary_since)).total_seconds()
    at = f"canary v{target.version} at {deployed.canary_weight:g}%"
    if elapsed < interval:
        left = interval - elapsed
        return Retry(Reason.PROGRESSING, f"{at}, analysed in {left:.0f} s", after=left, doubling=False)
    evidence: dict[str, object] = {"canary_version": target.version, "step": step}
    if analysis_spec is not None:
        judged = _analyse(ctx, service, analysis_spec, interval)
        evidence["analysis"] = judged.to_dict()
        if judged.verdict == prometheus.Verdict.NO_DATA and elapsed < interval + CANARY_DATA_GRACE_S:
            wait = max(1.0, min(5.0, interval / 2))
            return Retry(Reason.PROGRESSING, f"{at}: {judged.reason}; waiting for data", after=wait, doubling=False)
        if not judged.passed:
            ctx.progress(action, f"rolling back: {judged.reason}")
            return _go_live(
                action,
                ctx,
                stable,
                shadow,
                Stalled(Reason.CANARY_ROLLED_BACK, f"{at} rolled back to v{stable.version}: {judged.reason}"),
                "canary-rolled-back",
                evidence,
            )
    if bool(action.inputs.get("promote")):
        ctx.progress(action, f"promoting the canary: v{target.version} is stable")
        return _go_live(
            action,
            ctx,
            target,
            shadow,
            Succeeded(f"v{target.version} is stable (the canary passed every step)"),
            "canary-promoted",
            {**evidence, "previous_version": stable.version},
        )
    ctx.progress(action, f"canary v{target.version}: {deployed.canary_weight:g}% -> {weight:g}%")
    return _go_live(
        action,
        ctx,
        stable,
        shadow,
        Succeeded(f"canary v{target.version} takes {weight:g}% of the calls"),
        "canary-step",
        {**evidence, "weight": weight},
        canary=(target, step, weight),
    )


def _analyse(ctx: StepContext, service: InferenceService, spec: CanaryAnalysis, interval: float) -> prometheus.Analysis:
    latency = spec.maxLatencyP99 or (service.spec.slo.latencyP99 if service.spec.slo else None)
    errors = (
        spec.maxErrorRate
        if spec.maxErrorRate is not None
        else (service.spec.slo.errorRate if service.spec.slo else None)
    )
    thresholds = prometheus.Thresholds(
        duration_seconds(latency) if latency else NO_LIMIT,
        float(errors) if errors is not None else NO_LIMIT,
        float(spec.minRequests),
    )
    window = f"{max(1, round(interval))}s"
    try:
        url = local_prometheus.ensure(ctx.store.state_dir)  # started again if it died: no data, then
    except prometheus.PrometheusError as exc:
        reason = f"Prometheus is unavailable: {exc}"
        return prometheus.Analysis(prometheus.Verdict.NO_DATA, reason, service.name, "canary", window, 0.0, "", ())
    with prometheus.InferenceMetrics(url) as metrics:
        return prometheus.analyse(metrics, service.name, "canary", window, thresholds)


Step = Callable[[Action, StepContext], Outcome]

STEPS: dict[ActionKind, Step] = {
    ActionKind.DATA_GATE: data_gate,
    ActionKind.TRAIN: train_step,
    ActionKind.METRIC_GATE: gate_step,
    ActionKind.REGISTER: register_step,
    ActionKind.PROMOTE: promote_step,
    ActionKind.MODEL_CARD: card_step,
    ActionKind.DEPLOY: deploy_step,
    ActionKind.CANARY: canary_step,
}
