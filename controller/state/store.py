"""The state store: one database, its areas, the artifact store and the cards directory.

Opened by the CLI and the server, and handed to the engine. Every area writes
through the one :class:`~controller.state.db.Database` (a connection per
thread, nested transactions), so a step can make its effect, the effect's audit
record and its ledger entry one transaction: ``with store.transaction(): ...``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from controller.state.anchor import StateLost
from controller.state.approvals import Approvals
from controller.state.artifacts import ArtifactError, ArtifactStore
from controller.state.audit import HEAD_FILE, AuditTrail
from controller.state.cache import Cache
from controller.state.checks import Checks
from controller.state.db import DB_FILE, Database
from controller.state.deployments import Deployments
from controller.state.effects import Ledger
from controller.state.policy_writes import PolicyWrites
from controller.state.queue import WorkQueue
from controller.state.records import ModelVersion
from controller.state.registry import Registry
from controller.state.runs import Runs
from controller.state.statuses import Statuses

DEFAULT_STATE_DIR = Path(".modelplane")


class Store:
    def __init__(self, state_dir: Path = DEFAULT_STATE_DIR, *, adopt_key: bool = False) -> None:
        self.state_dir = state_dir
        if (state_dir / HEAD_FILE).exists() and not (state_dir / DB_FILE).exists():
            raise StateLost(
                f"the state database {state_dir / DB_FILE} is gone but {state_dir / HEAD_FILE} shows it held "
                "audit records: restore it from a backup; do not start afresh"
            )
        self.db = Database(state_dir)
        try:
            self.audit = AuditTrail(self.db, state_dir, adopt_key=adopt_key)
        except BaseException:
            self.db.close()
            raise
        self.checks = Checks(self.db, self.audit)
        self.runs = Runs(self.db, self.audit)
        self.registry = Registry(self.db, self.audit)
        self.approvals = Approvals(self.db, self.audit)
        self.statuses = Statuses(self.db)
        self.effects = Ledger(self.db, self.audit)
        self.deployments = Deployments(self.db, self.audit)
        self.queue = WorkQueue(self.db, self.audit)
        self.artifacts = ArtifactStore(state_dir / "artifacts")
        self.cards_dir = state_dir / "cards"
        self.cache = Cache(state_dir)
        self.policy_writes = PolicyWrites(self.db, self.audit, self.artifacts)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction around several areas' writes (they join it)."""
        with self.db.transaction():
            yield

    def verify_artifacts(self, model: str | None = None) -> list[tuple[ModelVersion, str | None]]:
        """Every registered version with the problem of its artifact (None when it verifies)."""
        out: list[tuple[ModelVersion, str | None]] = []
        for version in self.registry.versions(model):
            try:
                self.artifacts.verify(version.artifact_digest)
                out.append((version, None))
            except ArtifactError as exc:
                out.append((version, str(exc)))
        return out

    def check(self) -> list[tuple[str, str | None]]:
        """What ``modelplane state check`` reports: (check, problem or None) for the database's
        integrity, the audit chain and every artifact."""
        try:
            rows = [r[0] for r in self.db.execute("PRAGMA integrity_check").fetchall()]
        except sqlite3.DatabaseError as exc:  # too damaged to check: nothing else can be read either
            return [("database integrity", f"{exc}: restore the state directory from a backup")]
        checks: list[tuple[str, str | None]] = [("database integrity", None if rows == ["ok"] else "; ".join(rows))]
        if rows != ["ok"]:
            return checks
        verification = self.audit.verify()
        checks.append((f"audit chain ({verification.checked} records)", verification.problem))
        for version, problem in self.verify_artifacts():
            checks.append((f"artifact of {version.model} v{version.version}", problem))
        return checks

    def close(self) -> None:
        self.cache.close()
        self.db.close()


def open_anchored(state_dir: Path, exported: str | None) -> Store:
    """The store, checked against ``exported``, the repo's last audit anchor (None when
    there is none): a state whose database is gone, or that does not hold the chain the
    anchor proves, raises :class:`StateLost`, and no database is created for it."""
    from controller.state.anchor import Head

    if exported:
        require_database(state_dir, exported)
    store = Store(state_dir)
    if exported:
        try:
            store.audit.check_anchor(Head.parse(exported))
        except BaseException:
            store.close()
            raise
    return store


def require_database(state_dir: Path, exported: str | None) -> bool:
    """Whether the state's database exists; raises :class:`StateLost` when it does not
    but ``exported``, the repo's last audit anchor, proves it held records."""
    if (state_dir / DB_FILE).exists():
        return True
    if exported:
        from controller.state.anchor import Head

        raise StateLost(
            f"{state_dir / DB_FILE} does not exist, but the repo's audit anchor proves the state held record "
            f"{Head.parse(exported).seq}: restore the state directory from a backup; do not start afresh"
        )
    return False
