"""How a step ends, typed: ``Succeeded``, ``Stalled`` or ``Retry``.

- :class:`Succeeded`: the effect is done and recorded under the action's key.
- :class:`Stalled`: a decision or a bad input (a failed gate, a policy denial,
  a corrupt artifact, a step that raised: ``ReconcileFailed``). Nothing retries
  it until its inputs change; ``apply --retry`` re-runs the ones that raised.
- :class:`Retry`: transient (the data changed under the plan, a dependency is
  unreachable): planned again after ``after`` seconds, backing off.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.api.status import OutcomeKind, Reason


@dataclass(frozen=True)
class Succeeded:
    message: str
    kind: OutcomeKind = OutcomeKind.SUCCEEDED
    reason: Reason = Reason.SUCCEEDED


@dataclass(frozen=True)
class Stalled:
    reason: Reason
    message: str
    kind: OutcomeKind = OutcomeKind.STALLED


@dataclass(frozen=True)
class Retry:
    reason: Reason
    message: str
    after: float = 0.0
    kind: OutcomeKind = OutcomeKind.RETRY
    doubling: bool = True  # False: due exactly ``after`` seconds from now (a canary's next look), no back-off


Outcome = Succeeded | Stalled | Retry

MAX_BACKOFF_S = 300.0


def backoff(after: float, attempts: int) -> float:
    """Seconds to wait before attempt ``attempts + 1``: doubling from ``after`` (or 1 s), capped."""
    base = after if after > 0 else 1.0
    return float(min(MAX_BACKOFF_S, base * 2 ** max(0, attempts - 1)))
