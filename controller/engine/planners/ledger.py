"""What the effects ledger says of one idempotency key, for the planners."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from controller.api.status import ConditionType, OutcomeKind, Reason
from controller.engine.actions import Note
from controller.engine.desired import Observed


class State(Enum):
    TODO = "todo"  # never done, or due again: plan it
    DONE = "done"  # succeeded
    BLOCKED = "blocked"  # stalled: not again until the inputs (and so the key) change, or --retry
    WAITING = "waiting"  # a transient failure, backing off


@dataclass(frozen=True)
class KeyState:
    state: State
    note: Note | None = None  # for BLOCKED and WAITING: the resource's status


# Stalls that ``--retry`` re-runs: not decisions on the inputs, but failures of the
# machinery that can be mended (a step that raised; an artifact restored from backup).
RETRYABLE = frozenset(
    {Reason.RECONCILE_FAILED, Reason.ARTIFACT_CORRUPT, Reason.ARTIFACT_MISSING, Reason.SERVING_FAILED}
)


def key_state(key: str, observed: Observed, *, retry: bool) -> KeyState:
    effect = observed.effects.get(key)
    if effect is None:
        return KeyState(State.TODO)
    if effect.outcome == OutcomeKind.SUCCEEDED:
        return KeyState(State.DONE)
    if effect.outcome == OutcomeKind.STALLED:
        if retry and effect.reason in RETRYABLE:
            return KeyState(State.TODO)
        return KeyState(State.BLOCKED, Note(ConditionType.STALLED, True, effect.reason, effect.message))
    if retry or not effect.retry_after or effect.retry_after <= observed.now:
        return KeyState(State.TODO)
    message = f"{effect.message}; retrying after {effect.retry_after[:19]} (attempt {effect.attempts})"
    return KeyState(State.WAITING, Note(ConditionType.RECONCILING, True, Reason.RETRYING, message))


def short(digest: str | None) -> str:
    return (digest or "none").removeprefix("sha256:")[:8]
