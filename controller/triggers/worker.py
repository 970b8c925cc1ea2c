"""The worker: takes queued commits one at a time, with a lease, and reconciles each.

Run by ``modelplane controller`` on a thread of its own (:func:`start`), beside the
webhook routes that fill the queue (:mod:`controller.server.webhooks`). For each item it
makes sure the commit is in the local repository (``git fetch`` of the repository's
remotes when it is not), reconciles it with :func:`~controller.engine.reconcile.reconcile_revision`
(the same call as ``modelplane apply REVISION``, under the same apply lock), and closes
the item: ``done``, or ``failed`` with the reason. The lease is renewed while the
reconcile runs; a worker that dies loses it, and the item is taken again (a reconcile is
idempotent: the effects ledger keeps it from doing anything twice).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

from controller.engine.reconcile import NothingToReconcile, Settings, reconcile_revision
from controller.state.queue import QueueItem
from controller.state.store import Store
from controller.triggers.git_source import GitError, GitSource

log = logging.getLogger(__name__)

LEASE_S = 60.0
IDLE_S = 1.0  # how often an idle worker looks at the queue


class Worker:
    def __init__(
        self, store: Store, source: GitSource, settings: Callable[[], Settings], lease: float = LEASE_S
    ) -> None:
        self.store = store
        self.source = source
        self.settings = settings
        self.lease = lease
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"

    def run_once(self) -> QueueItem | None:
        """Take one item and reconcile it; the item, or None when the queue had none."""
        item = self.store.queue.lease(self.owner, self.lease)
        if item is None:
            return None
        stop = threading.Event()
        keeper = threading.Thread(target=self._keep, args=(item.id, stop), name="lease-keeper", daemon=True)
        keeper.start()
        try:
            ok, detail = self._reconcile(item)
        finally:
            stop.set()
            keeper.join()
        if not self.store.queue.finish(item.id, self.owner, ok=ok, detail=detail):
            log.warning("queue item %s: the lease was lost before it finished (%s)", item.id, detail)
        return item

    def _keep(self, item: int, stop: threading.Event) -> None:
        while not stop.wait(self.lease / 3):
            if not self.store.queue.renew(item, self.owner, self.lease):
                return

    def _reconcile(self, item: QueueItem) -> tuple[bool, str]:
        repo = self.source.repo
        try:
            try:
                repo.commit(item.sha)
            except GitError:
                repo.fetch()
                repo.commit(item.sha)
        except GitError as exc:
            return False, f"commit {item.sha} is not in the repository: {exc}"
        try:
            result = reconcile_revision(self.source, item.sha, self.store, self.settings())
        except NothingToReconcile as exc:
            return True, f"nothing to reconcile: {exc}"
        except Exception as exc:  # the item fails with the reason; the worker goes on
            log.exception("queue item %s failed", item.id)
            return False, f"{type(exc).__name__}: {exc}"
        if result.plan is None:
            return False, "the specs at this commit are not valid (see 'modelplane validate')"
        stalled = result.stalled
        executed = len(result.executed)
        if stalled:
            return True, f"{executed} step(s) run; stalled: " + "; ".join(f"{r}: {why}" for r, why in stalled.items())
        return True, f"{executed} step(s) run"


def start(worker: Worker, stop: threading.Event) -> threading.Thread:
    """Run ``worker`` on a thread until ``stop`` is set (between items)."""

    def loop() -> None:
        while not stop.is_set():
            try:
                if worker.run_once() is not None:
                    continue
            except Exception:  # the queue itself failed (the state): said, and tried again; the loop never dies
                log.exception("the worker could not take or close a queue item")
            stop.wait(IDLE_S)

    thread = threading.Thread(target=loop, name="queue-worker", daemon=True)
    thread.start()
    return thread
