"""The runs area: training runs, from start to the metric gate's decision."""

from __future__ import annotations

import json
from typing import Any

from controller.api.status import RunStatus
from controller.state.audit import AuditTrail
from controller.state.clock import now
from controller.state.db import Database
from controller.state.records import Run


class Runs:
    def __init__(self, db: Database, audit: AuditTrail) -> None:
        self._db = db
        self._audit = audit

    def by_key(self, key: str) -> Run | None:
        row = self._db.execute("SELECT * FROM runs WHERE key = ?", (key,)).fetchone()
        return None if row is None else Run.from_row(row)

    def get(self, run_id: str) -> Run | None:
        """The run whose id is or starts with ``run_id``; None when none or several match."""
        rows = self._db.execute(
            "SELECT * FROM runs WHERE id LIKE ? ESCAPE '\\' ORDER BY started_at",
            (run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",),
        ).fetchall()
        return Run.from_row(rows[0]) if len(rows) == 1 else None

    def all(self, model: str | None = None) -> list[Run]:
        query = "SELECT * FROM runs" + (" WHERE model = ?" if model else "") + " ORDER BY started_at, id"
        return [Run.from_row(r) for r in self._db.execute(query, (model,) if model else ())]

    def models(self) -> list[str]:
        return [r["model"] for r in self._db.execute("SELECT DISTINCT model FROM runs ORDER BY model")]

    def latest_per_model(self) -> dict[str, Run]:
        """Each model's most recent run (what the planner explains a retrain against)."""
        rows = self._db.execute(
            "SELECT * FROM runs r WHERE rowid = (SELECT rowid FROM runs WHERE model = r.model "
            "ORDER BY started_at DESC, id DESC LIMIT 1)"
        )
        return {r["model"]: Run.from_row(r) for r in rows}

    def start(
        self, run_id: str, key: str, model: str, revision: str | None, dataset: str, dataset_hash: str, spec_digest: str
    ) -> None:
        """Mark a run as started; a run left 'running' by a crash is started again under its first id."""
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO runs (id, key, model, status, revision, dataset, dataset_hash, spec_digest, started_at) "
                "VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET status='running', started_at=excluded.started_at, error=NULL",
                (run_id, key, model, revision, dataset, dataset_hash, spec_digest, now()),
            )

    def finish(
        self,
        key: str,
        *,
        status: RunStatus,
        params: dict[str, Any],
        metrics: dict[str, Any],
        fairness: dict[str, Any],
        trials: list[dict[str, Any]],
        environment: dict[str, Any],
        artifact_digest: str | None,
        duration_s: float,
        error: str | None,
        revision: str | None,
    ) -> bool:
        """Record how training ended, once (a run finished before a crash keeps its outcome)."""
        with self._db.transaction() as conn:
            row = conn.execute("SELECT id, model, status FROM runs WHERE key = ?", (key,)).fetchone()
            if row is None or row["status"] != RunStatus.RUNNING:
                return False
            conn.execute(
                "UPDATE runs SET status=?, params=?, metrics=?, gates='[]', fairness=?, trials=?, environment=?, "
                "artifact_digest=?, duration_s=?, error=?, finished_at=? WHERE key=?",
                (
                    str(status),
                    json.dumps(params),
                    json.dumps(metrics),
                    json.dumps(fairness),
                    json.dumps(trials),
                    json.dumps(environment),
                    artifact_digest,
                    duration_s,
                    error,
                    now(),
                    key,
                ),
            )
            self._audit.append(
                "train",
                f"Model/{row['model']}",
                {
                    "run": row["id"],
                    "status": str(status),
                    "metrics": metrics,
                    "gates": [],
                    "fairness": fairness,
                    "artifact": artifact_digest,
                    "error": error,
                },
                revision=revision,
            )
        return True

    def record_gates(
        self, key: str, *, passed: bool, gates: list[dict[str, Any]], fairness: dict[str, Any], revision: str | None
    ) -> bool:
        """Record the metric gate's decision on a trained run, once."""
        with self._db.transaction() as conn:
            row = conn.execute("SELECT id, model, status FROM runs WHERE key = ?", (key,)).fetchone()
            if row is None or row["status"] != RunStatus.TRAINED:
                return False
            status = RunStatus.PASSED if passed else RunStatus.GATE_FAILED
            conn.execute(
                "UPDATE runs SET status = ?, gates = ?, fairness = ? WHERE key = ?",
                (str(status), json.dumps(gates), json.dumps(fairness), key),
            )
            self._audit.append(
                "metric-gate",
                f"Model/{row['model']}",
                {"run": row["id"], "passed": passed, "gates": gates, "fairness": fairness},
                revision=revision,
            )
        return True
