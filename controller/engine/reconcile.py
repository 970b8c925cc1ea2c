"""The reconcile loop as a library call: load -> validate -> policy -> plan -> execute -> status.

:func:`reconcile_revision` is what the CLI (``plan``, ``apply``), and later the
server's worker and a Tekton task, call; :func:`run_step` runs one action (what
``modelplane step`` calls). Both take an explicit source and store and touch
no process-wide state (no ``chdir``, no ``gc`` tweaks, no forking), so they are
safe to call from a server thread.

Validation errors stop everything; a policy denial stalls the denied resource
(and what depends on it) with ``PolicyDenied``; everything else goes through
the planners and an executor under the apply lock, and statuses are written
afterwards whatever happened (``finally``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from controller.api import Dataset, InferenceService, Model
from controller.api.findings import Report, Severity
from controller.api.status import (
    Condition,
    ConditionStatus,
    ConditionType,
    OutcomeKind,
    Reason,
    ResourceStatus,
)
from controller.engine.actions import Action, Plan
from controller.engine.checks import PolicySettings, judge
from controller.engine.desired import Desired, desired_state, digest, observed_state
from controller.engine.events import Events
from controller.engine.executor import Executed, Executor, LocalExecutor, run_action
from controller.engine.outcomes import Succeeded
from controller.engine.plan import plan
from controller.engine.source import Source
from controller.engine.steps import StepContext
from controller.loading import DEFAULT_PATHS, Keep, LoadResult
from controller.policy.evaluate import PolicyOutcome
from controller.state import lock
from controller.state.anchor import Head
from controller.state.store import Store


@dataclass
class Settings:
    policy: PolicySettings | None = field(default_factory=PolicySettings)
    apply: bool = False
    retry: bool = False  # re-run what raised (ReconcileFailed) and what is backing off
    wait: bool = False  # wait for another apply's lock instead of refusing
    paths: tuple[str, ...] = DEFAULT_PATHS
    events: Events = field(default_factory=Events)
    executor: Executor = field(default_factory=LocalExecutor)
    approvers: frozenset[str] | None = None  # the project file's approvers: only theirs count (None: anyone)


@dataclass
class Reconciliation:
    report: Report
    plan: Plan | None = None  # None: the specs are invalid, nothing was planned
    executed: list[Executed] = field(default_factory=list)
    after: Plan | None = None  # where every resource stands after executing (their statuses)

    @property
    def stalled(self) -> dict[str, str]:
        """Stalled resources and why, after applying (or as planned)."""
        final = self.after or self.plan
        return {ref: f"{n.reason}: {n.message}" for ref, n in (final.stalled() if final else {}).items()}


class NothingToReconcile(Exception):
    pass


def _policy_view(outcome: PolicyOutcome | None) -> tuple[dict[str, str], dict[str, list[dict[str, str]]]]:
    """Denied resources (with why), and every resource's policy findings. An engine
    failure on a resource is a denial too: modelplane fails closed."""
    denied: dict[str, list[str]] = {}
    decisions: dict[str, list[dict[str, str]]] = {}
    for f in outcome.findings if outcome else []:
        if not f.resource:
            continue
        result = "waived" if f.waived_by else ("deny" if f.severity == Severity.ERROR else "warn")
        decisions.setdefault(f.resource, []).append({"rule": f.rule, "result": result})
        if result == "deny":
            denied.setdefault(f.resource, []).append(f"{f.rule}: {f.message}")
    return {k: "; ".join(v) for k, v in denied.items()}, decisions


@dataclass
class _Prepared:
    report: Report
    result: LoadResult
    revision: str | None
    denied: dict[str, str]
    decisions: dict[str, list[dict[str, str]]]

    @property
    def valid(self) -> bool:
        return not any(f.severity == Severity.ERROR for f in self.result.findings)


def _prepare(source: Source, revision: str | None, store: Store, settings: Settings, keep: Keep) -> _Prepared:
    exported = source.anchor()
    if exported:  # never work on a state that lost what the repo's audit anchor proves it held
        store.audit.check_anchor(Head.parse(exported))
    context = dataclasses.replace(source.context(revision), approvals=store.approvals.by_model())
    result = source.load(revision, settings.paths, keep=keep)
    if not result.files:
        raise NothingToReconcile(f"nothing to reconcile: no resources under {', '.join(settings.paths)}")
    files = source.policy_files(revision, settings.policy.sources) if settings.policy else None
    report, outcome = judge(result, settings.policy, context, files)
    denied, decisions = _policy_view(outcome)
    return _Prepared(report, result, context.revision, denied, decisions)


def _desired(
    prepared: _Prepared, root: Path, store: Store, revision: str | None, approvers: frozenset[str] | None
) -> Desired:
    """The desired state; data files of the work tree are hashed through the state's cache
    (a revision's files are exported afresh each time: nothing to remember)."""
    digests = store.cache if revision is None else None
    desired = desired_state(
        prepared.result.resources, root, prepared.revision, prepared.denied, digests, approvers=approvers
    )
    store.cache.flush()
    return desired


def _context(prepared: _Prepared, root: Path, store: Store, settings: Settings, desired: Desired) -> StepContext:
    resources = [r.resource for r in prepared.result.resources]
    return StepContext(
        store=store,
        root=root,
        revision=prepared.revision,
        datasets={r.name: r for r in resources if isinstance(r, Dataset)},
        models={r.name: r for r in resources if isinstance(r, Model)},
        events=settings.events,
        approvers=settings.approvers,
        services={r.name: r for r in resources if isinstance(r, InferenceService)},
        access_data={name: s.access_data for name, s in desired.services.items()},
    )


def reconcile_revision(
    source: Source, revision: str | None, store: Store, settings: Settings | None = None
) -> Reconciliation:
    """Plan (and with ``settings.apply``, execute) the platform repo at ``revision``
    (the work tree when None) against ``store``."""
    settings = settings or Settings()
    # A plan needs each resource's data (policies) and its digests (read once from its model):
    # it keeps the data only, a fifth of the memory; executing steps needs the models.
    prepared = _prepare(source, revision, store, settings, "resources" if settings.apply else "data")
    if not prepared.valid:  # invalid specs: nothing is planned
        return Reconciliation(prepared.report)
    with source.tree(revision) as root:
        desired = _desired(prepared, root, store, revision, settings.approvers)
        if not settings.apply:
            return Reconciliation(prepared.report, plan(desired, observed_state(store), retry=settings.retry))
        with lock.exclusive(store.state_dir, wait=settings.wait):
            current = plan(desired, observed_state(store), retry=settings.retry)  # again, under the lock
            executed: list[Executed] = []
            try:
                _audit_inputs(store, prepared, current)
                context = _context(prepared, root, store, settings, desired)
                executed = settings.executor.execute(current, context)
                executed += _follow_up(store, prepared, desired, settings, context, executed)
            finally:
                after = update_statuses(store, desired)
    return Reconciliation(prepared.report, current, executed, after)


MAX_ROUNDS = 5


def _follow_up(
    store: Store,
    prepared: _Prepared,
    desired: Desired,
    settings: Settings,
    context: StepContext,
    executed: list[Executed],
) -> list[Executed]:
    """What became possible through what was just done (a version promoted to Production is
    deployed by the service that serves Production), planned again and executed, for a few
    rounds. An action tried once in this apply is not tried again in it."""
    tried = {e.action.key for e in executed}
    more: list[Executed] = []
    for _ in range(MAX_ROUNDS):
        if not any(e.outcome is not None and e.outcome.kind == OutcomeKind.SUCCEEDED for e in executed):
            break
        again = plan(desired, observed_state(store), retry=settings.retry)
        fresh = [a for a in again.actions if a.key not in tried]
        if not fresh:
            break
        follow = Plan(again.revision, fresh, again.notes)
        _audit_inputs(store, prepared, follow)
        executed = settings.executor.execute(follow, context)
        tried |= {e.action.key for e in executed}
        more += executed
    return more


def run_step(
    source: Source, action: Action, store: Store, settings: Settings | None = None
) -> tuple[Executed | None, str]:
    """Run exactly one action, as planned at ``action.revision``: what ``modelplane step`` does.

    Refused (``None`` and why) unless the action is in the plan of that revision
    now, with the same inputs, and the actions it depends on have succeeded; an
    action already done answers its recorded outcome without running again."""
    settings = settings or Settings()
    prepared = _prepare(source, action.revision, store, settings, "resources")
    if not prepared.valid:
        return None, "the specs at this revision are invalid: run 'modelplane validate'"
    with source.tree(action.revision) as root:
        desired = _desired(prepared, root, store, action.revision, settings.approvers)
        with lock.exclusive(store.state_dir, wait=True):
            done = store.effects.get(action.key)
            if done is not None and done.outcome == OutcomeKind.SUCCEEDED:
                return Executed(action, Succeeded(f"already done: {done.message}")), ""
            current = {a.key: a for a in plan(desired, observed_state(store), retry=settings.retry).actions}
            planned = current.get(action.key)
            if planned is None or (planned.kind, planned.resource, planned.inputs) != (
                action.kind,
                action.resource,
                action.inputs,
            ):
                return None, f"{action.key} is not in the plan of {prepared.revision or 'the work tree'} now"
            waiting = [key for key in planned.after if key in current]
            if waiting:
                return None, f"run {', '.join(waiting)} first"
            try:
                _audit_inputs(store, prepared, Plan(prepared.revision, [planned]))
                executed = run_action(planned, _context(prepared, root, store, settings, desired))
            finally:
                update_statuses(store, desired)
    return executed, ""


def _audit_inputs(store: Store, prepared: _Prepared, current: Plan) -> None:
    """What was validated and decided, once per revision and outcome, before any effect."""
    report, revision = prepared.report, prepared.revision
    summary = {
        "files": len(report.files),
        "resources": report.resources,
        "errors": len(report.errors),
        "warnings": len(report.warnings),
        "waived": len(report.waived),
    }
    with store.transaction():
        if current.actions:
            store.audit.append(
                "validate",
                "revision",
                {**summary, "key": digest("validate", summary, revision)},
                revision=revision,
                once=True,
            )
        for ref in sorted({a.resource for a in current.actions}):
            decisions = prepared.decisions.get(ref, [])
            store.audit.append(
                "policy",
                ref,
                {"decisions": decisions, "key": digest("policy", ref, decisions, revision)},
                revision=revision,
                once=True,
            )
        for ref, note in sorted(current.notes.items()):
            if note.reason == Reason.DATA_UNAVAILABLE:  # unreadable data never reaches a step: record it here
                store.audit.append(
                    "data-unavailable",
                    ref,
                    {"error": note.message, "key": digest(ref, note.message)},
                    revision=revision,
                    once=True,
                )


def update_statuses(store: Store, desired: Desired) -> Plan:
    """Conditions per resource, from where a fresh plan says it stands; returns that plan."""
    after = plan(desired, observed_state(store))
    pending: dict[str, Action] = {}
    for action in after.actions:
        pending.setdefault(action.resource, action)
    with store.transaction():
        for ref in sorted(set(after.notes) | set(pending)):
            previous = store.statuses.get(ref) or ResourceStatus()
            if ref in pending:
                ctype, value, reason, message = (
                    ConditionType.RECONCILING,
                    True,
                    Reason.PROGRESSING,
                    pending[ref].describe(),
                )
            else:
                note = after.notes[ref]
                ctype, value, reason, message = note.condition, note.status, note.reason, note.message
            ready = ctype == ConditionType.READY and value
            store.statuses.set(
                ref,
                ResourceStatus(
                    conditions=_conditions(ctype, value, reason, message, previous),
                    observedRevision=desired.revision,
                    lastAppliedRevision=desired.revision if ready else previous.lastAppliedRevision,
                ),
            )
    return after


def _conditions(
    ctype: ConditionType, value: bool, reason: Reason, message: str, previous: ResourceStatus
) -> list[Condition]:
    values = {
        ConditionType.READY: value if ctype == ConditionType.READY else False,
        ConditionType.RECONCILING: ctype == ConditionType.RECONCILING,
        ConditionType.STALLED: ctype == ConditionType.STALLED,
    }
    out = []
    for kind, holds in values.items():
        status = ConditionStatus.TRUE if holds else ConditionStatus.FALSE
        old = previous.condition(kind)
        unchanged = old is not None and old.status == status and old.reason == reason
        out.append(
            Condition(
                type=kind,
                status=status,
                reason=reason,
                message=message,
                lastTransitionTime=old.lastTransitionTime if unchanged and old else datetime.now(UTC),
            )
        )
    return out


def seconds_until_due(store: Store, after: Plan) -> float | None:
    """For ``apply --watch``: how long until the earliest step that is waiting (a canary's
    next look, a retry backing off) is due; None when nothing waits (everything settled)."""
    waiting = {ref for ref, n in after.notes.items() if n.condition == ConditionType.RECONCILING}
    if not waiting:
        return None
    dues = [
        datetime.fromisoformat(e.retry_after)
        for e in store.effects.all().values()
        if e.resource in waiting and e.outcome == OutcomeKind.RETRY and e.retry_after
    ]
    if not dues:
        return 0.0
    return max(0.0, (min(dues) - datetime.now(UTC)).total_seconds())
