"""The Model planner: train -> metric gate -> register -> Staging -> card -> Production -> card.

Every effect of a version is keyed by its training run's key ``T`` (model spec,
dataset content and code version): ``T``, ``T/gate``, ``T/register``,
``T/Staging``, ``T/card/Staging``, ``T/Production``, ``T/card/Production``. The
planner walks that chain against the ledger and plans from the first key not
done, so a crash anywhere resumes exactly there; a model card is keyed by its
stage, so a version promoted before its card was written still gets one.
"""

from __future__ import annotations

from controller.api.status import ActionKind, ConditionType, Reason, RunStatus, Stage
from controller.engine.actions import Action, Input, Note, Plan
from controller.engine.desired import Desired, DesiredModel, Observed, counted_approvals
from controller.engine.planners.ledger import State, key_state, short


def _train_reason(model: DesiredModel, content_hash: str, observed: Observed) -> str:
    last = observed.last_run.get(model.name)
    if last is None:
        return "first training"
    reasons = []
    if last.dataset_hash != content_hash:
        reasons.append(f"dataset content changed {short(last.dataset_hash)}…→{short(content_hash)}…")
    if last.spec_digest != model.spec_digest:
        reasons.append("spec changed")
    if last.status == RunStatus.RUNNING:
        reasons.append("the last run was interrupted")
    return "; ".join(reasons) or "code version changed"


class _Chain:
    """The actions planned for one model, each after the one before it."""

    def __init__(self, ref: str, revision: str | None, first_after: tuple[str, ...] = ()) -> None:
        self.ref, self.revision, self.actions = ref, revision, list[Action]()
        self._after = first_after

    def add(self, kind: ActionKind, key: str, reason: str, **inputs: Input) -> None:
        self.actions.append(Action(kind, self.ref, key, reason, inputs, self._after, self.revision))
        self._after = (key,)


def plan_models(desired: Desired, observed: Observed, plan: Plan, *, retry: bool = False) -> None:
    pending = plan.keys()
    for name, model in sorted(desired.models.items()):
        ref = f"Model/{name}"
        if ref in desired.denied:
            plan.notes[ref] = Note(ConditionType.STALLED, True, Reason.POLICY_DENIED, desired.denied[ref])
            continue
        dataset = desired.datasets.get(model.dataset)
        if dataset is None or dataset.content_hash is None or model.train_key is None or dataset.check_key is None:
            plan.notes[ref] = Note(
                ConditionType.STALLED, True, Reason.DEPENDENCY_NOT_READY, f"Dataset {model.dataset} is not available"
            )
            continue
        check_planned = dataset.check_key in pending
        if not check_planned and key_state(dataset.check_key, observed, retry=retry).state != State.DONE:
            plan.notes[ref] = Note(
                ConditionType.STALLED,
                True,
                Reason.DEPENDENCY_NOT_READY,
                f"Dataset {model.dataset} failed its gate",
            )
            continue
        chain = _Chain(ref, desired.revision, (dataset.check_key,) if check_planned else ())
        note = _plan_chain(model, dataset.content_hash, observed, chain, retry, desired.approvers)
        plan.actions.extend(chain.actions)
        if note is not None:
            plan.notes[ref] = note
        elif not chain.actions:
            plan.notes[ref] = Note(ConditionType.READY, True, Reason.SUCCEEDED, "up to date")


def _plan_chain(
    model: DesiredModel,
    content_hash: str,
    observed: Observed,
    chain: _Chain,
    retry: bool,
    approvers: frozenset[str] | None = None,
) -> Note | None:
    """Append the model's next actions to ``chain``; a note when it stands still."""
    key = model.train_key
    assert key is not None
    steps = [
        (ActionKind.TRAIN, key, _train_reason(model, content_hash, observed)),
        (ActionKind.METRIC_GATE, f"{key}/gate", "evaluate gates on the held-out split"),
        (ActionKind.REGISTER, f"{key}/register", "gates passed; register the version"),
    ]
    for i, (kind, step_key, reason) in enumerate(steps):
        state = key_state(step_key, observed, retry=retry)
        if state.state == State.DONE:
            continue
        if state.note is not None:
            return state.note
        if kind == ActionKind.TRAIN:
            chain.add(
                kind,
                step_key,
                reason,
                dataset=model.dataset,
                dataset_hash=content_hash,
                spec_digest=model.spec_digest,
                code_version=model.code_version,
            )
        else:
            chain.add(kind, step_key, _resumed(kind), run_key=key)  # resumed after the step before it
        for later_kind, later_key, later_reason in steps[i + 1 :]:
            chain.add(later_kind, later_key, later_reason, run_key=key)
        if model.staging_automatic:
            _promote(chain, key, Stage.STAGING, "after the gates pass", archive=False)
        return None
    version = observed.versions.get(key)
    if version is None:  # the ledger says registered, the registry disagrees: register (idempotent) again
        chain.add(ActionKind.REGISTER, f"{key}/register", "the registered version is missing", run_key=key)
        return None
    stage = version.stage
    if stage == Stage.NONE and model.staging_automatic:
        return _continue(chain, key, Stage.STAGING, "gates passed", observed, retry, archive=False)
    if stage in (Stage.STAGING, Stage.PRODUCTION):
        card = key_state(f"{key}/card/{stage}", observed, retry=retry)
        if card.note is not None:
            return card.note
        if card.state == State.TODO:
            chain.add(
                ActionKind.MODEL_CARD,
                f"{key}/card/{stage}",
                f"v{version.version} in {stage} has no card",
                run_key=key,
                stage=str(stage),
            )
    if stage == Stage.STAGING and model.production_approvals is not None:
        given = observed.approvals.get((model.name, version.version), [])
        counted = counted_approvals(given, approvers)
        have, need = len(counted), model.production_approvals
        if have < need:
            if chain.actions:
                return None
            ignored = [a for a in given if a not in counted]
            unlisted = f" (not counted: {', '.join(ignored)}, not in the project's approvers)" if ignored else ""
            return Note(
                ConditionType.READY,
                False,
                Reason.AWAITING_APPROVAL,
                f"v{version.version} is in Staging with {have}/{need} approvals for Production{unlisted}",
            )
        return _continue(
            chain, key, Stage.PRODUCTION, f"{have}/{need} approvals", observed, retry, archive=model.archive_existing
        )
    if chain.actions:
        return None
    return Note(ConditionType.READY, True, Reason.SUCCEEDED, f"v{version.version} is in {stage}")


def _resumed(kind: ActionKind) -> str:
    return {
        ActionKind.METRIC_GATE: "training finished; gates not evaluated yet",
        ActionKind.REGISTER: "gates passed; version not registered yet",
    }.get(kind, str(kind))


def _continue(
    chain: _Chain, key: str, stage: Stage, reason: str, observed: Observed, retry: bool, *, archive: bool
) -> Note | None:
    state = key_state(f"{key}/{stage}", observed, retry=retry)
    if state.note is not None:
        return state.note
    if state.state == State.TODO:
        _promote(chain, key, stage, reason, archive=archive)
    return None


def _promote(chain: _Chain, key: str, stage: Stage, reason: str, *, archive: bool) -> None:
    chain.add(ActionKind.PROMOTE, f"{key}/{stage}", reason, run_key=key, stage=str(stage), archive=archive)
    chain.add(
        ActionKind.MODEL_CARD, f"{key}/card/{stage}", f"card for the new {stage} version", run_key=key, stage=str(stage)
    )
