"""The work queue as a unit: a delivery recorded once, a branch's waiting commit
superseded by a newer one, and items held by a lease that a crashed worker loses."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.state.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / ".modelplane")
    try:
        yield opened
    finally:
        opened.close()


def receive(store: Store, delivery: str, sha: str, branch: str = "main", enqueue: bool = True) -> str:
    return store.queue.receive(
        "github", delivery, "push", repository="org/platform", branch=branch, sha=sha, enqueue=enqueue, reason="r"
    ).outcome


def test_a_delivery_is_recorded_once(store: Store) -> None:
    assert receive(store, "d-1", "a" * 40) == "queued"
    assert receive(store, "d-1", "a" * 40) == "duplicate"
    assert receive(store, "d-2", "b" * 40, enqueue=False) == "ignored"
    assert len(store.queue.items()) == 1 and len(store.queue.deliveries()) == 2


def test_only_the_newest_waiting_commit_of_a_branch_is_kept(store: Store) -> None:
    receive(store, "d-1", "a" * 40)
    receive(store, "d-2", "b" * 40, branch="other")
    receive(store, "d-3", "c" * 40)
    states = {(i.branch, i.sha[0], i.state) for i in store.queue.items()}
    assert states == {("main", "a", "superseded"), ("other", "b", "pending"), ("main", "c", "pending")}
    assert len(store.audit.records(events=["queue-superseded"])) == 1


def test_a_lease_that_runs_out_is_taken_again_and_its_first_holder_cannot_finish(store: Store) -> None:
    receive(store, "d-1", "a" * 40)
    first = store.queue.lease("worker-1", 0.05)
    assert first is not None and (first.state, first.attempts, first.lease_owner) == ("leased", 1, "worker-1")
    assert store.queue.lease("worker-2", 10) is None  # held
    time.sleep(0.1)  # worker-1 crashed: its lease runs out
    second = store.queue.lease("worker-2", 10)
    assert second is not None and (second.id, second.attempts, second.lease_owner) == (first.id, 2, "worker-2")
    assert not store.queue.finish(first.id, "worker-1", ok=True, detail="late")
    assert store.queue.finish(second.id, "worker-2", ok=True, detail="reconciled")
    assert store.queue.items()[0].state == "done" and store.queue.lease("worker-3", 10) is None


def test_a_worker_keeps_its_lease_by_renewing_it_and_only_its_holder_can(store: Store) -> None:
    receive(store, "d-1", "a" * 40)
    item = store.queue.lease("worker-1", 0.2)
    assert item is not None
    assert not store.queue.renew(item.id, "worker-2", 10)
    assert store.queue.renew(item.id, "worker-1", 10)
    time.sleep(0.3)  # past the first lease: the renewal holds it
    assert store.queue.lease("worker-2", 10) is None
