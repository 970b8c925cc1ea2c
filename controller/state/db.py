"""The SQLite database under the state directory, with its migrations.

Used by the store's areas (``controller.state``) only: no SQL lives anywhere
else. WAL journal, so readers never wait for the writer; every write commits
with ``synchronous=FULL`` so that a crash never loses a decision. Safe for a
server: one connection per thread, writers serialised across threads and
processes by ``BEGIN IMMEDIATE`` with a busy timeout (never "database is
locked"), and transactions nest (the outermost commits).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

DB_FILE = "state.db"

# Append-only: a migration is never edited once released; add a new one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE data_checks (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        dataset TEXT NOT NULL,
        dataset_hash TEXT NOT NULL,
        revision TEXT,
        success INTEGER NOT NULL,
        gx_run_id TEXT,
        evidence TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        model TEXT NOT NULL,
        status TEXT NOT NULL,
        revision TEXT,
        dataset TEXT NOT NULL,
        dataset_hash TEXT NOT NULL,
        spec_digest TEXT NOT NULL,
        params TEXT NOT NULL DEFAULT '{}',
        metrics TEXT NOT NULL DEFAULT '{}',
        gates TEXT NOT NULL DEFAULT '[]',
        fairness TEXT NOT NULL DEFAULT '{}',
        trials TEXT NOT NULL DEFAULT '[]',
        environment TEXT NOT NULL DEFAULT '{}',
        artifact_digest TEXT,
        duration_s REAL,
        error TEXT,
        started_at TEXT NOT NULL,
        finished_at TEXT
    );
    CREATE INDEX runs_model ON runs(model, started_at);
    CREATE TABLE model_versions (
        model TEXT NOT NULL,
        version INTEGER NOT NULL,
        run_id TEXT NOT NULL UNIQUE REFERENCES runs(id),
        stage TEXT NOT NULL,
        artifact_digest TEXT NOT NULL,
        revision TEXT,
        created_at TEXT NOT NULL,
        PRIMARY KEY (model, version)
    );
    CREATE TABLE promotions (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        model TEXT NOT NULL,
        version INTEGER NOT NULL,
        from_stage TEXT NOT NULL,
        to_stage TEXT NOT NULL,
        actor TEXT NOT NULL,
        reason TEXT NOT NULL,
        revision TEXT,
        at TEXT NOT NULL
    );
    CREATE TABLE approvals (
        model TEXT NOT NULL,
        version INTEGER NOT NULL,
        approver TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (model, version, approver)
    );
    CREATE TABLE statuses (
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        PRIMARY KEY (kind, name)
    );
    CREATE TABLE cards (
        model TEXT NOT NULL,
        version INTEGER NOT NULL,
        json_path TEXT NOT NULL,
        markdown_path TEXT NOT NULL,
        html_path TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (model, version)
    );
    CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        event TEXT NOT NULL,
        actor TEXT NOT NULL,
        revision TEXT,
        subject TEXT NOT NULL,
        payload TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE
    );
    """,
    """
    CREATE TABLE aliases (
        model TEXT NOT NULL,
        alias TEXT NOT NULL,
        version INTEGER NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (model, alias),
        FOREIGN KEY (model, version) REFERENCES model_versions(model, version)
    );
    """,
    # The effects ledger: one row per idempotency key, written in the transaction of
    # its effect. Backfilled from what older databases recorded, so that an upgraded
    # state plans exactly as before. Cards remember the stage they were written for.
    """
    CREATE TABLE effects (
        key TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        resource TEXT NOT NULL,
        outcome TEXT NOT NULL,
        reason TEXT NOT NULL,
        message TEXT NOT NULL DEFAULT '',
        attempts INTEGER NOT NULL DEFAULT 1,
        retry_after TEXT,
        revision TEXT,
        at TEXT NOT NULL
    );
    ALTER TABLE cards ADD COLUMN stage TEXT NOT NULL DEFAULT '';
    UPDATE cards SET stage = (
        SELECT v.stage FROM model_versions v WHERE v.model = cards.model AND v.version = cards.version
    );
    INSERT INTO effects (key, kind, resource, outcome, reason, message, revision, at)
        SELECT key, 'data-gate', 'Dataset/' || dataset,
               CASE success WHEN 1 THEN 'Succeeded' ELSE 'Stalled' END,
               CASE success WHEN 1 THEN 'Succeeded' ELSE 'DataContractFailed' END,
               coalesce(json_extract(evidence, '$.summary'), ''), revision, at
        FROM data_checks;
    INSERT INTO effects (key, kind, resource, outcome, reason, message, revision, at)
        SELECT key, 'train', 'Model/' || model,
               CASE status WHEN 'failed' THEN 'Stalled' ELSE 'Succeeded' END,
               CASE status WHEN 'failed' THEN 'TrainingFailed' ELSE 'Succeeded' END,
               coalesce(error, ''), revision, coalesce(finished_at, started_at)
        FROM runs WHERE status != 'running';
    INSERT INTO effects (key, kind, resource, outcome, reason, message, revision, at)
        SELECT key || '/gate', 'metric-gate', 'Model/' || model,
               CASE status WHEN 'passed' THEN 'Succeeded' ELSE 'Stalled' END,
               CASE status WHEN 'passed' THEN 'Succeeded' ELSE 'GateFailed' END,
               '', revision, coalesce(finished_at, started_at)
        FROM runs WHERE status IN ('passed', 'gate-failed');
    INSERT INTO effects (key, kind, resource, outcome, reason, revision, at)
        SELECT r.key || '/register', 'register', 'Model/' || v.model, 'Succeeded', 'Succeeded', v.revision, v.created_at
        FROM model_versions v JOIN runs r ON r.id = v.run_id;
    INSERT OR IGNORE INTO effects (key, kind, resource, outcome, reason, revision, at)
        SELECT r.key || '/' || p.to_stage, 'promote', 'Model/' || p.model, 'Succeeded', 'Succeeded', p.revision, p.at
        FROM promotions p JOIN model_versions v ON v.model = p.model AND v.version = p.version
        JOIN runs r ON r.id = v.run_id WHERE p.to_stage IN ('Staging', 'Production');
    INSERT OR IGNORE INTO effects (key, kind, resource, outcome, reason, at)
        SELECT r.key || '/card/' || c.stage, 'model-card', 'Model/' || c.model, 'Succeeded', 'Succeeded', c.at
        FROM cards c JOIN model_versions v ON v.model = c.model AND v.version = c.version
        JOIN runs r ON r.id = v.run_id;
    """,
    # With an audit key, each record carries its own signature (of its seq and hash), so
    # records appended after the signed head by someone without the key are told apart.
    """
    ALTER TABLE audit_log ADD COLUMN mac TEXT;
    """,
    # Served InferenceServices (what each variant serves, where) and the callers of
    # served models (their tokens as SHA-256 digests only, and their groups).
    """
    CREATE TABLE deployments (
        service TEXT PRIMARY KEY,
        target TEXT NOT NULL,
        model TEXT NOT NULL,
        stable_version INTEGER NOT NULL,
        canary_version INTEGER,
        canary_weight REAL NOT NULL DEFAULT 0,
        canary_step INTEGER NOT NULL DEFAULT 0,
        canary_since TEXT,
        shadow_model TEXT,
        shadow_version INTEGER,
        config_digest TEXT NOT NULL,
        url TEXT,
        generation INTEGER NOT NULL DEFAULT 1,
        starts INTEGER NOT NULL DEFAULT 1,
        revision TEXT,
        at TEXT NOT NULL
    );
    CREATE TABLE callers (
        name TEXT PRIMARY KEY,
        token_sha256 TEXT NOT NULL UNIQUE,
        groups TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    """,
    # The configuration each service was served with, callers left out: what a change of
    # callers is served with (never the service directory's config.json, which anyone who
    # can write the directory could have altered).
    """
    ALTER TABLE deployments ADD COLUMN served_config TEXT;
    """,
    # Webhook deliveries (one row per delivery id: a redelivery is a duplicate) and the work
    # queue of revisions to reconcile, with the lease of the worker holding an item.
    """
    CREATE TABLE deliveries (
        source TEXT NOT NULL,
        id TEXT NOT NULL,
        event TEXT NOT NULL,
        repository TEXT,
        branch TEXT,
        sha TEXT,
        digest TEXT NOT NULL,
        outcome TEXT NOT NULL,
        reason TEXT NOT NULL,
        item INTEGER,
        received_at TEXT NOT NULL,
        PRIMARY KEY (source, id)
    );
    CREATE INDEX deliveries_digest ON deliveries (source, digest);
    CREATE TABLE work_queue (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        source TEXT NOT NULL,
        delivery TEXT,
        repository TEXT,
        branch TEXT NOT NULL,
        sha TEXT NOT NULL,
        before TEXT,
        paths TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_until REAL,
        enqueued_at TEXT NOT NULL,
        finished_at TEXT,
        detail TEXT
    );
    CREATE INDEX work_queue_state ON work_queue (state, id);
    """,
]


