"""The data-checks area: one data-gate result per key (dataset contract x content)."""

from __future__ import annotations

import json
from typing import Any

from controller.state.audit import AuditTrail
from controller.state.clock import now
from controller.state.db import Database
from controller.state.records import DataCheck


class Checks:
    def __init__(self, db: Database, audit: AuditTrail) -> None:
        self._db = db
        self._audit = audit

    def get(self, key: str) -> DataCheck | None:
        row = self._db.execute("SELECT * FROM data_checks WHERE key = ?", (key,)).fetchone()
        return None if row is None else DataCheck.from_row(row)

    def last(self, dataset: str) -> DataCheck | None:
        row = self._db.execute(
            "SELECT * FROM data_checks WHERE dataset = ? ORDER BY id DESC LIMIT 1", (dataset,)
        ).fetchone()
        return None if row is None else DataCheck.from_row(row)

    def last_hashes(self) -> dict[str, str]:
        """Each dataset's most recently checked content hash."""
        rows = self._db.execute(
            "SELECT dataset, dataset_hash FROM data_checks "
            "WHERE id IN (SELECT max(id) FROM data_checks GROUP BY dataset)"
        )
        return {r["dataset"]: r["dataset_hash"] for r in rows}

    def record(
        self,
        key: str,
        dataset: str,
        dataset_hash: str,
        revision: str | None,
        success: bool,
        gx_run_id: str | None,
        evidence: dict[str, Any],
    ) -> bool:
        """Store a data-gate result once per key; False if it was already there."""
        with self._db.transaction() as conn:
            if conn.execute("SELECT 1 FROM data_checks WHERE key = ?", (key,)).fetchone():
                return False
            conn.execute(
                "INSERT INTO data_checks (key, dataset, dataset_hash, revision, success, gx_run_id, evidence, at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, dataset, dataset_hash, revision, int(success), gx_run_id, json.dumps(evidence), now()),
            )
            self._audit.append(
                "data-gate",
                f"Dataset/{dataset}",
                {
                    "key": key,
                    "dataset_hash": dataset_hash,
                    "success": success,
                    "gx_run_id": gx_run_id,
                    "statistics": evidence.get("statistics"),
                    "schema": evidence.get("schema"),
                },
                revision=revision,
            )
        return True
