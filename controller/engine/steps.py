"""The step functions: one per action kind, one signature, ``step(action, ctx) -> Outcome``.

Called by an executor (the local one in-process, or ``modelplane step`` in a
fresh process). A step checks that its inputs are still what the action was
planned from, calls the reconcilers (pure compute), and writes its effect, the
effect's audit record and its ledger entry in one transaction. A step records
its ``Succeeded`` and ``Stalled`` outcomes itself; ``Retry`` outcomes and
exceptions are recorded by the executor.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from controller.api import Dataset, InferenceService, Model
from controller.api.status import ActionKind, Reason, RunStatus, Stage
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


def deploy_step(action: Action, ctx: StepContext) -> Outcome:
    """Serve the planned version (and shadow) of a local InferenceService: the supervisor
    reloads without a gap, or starts; the deployment and its audit record are written when
    the new configuration serves."""
    service = ctx.services[action.name]
    moved = _spec_moved(action, service)
    if moved:
        return moved
    stable = _served(
        action, ctx, _input(action, "model"), int(action.inputs["version"] or 0), _input(action, "artifact")
    )
    if not isinstance(stable, deploy.Served):
        return stable
    shadow: deploy.Served | None = None
    shadow_model, shadow_version = action.inputs.get("shadow_model"), action.inputs.get("shadow_version")
    if isinstance(shadow_model, str) and isinstance(shadow_version, int):
        found = _served(action, ctx, shadow_model, shadow_version, None)
        if not isinstance(found, deploy.Served):
            return found
        shadow = found
    callers = [(c.name, c.token_sha256, c.groups) for c in ctx.store.deployments.callers()]
    config = deploy.service_config(
        service,
        ctx.store.artifacts.root,
        stable,
        shadow=shadow,
        callers=callers,
        access_data=ctx.access_data.get(service.name, {}),
    )
    previous = ctx.store.deployments.get(service.name)
    ctx.progress(action, f"starting {service.name}: {stable.model} v{stable.version}")
    try:
        status = LocalServing(ctx.store.state_dir).deploy(config)
    except ServingError as exc:
        failed = Stalled(Reason.SERVING_FAILED, f"{exc}; fix it and run 'modelplane apply --retry'")
        with ctx.store.transaction():
            ctx.store.audit.append(
                "deploy-failed",
                action.resource,
                {"key": action.key, "version": stable.version, "error": str(exc)},
                revision=ctx.revision,
            )
            ctx.record(action, failed)
        return failed
    deployment = Deployment(
        service=service.name,
        target="local",
        model=stable.model,
        stable_version=stable.version,
        canary_version=None,
        canary_weight=0.0,
        canary_step=0,
        canary_since=None,
        shadow_model=shadow.model if shadow else None,
        shadow_version=shadow.version if shadow else None,
        config_digest=_input(action, "config_digest"),
        url=status.url,
        generation=status.generation or 1,
        starts=int(action.inputs.get("starts") or 1),
        revision=ctx.revision,
        at=now(),
    )
    restarted = previous is not None and deployment.starts > previous.starts
    done = Succeeded(f"serving {stable.model} v{stable.version} at {status.url}")
    with ctx.store.transaction():
        ctx.store.deployments.record(
            deployment,
            "restarted" if restarted else "deployed",
            {
                "key": action.key,
                "reason": action.reason,
                "previous_version": previous.stable_version if previous else None,
                "replicas": list(status.replicas),
            },
        )
        ctx.record(action, done)
    return done


Step = Callable[[Action, StepContext], Outcome]

STEPS: dict[ActionKind, Step] = {
    ActionKind.DATA_GATE: data_gate,
    ActionKind.TRAIN: train_step,
    ActionKind.METRIC_GATE: gate_step,
    ActionKind.REGISTER: register_step,
    ActionKind.PROMOTE: promote_step,
    ActionKind.MODEL_CARD: card_step,
    ActionKind.DEPLOY: deploy_step,
}
