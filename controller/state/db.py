"""The SQLite database under the state directory, with its migrations.

WAL journal; every write that records a decision, a promotion or an audit
record commits with ``synchronous=FULL`` so that a crash never loses one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
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
]


def connect(state_dir: Path) -> sqlite3.Connection:
    """Open (and migrate) the state database."""
    state_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(state_dir / DB_FILE, timeout=30, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    migrate(conn)
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Apply pending migrations; returns the schema version."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    current = row[0] or 0
    for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
        with transaction(conn):
            for statement in filter(str.strip, script.split(";")):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    return len(MIGRATIONS)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
