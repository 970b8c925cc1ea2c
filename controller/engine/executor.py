"""Executors: run a plan's actions. The local executor runs the step functions in-process.

An :class:`Executor` takes a plan and a step context and returns what became of
each action. :func:`run_action` is the unit both the local executor and
``modelplane step`` use: it emits the step's events, catches an unexpected
exception (recorded as ``ReconcileFailed``, with the error, in the ledger and
the audit log) and records ``Retry`` outcomes with their back-off. An action
whose dependency did not succeed is skipped; independent work goes on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from controller.api.status import OutcomeKind, Reason
from controller.engine.actions import Action, Plan
from controller.engine.events import Phase, StepEvent
from controller.engine.outcomes import Outcome, Retry, Stalled, backoff
from controller.engine.steps import STEPS, StepContext

log = logging.getLogger("modelplane.engine.executor")


@dataclass(frozen=True)
class Executed:
    action: Action
    outcome: Outcome | None  # None: skipped because an action it depends on did not succeed
    duration_s: float = 0.0


class Executor(Protocol):
    def execute(self, plan: Plan, ctx: StepContext) -> list[Executed]: ...


def run_action(action: Action, ctx: StepContext) -> Executed:
    event = StepEvent(Phase.STARTED, str(action.kind), action.resource, action.key, ctx.revision, action.describe())
    ctx.events.emit(event)
    start = time.perf_counter()
    try:
        outcome = STEPS[action.kind](action, ctx)
    except Exception as exc:  # any step error: recorded, and the rest of the plan goes on
        log.debug("step %s raised", action.key, exc_info=True)
        error = f"{type(exc).__name__}: {exc}"
        ctx.store.effects.record_failure(action.key, action.kind, action.resource, error, revision=ctx.revision)
        outcome = Stalled(Reason.RECONCILE_FAILED, error)
    if isinstance(outcome, Retry):
        previous = ctx.store.effects.get(action.key)
        attempts = (previous.attempts if previous and previous.outcome == OutcomeKind.RETRY else 0) + 1
        wait = backoff(outcome.after, attempts) if outcome.doubling else outcome.after
        due = datetime.now(UTC) + timedelta(seconds=wait)
        ctx.store.effects.record(
            action.key,
            action.kind,
            action.resource,
            outcome.kind,
            outcome.reason,
            outcome.message,
            revision=ctx.revision,
            retry_after=due.isoformat(timespec="milliseconds"),
        )
    duration = time.perf_counter() - start
    ctx.events.emit(
        StepEvent(
            Phase.FINISHED,
            str(action.kind),
            action.resource,
            action.key,
            ctx.revision,
            action.describe(),
            message=outcome.message,
            outcome=str(outcome.kind),
            reason=str(outcome.reason),
            duration_s=round(duration, 3),
        )
    )
    return Executed(action, outcome, duration)


class LocalExecutor:
    """Runs the actions in plan order, in this process."""

    def execute(self, plan: Plan, ctx: StepContext) -> list[Executed]:
        done: list[Executed] = []
        failed: set[str] = set()
        for action in plan.actions:
            if any(key in failed for key in action.after):
                failed.add(action.key)
                done.append(Executed(action, None))
                ctx.events.emit(
                    StepEvent(
                        Phase.SKIPPED, str(action.kind), action.resource, action.key, ctx.revision, action.describe()
                    )
                )
                continue
            executed = run_action(action, ctx)
            if executed.outcome is None or executed.outcome.kind != OutcomeKind.SUCCEEDED:
                failed.add(action.key)
            done.append(executed)
        return done


def summary(executed: list[Executed]) -> dict[str, int]:
    kinds = [e.outcome.kind if e.outcome else None for e in executed]
    return {
        "succeeded": kinds.count(OutcomeKind.SUCCEEDED),
        "stalled": kinds.count(OutcomeKind.STALLED),
        "retry": kinds.count(OutcomeKind.RETRY),
        "skipped": kinds.count(None),
    }
