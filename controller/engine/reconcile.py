"""The reconcile loop on one machine: load -> validate -> policy -> plan -> apply -> status.

Called by the CLI's ``plan`` and ``apply`` (and later by the webhook-driven
controller). Validation errors stop everything; a policy denial stalls the
denied resource (and what depends on it) with ``PolicyDenied``; everything
else goes through the planner and the local executor under the apply lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from controller.api import Dataset, Model
from controller.api.findings import Report, Severity
from controller.api.status import Condition, ConditionStatus, ConditionType, Reason, ResourceStatus
from controller.engine import apply as executor
from controller.engine.checks import PolicySettings, judge
from controller.engine.desired import desired_state, digest, observed_state
from controller.engine.plan import Plan, plan
from controller.loading import LoadResult
from controller.policy.evaluate import Context as PolicyContext
from controller.policy.evaluate import PolicyOutcome
from controller.state import lock
from controller.state.store import Store


@dataclass
class Reconciliation:
    report: Report
    plan: Plan | None = None
    executed: list[executor.Executed] = field(default_factory=list)


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


def reconcile(
    result: LoadResult,
    *,
    root: Path,
    store: Store,
    policy: PolicySettings | None,
    context: PolicyContext,
    do_apply: bool,
    wait: bool = False,
    progress: executor.Progress = lambda _msg: None,
) -> Reconciliation:
    report, outcome = judge(result, policy, context)
    if any(f.severity == Severity.ERROR for f in result.findings):  # invalid specs: nothing is planned
        return Reconciliation(report)
    denied, decisions = _policy_view(outcome)
    desired = desired_state(result.resources, root, context.revision, denied)
    if not do_apply:
        return Reconciliation(report, plan(desired, observed_state(store)))

    with lock.exclusive(store.state_dir, wait=wait):
        current = plan(desired, observed_state(store))  # plan again under the lock: state may have moved
        ctx = executor.Context(
            store=store,
            root=root,
            revision=context.revision,
            datasets={r.resource.name: r.resource for r in result.resources if isinstance(r.resource, Dataset)},
            models={r.resource.name: r.resource for r in result.resources if isinstance(r.resource, Model)},
            policy=decisions,
            progress=progress,
        )
        if current.actions:  # what was validated, once per revision and outcome
            summary = {
                "files": len(report.files),
                "resources": report.resources,
                "errors": len(report.errors),
                "warnings": len(report.warnings),
                "waived": len(report.waived),
            }
            store.audit(
                "validate",
                "revision",
                {**summary, "key": digest("validate", summary, context.revision)},
                revision=context.revision,
                once=True,
            )
        for ref in sorted({a.resource for a in current.actions}):
            store.audit(
                "policy",
                ref,
                {
                    "decisions": decisions.get(ref, []),
                    "key": digest("policy", ref, decisions.get(ref, []), context.revision),
                },
                revision=context.revision,
                once=True,
            )
        for ref, note in sorted(current.notes.items()):
            if note.reason == "DataUnavailable":  # unreadable data never reaches a step: record it here
                store.audit(
                    "data-unavailable",
                    ref,
                    {"error": note.message, "key": digest(ref, note.message)},
                    revision=context.revision,
                    once=True,
                )
        executed = executor.execute(current, ctx)
        update_statuses(store, plan(desired, observed_state(store)), context.revision)
    return Reconciliation(report, current, executed)


def update_statuses(store: Store, after: Plan, revision: str | None) -> None:
    """Conditions per resource, from where the plan says it stands (typed by ``controller.api.status``)."""
    pending = {a.resource: a for a in after.actions}
    for ref in sorted(set(after.notes) | set(pending)):
        kind, name = ref.split("/", 1)
        previous = ResourceStatus.model_validate(store.status(kind, name) or {})
        if ref in pending:
            condition, value, reason, message = "Reconciling", True, "Progressing", pending[ref].describe()
        else:
            note = after.notes[ref]
            condition, value, reason, message = note.condition, note.status, note.reason, note.message
        ready = condition == "Ready" and value
        status = ResourceStatus(
            conditions=_conditions(condition, value, Reason(reason), message, previous),
            observedRevision=revision,
            lastAppliedRevision=revision if ready else previous.lastAppliedRevision,
        )
        store.set_status(kind, name, status.model_dump(mode="json"))


def _conditions(kind: str, value: bool, reason: Reason, message: str, previous: ResourceStatus) -> list[Condition]:
    values = {
        ConditionType.READY: value if kind == "Ready" else False,
        ConditionType.RECONCILING: kind == "Reconciling",
        ConditionType.STALLED: kind == "Stalled",
    }
    out = []
    for ctype, holds in values.items():
        status = ConditionStatus.TRUE if holds else ConditionStatus.FALSE
        old = previous.condition(ctype)
        unchanged = old is not None and old.status == status and old.reason == reason
        out.append(
            Condition(
                type=ctype,
                status=status,
                reason=reason,
                message=message,
                lastTransitionTime=old.lastTransitionTime if unchanged and old else datetime.now(UTC),
            )
        )
    return out
