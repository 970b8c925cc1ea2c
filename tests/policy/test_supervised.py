"""The supervisor of forked deciders, as a unit: a stuck decision is stopped, named, and the
rest of its slice still decided, in order; a decider that dies (its memory limit) is not
replaced by deciding in this process; after a few stops the rest are not decided; without a
limit it just waits."""

from __future__ import annotations

import time
from collections.abc import Sequence

from controller.policy.supervised import Progress, Supervisor

STUCK = 2
HOARDER = 4


def run(part: Sequence[int], progress: Progress) -> list[str]:
    out = []
    for i in part:
        progress(i)
        if i == STUCK:
            time.sleep(60)  # a runaway decision
        if i == HOARDER:
            hoard = [bytearray(1 << 20) for _ in range(1 << 16)]  # 64 GiB, far over the limit
            out.append(str(len(hoard)))
        out.append(f"ok {i}")
    return out


def probe(index: int, package: str) -> None:
    if package == "slow":
        time.sleep(60)
    if package == "greedy" and index == HOARDER:
        [bytearray(1 << 20) for _ in range(1 << 16)]


def stopped(i: int, packages: list[str], why: str) -> list[str]:
    return [f"{why} {i} {packages}"]


def test_a_stuck_decision_is_stopped_and_the_rest_decided_in_order() -> None:
    supervisor = Supervisor(run, stopped, probe, ["fast", "slow"], 0.3)
    parts = supervisor.decide([range(0, 4), range(5, 7)], workers=2)
    assert [line for part in parts for line in part] == ["ok 0", "ok 1", "time 2 ['slow']", "ok 3", "ok 5", "ok 6"]


def test_a_decision_over_its_memory_limit_dies_in_its_process_and_is_denied() -> None:
    supervisor = Supervisor(run, stopped, probe, ["fast", "greedy"], 30.0, memory_mb=256)
    started = time.monotonic()
    parts = supervisor.decide([range(3, 6)], workers=1)
    assert [line for part in parts for line in part] == ["ok 3", "memory 4 ['greedy']", "ok 5"]
    assert time.monotonic() - started < 20  # it died at the limit, it did not run to the clock


def test_after_a_few_stops_the_rest_are_not_decided() -> None:
    def always_stuck(part: Sequence[int], progress: Progress) -> list[str]:
        for i in part:
            progress(i)
            time.sleep(60)
        return []

    supervisor = Supervisor(
        always_stuck,
        stopped,
        probe,
        ["fast"],
        0.2,
        max_stopped=2,
        not_decided=lambda i, stops: [f"undecided {i} after {stops}"],
    )
    started = time.monotonic()
    parts = supervisor.decide([range(0, 10)], workers=1)
    lines = [line for part in parts for line in part]
    assert lines[:2] == ["time 0 ['fast']", "time 1 ['fast']"]
    assert lines[2:] == [f"undecided {i} after 2" for i in range(2, 10)]
    assert time.monotonic() - started < 5  # two stops, not ten


def test_without_a_limit_it_waits_for_every_decider() -> None:
    supervisor = Supervisor(run, stopped, probe, ["fast"], float("inf"))
    parts = supervisor.decide([range(5, 8), range(0, 2)], workers=2)
    assert parts == [["ok 0", "ok 1"], ["ok 5", "ok 6", "ok 7"]]
