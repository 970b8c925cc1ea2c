"""The local executor: runs a plan's actions in order, in-process.

Each action kind maps to a step with one signature, ``step(action, ctx) ->
StepResult``; the steps call the reconcilers and record their effects in the
state store under the action's idempotency key. A failed or stalled action
skips the actions that depend on it; the others go on.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.api import Dataset, Model
from controller.engine.desired import spec_digest
from controller.engine.plan import Action, Plan
from controller.state.artifacts import ArtifactError
from controller.state.store import Store, now
from reconcilers import data, datagate, metricgate, modelcard, train

Progress = Callable[[str], None]


@dataclass
class Context:
    store: Store
    root: Path
    revision: str | None
    datasets: dict[str, Dataset]
    models: dict[str, Model]
    policy: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # "Kind/name" -> decisions
    progress: Progress = lambda _msg: None
    frames: dict[str, data.Loaded] = field(default_factory=dict)

    def frame(self, name: str) -> data.Loaded:
        if name not in self.frames:
            self.frames[name] = data.load(self.datasets[name], self.datasets, self.root)
        return self.frames[name]


@dataclass(frozen=True)
class StepResult:
    ok: bool
    message: str


@dataclass(frozen=True)
class Executed:
    action: Action
    result: StepResult | None  # None: skipped because an earlier action failed


def _name(action: Action) -> str:
    return action.resource.split("/", 1)[1]


def data_gate(action: Action, ctx: Context) -> StepResult:
    name = action.params["dataset"]
    try:
        loaded = ctx.frame(name)
    except data.DataError as exc:  # unreadable content fails its gate, recorded, until the content changes
        evidence = {"summary": str(exc), "error": str(exc)}
        ctx.store.record_data_check(action.key, name, action.params["hash"], ctx.revision, False, None, evidence)
        return StepResult(False, str(exc))
    if loaded.content_hash != action.params["hash"]:
        return StepResult(False, f"the data changed while planning ({loaded.content_hash}); run again")
    ctx.progress(f"  running the data contract of {name} ({len(loaded.frame)} rows)")
    gate = datagate.run_contract(ctx.datasets[name], loaded.frame)
    evidence = {**gate.evidence, "summary": gate.summary}
    ctx.store.record_data_check(
        action.key, name, loaded.content_hash, ctx.revision, gate.success, gate.gx_run_id, evidence
    )
    return StepResult(gate.success, gate.summary)


def train_step(action: Action, ctx: Context) -> StepResult:
    model = ctx.models[_name(action)]
    loaded = ctx.frame(model.spec.dataset)
    target = model.spec.target or ctx.datasets[model.spec.dataset].spec.target
    if not target:
        return StepResult(False, f"no target column: set spec.target on Model {model.name} or its Dataset")
    run_id = uuid.uuid4().hex[:12]  # a run restarted after a crash keeps its first id (same key)
    ctx.store.start_run(
        run_id, action.key, model.name, ctx.revision, model.spec.dataset, loaded.content_hash, spec_digest(model)
    )
    try:
        trained = train.train(model, loaded.frame, target, lambda msg: ctx.progress(f"  {msg}"))
        fairness = metricgate.evaluate_fairness(
            model, trained.test_frame, trained.y_test, trained.y_pred, trained.y_score
        )
        artifact = ctx.store.artifacts.put_model(trained.estimator)
    except (train.TrainError, ArtifactError, ValueError) as exc:
        ctx.store.finish_run(
            action.key,
            status="failed",
            params={},
            metrics={},
            gates=[],
            fairness={},
            trials=[],
            environment=train.environment(),
            artifact_digest=None,
            duration_s=0,
            error=str(exc),
            revision=ctx.revision,
        )
        return StepResult(False, str(exc))
    ctx.store.finish_run(
        action.key,
        status="trained",
        params=trained.params,
        metrics=trained.metrics,
        gates=[],
        fairness=fairness,
        trials=trained.trials,
        environment=trained.environment,
        artifact_digest=artifact,
        duration_s=trained.duration_s,
        error=None,
        revision=ctx.revision,
    )
    shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(trained.metrics.items()))
    return StepResult(True, f"trained in {trained.duration_s:.1f}s: {shown}")


def gate_step(action: Action, ctx: Context) -> StepResult:
    key = action.key.removesuffix("/gate")
    run = ctx.store.run_by_key(key)
    if run is None:
        return StepResult(False, "no training run to judge")
    model = ctx.models[_name(action)]
    if run["status"] in ("passed", "gate-failed"):
        passed = run["status"] == "passed"
        return StepResult(passed, "gates already decided")
    outcome = metricgate.decide(model, run["metrics"], run["fairness"])
    ctx.store.record_gates(
        key, passed=outcome.passed, gates=outcome.gates, fairness=outcome.fairness, revision=ctx.revision
    )
    return StepResult(outcome.passed, outcome.summary())


def _version_for(action: Action, ctx: Context) -> int:
    if "version" in action.params:
        return int(action.params["version"])
    key = action.params.get("run_key") or action.key.rsplit("/", 1)[0]
    run = ctx.store.run_by_key(key)
    if run is None or run["status"] != "passed":
        raise LookupError("the training run has not passed its gates")
    version, _ = ctx.store.register(run["model"], run["id"], run["artifact_digest"], ctx.revision)
    return version.version


def register_step(action: Action, ctx: Context) -> StepResult:
    version = _version_for(action, ctx)
    return StepResult(True, f"registered v{version}")


def promote_step(action: Action, ctx: Context) -> StepResult:
    model = ctx.models[_name(action)]
    version = _version_for(action, ctx)
    stage = action.params["stage"]
    if stage == "Production":
        production = model.spec.promotion.production
        need = production.approvals if production else 0
        have = len(ctx.store.approvals(model.name, version))
        if have < need:
            return StepResult(False, f"v{version} has {have}/{need} approvals")
    reason = action.reason if stage == "Production" else "gates passed"
    archive = bool(action.params.get("archive"))
    changed = ctx.store.promote(
        model.name,
        version,
        stage,
        key=f"{model.name}/v{version}/{stage}",
        actor="modelplane",
        reason=reason,
        revision=ctx.revision,
        archive_existing=archive,
    )
    return StepResult(True, f"v{version} -> {stage}" + ("" if changed else " (already done)"))


def card_step(action: Action, ctx: Context) -> StepResult:
    model = ctx.models[_name(action)]
    version = _version_for(action, ctx)
    record = ctx.store.version(model.name, version)
    assert record is not None
    run = ctx.store.run(record.run_id)
    assert run is not None
    check = ctx.store.last_data_check(model.spec.dataset)
    card = modelcard.CardInput(
        model=model,
        version=version,
        stage=record.stage,
        run=run,
        dataset=model.spec.dataset,
        data_check=check,
        approvals=ctx.store.approvals(model.name, version),
        policy=ctx.policy.get(f"Model/{model.name}", []),
        revision=ctx.revision,
        date=now(),
    )
    paths = modelcard.write(card, ctx.store.cards_dir)
    ctx.store.record_card(model.name, version, paths)
    return StepResult(True, f"model card written to {paths['html']}")


STEPS: dict[str, Callable[[Action, Context], StepResult]] = {
    "data-gate": data_gate,
    "train": train_step,
    "metric-gate": gate_step,
    "register": register_step,
    "promote": promote_step,
    "model-card": card_step,
}


def execute(plan: Plan, ctx: Context) -> list[Executed]:
    done: list[Executed] = []
    failed: set[str] = set()
    for action in plan.actions:
        if any(key in failed for key in action.after):
            failed.add(action.key)
            done.append(Executed(action, None))
            ctx.progress(f"- {action.describe()} (skipped: an earlier step did not succeed)")
            continue
        ctx.progress(f"> {action.describe()}")
        try:
            result = STEPS[action.kind](action, ctx)
        except (data.DataError, train.TrainError, ArtifactError, LookupError, KeyError) as exc:
            result = StepResult(False, str(exc))
        if not result.ok:
            failed.add(action.key)
        ctx.progress(f"  {'ok' if result.ok else 'FAILED'}: {result.message}")
        done.append(Executed(action, result))
    return done


def summary(executed: list[Executed]) -> dict[str, Any]:
    ok = sum(1 for e in executed if e.result and e.result.ok)
    failed = sum(1 for e in executed if e.result and not e.result.ok)
    skipped = sum(1 for e in executed if e.result is None)
    return {"succeeded": ok, "failed": failed, "skipped": skipped}
