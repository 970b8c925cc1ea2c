"""Step events, and who listens: the progress printer, logging, later metrics and traces.

The executor emits ``started`` and ``finished`` for each action (with its
outcome and duration) and steps emit ``progress`` lines (search trials, the data
contract); subscribers are plain callables. Audit records are not written from
here: each is part of its effect's transaction (``controller.state``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

log = logging.getLogger("modelplane.engine")


class Phase(StrEnum):
    STARTED = "started"
    PROGRESS = "progress"
    FINISHED = "finished"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class StepEvent:
    phase: Phase
    action: str  # ActionKind
    resource: str
    key: str
    revision: str | None
    description: str = ""
    message: str = ""
    outcome: str | None = None  # OutcomeKind, when finished
    reason: str | None = None
    duration_s: float | None = None

    def fields(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "")}


Subscriber = Callable[[StepEvent], None]


@dataclass
class Events:
    subscribers: list[Subscriber] = field(default_factory=list)

    def subscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.append(subscriber)

    def emit(self, event: StepEvent) -> None:
        for subscriber in self.subscribers:
            subscriber(event)


def log_event(event: StepEvent) -> None:
    """Standard logging, structured: the event's fields ride in ``extra['event']``."""
    level = logging.INFO
    if event.phase == Phase.FINISHED and event.outcome != "Succeeded":
        level = logging.WARNING
    elif event.phase == Phase.PROGRESS:
        level = logging.DEBUG
    text = event.message or event.description
    log.log(level, "%s %s %s: %s", event.phase, event.action, event.resource, text, extra={"event": event.fields()})


def progress_printer(write: Callable[[str], None]) -> Subscriber:
    """The human progress lines of ``modelplane apply``."""

    def printer(event: StepEvent) -> None:
        if event.phase == Phase.STARTED:
            write(f"> {event.description}")
        elif event.phase == Phase.PROGRESS:
            write(f"  {event.message}")
        elif event.phase == Phase.SKIPPED:
            write(f"- {event.description} (skipped: an earlier step did not succeed)")
        else:
            label = {"Succeeded": "ok", "Stalled": "STALLED", "Retry": "RETRY"}.get(event.outcome or "", "?")
            reason = "" if event.outcome == "Succeeded" else f" [{event.reason}]"
            write(f"  {label}{reason}: {event.message}")

    return printer
