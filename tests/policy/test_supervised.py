"""The supervisor of forked deciders, as a unit: a stuck decision is stopped, named, and the
rest of its slice still decided, in order; without a limit it just waits."""

from __future__ import annotations

import time
from collections.abc import Sequence

from controller.policy.supervised import Progress, Supervisor

STUCK = 2


def run(part: Sequence[int], progress: Progress) -> list[str]:
    out = []
    for i in part:
        progress(i)
        if i == STUCK:
            time.sleep(60)  # a runaway decision
        out.append(f"ok {i}")
    return out


def probe(index: int, package: str) -> None:
    if package == "slow":
        time.sleep(60)


def test_a_stuck_decision_is_stopped_and_the_rest_decided_in_order() -> None:
    supervisor = Supervisor(run, lambda i, packages: [f"timeout {i} {packages}"], probe, ["fast", "slow"], 0.3)
    parts = supervisor.decide([range(0, 4), range(4, 6)], workers=2)
    assert [line for part in parts for line in part] == [
        "ok 0",
        "ok 1",
        "timeout 2 ['slow']",
        "ok 3",
        "ok 4",
        "ok 5",
    ]


def test_without_a_limit_it_waits_for_every_decider() -> None:
    supervisor = Supervisor(run, lambda i, packages: ["never"], probe, ["fast"], float("inf"))
    parts = supervisor.decide([range(3, 6), range(0, 2)], workers=2)
    assert parts == [["ok 0", "ok 1"], ["ok 3", "ok 4", "ok 5"]]
