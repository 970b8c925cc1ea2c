"""The Dataset planner: one data-gate action per (contract, content) not yet checked."""

from __future__ import annotations

from controller.api.status import ActionKind, ConditionType, Reason
from controller.engine.actions import Action, Note, Plan
from controller.engine.desired import Desired, Observed
from controller.engine.planners.ledger import State, key_state, short


def plan_datasets(desired: Desired, observed: Observed, plan: Plan, *, retry: bool = False) -> None:
    for name, dataset in sorted(desired.datasets.items()):
        ref = f"Dataset/{name}"
        if ref in desired.denied:
            plan.notes[ref] = Note(ConditionType.STALLED, True, Reason.POLICY_DENIED, desired.denied[ref])
            continue
        if dataset.error or dataset.check_key is None or dataset.content_hash is None:
            plan.notes[ref] = Note(ConditionType.STALLED, True, Reason.DATA_UNAVAILABLE, dataset.error or "no data")
            continue
        state = key_state(dataset.check_key, observed, retry=retry)
        if state.state == State.DONE:
            plan.notes[ref] = Note(
                ConditionType.READY, True, Reason.SUCCEEDED, f"contract met for content {short(dataset.content_hash)}…"
            )
        elif state.note is not None:
            plan.notes[ref] = state.note
        else:
            before = observed.last_data_hash.get(name)
            if before is None:
                reason = f"first check of content {short(dataset.content_hash)}…"
            elif before != dataset.content_hash:
                reason = f"dataset content changed {short(before)}…→{short(dataset.content_hash)}…"
            else:
                reason = "data contract changed"
            plan.actions.append(
                Action(
                    ActionKind.DATA_GATE,
                    ref,
                    dataset.check_key,
                    reason,
                    {"dataset": name, "content_hash": dataset.content_hash, "spec_digest": dataset.spec_digest},
                    revision=desired.revision,
                )
            )