BUSY_TIMEOUT_S = 30.0


def unreadable(path: Path, exc: Exception) -> str:
    # SQLite may quote a damaged row's bytes: printable characters only, and not many.
    said = "".join(c if c.isprintable() else "?" for c in str(exc))
    said = said if len(said) <= 160 else said[:160] + "…"
    return (
        f"the state database {path} is unreadable ({said}): restore the state directory from a backup "
        "(keep the broken file for inspection); do not delete it to start afresh"
    )


class StateError(Exception):
    """The state database cannot be opened or used; the message says what to do."""


class Database:
    """The state database: a connection per thread, nested transactions, commit hooks."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / DB_FILE
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # the store is its user's alone
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self.on_commit: list[Callable[[], None]] = []
        try:
            migrate(self.conn)
        except sqlite3.DatabaseError as exc:
            self.close()
            raise StateError(unreadable(self.path, exc)) from None

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            self._local.depth = 0
        return conn

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            raise StateError(unreadable(self.path, exc)) from None
        with self._lock:
            self._connections.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    def execute(self, sql: str, params: tuple[object, ...] | list[object] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE ... COMMIT`` on this thread's connection, rolled back on any
        error. Nested calls join the outer transaction; the commit hooks run after the
        outermost commit."""
        conn = self.conn
        if self._local.depth:
            self._local.depth += 1
            try:
                yield conn
            finally:
                self._local.depth -= 1
            return
        conn.execute("BEGIN IMMEDIATE")
        self._local.depth = 1
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            self._local.depth = 0
        conn.execute("COMMIT")
        for hook in self.on_commit:
            hook()


def migrate(conn: sqlite3.Connection) -> int:
    """Apply pending migrations; returns the schema version."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        current = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0
        for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
            for statement in filter(str.strip, script.split(";")):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return len(MIGRATIONS)
