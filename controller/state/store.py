"""The state store: data checks, runs, the model registry, approvals, statuses.

Called by the reconcilers (effects) and by the engine (the observed state for
planning). Every change that matters to an auditor is written in the same
transaction as its audit record, and every effect has an idempotency key, so a
re-run after a crash neither duplicates nor loses it.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controller.state import audit_log
from controller.state.artifacts import ArtifactStore
from controller.state.db import connect, transaction

DEFAULT_STATE_DIR = Path(".modelplane")
STAGES = ("None", "Staging", "Production", "Archived")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Version:
    model: str
    version: int
    run_id: str
    stage: str
    artifact_digest: str
    revision: str | None
    created_at: str


@dataclass(frozen=True)
class Promotion:
    model: str
    version: int
    from_stage: str
    to_stage: str
    actor: str
    reason: str
    revision: str | None
    at: str


def version_from_row(row: sqlite3.Row) -> Version:
    return Version(
        row["model"],
        row["version"],
        row["run_id"],
        row["stage"],
        row["artifact_digest"],
        row["revision"],
        row["created_at"],
    )


def _run(row: sqlite3.Row | None) -> dict[str, Any] | None:
    if row is None:
        return None
    run = dict(row)
    for key in ("params", "metrics", "gates", "fairness", "trials", "environment"):
        run[key] = json.loads(run[key])
    return run


class Store:
    def __init__(self, state_dir: Path = DEFAULT_STATE_DIR) -> None:
        self.state_dir = state_dir
        self.conn = connect(state_dir)
        self.artifacts = ArtifactStore(state_dir / "artifacts")
        self.cards_dir = state_dir / "cards"

    def close(self) -> None:
        self.conn.close()

    # -- audit ---------------------------------------------------------------
    def _audit(self, event: str, subject: str, payload: dict[str, Any], *, actor: str, revision: str | None) -> None:
        audit_log.append(self.conn, event, subject, payload, actor=actor, revision=revision)

    def audit(
        self,
        event: str,
        subject: str,
        payload: dict[str, Any],
        *,
        actor: str = "modelplane",
        revision: str | None = None,
        once: bool = False,
    ) -> bool:
        """Record an event that changes nothing else (e.g. a set of policy decisions).
        With ``once``, skip it if an event with the same ``payload['key']`` is there."""
        with transaction(self.conn):
            if (
                once
                and self.conn.execute(
                    "SELECT 1 FROM audit_log WHERE event = ? AND subject = ? AND json_extract(payload, '$.key') = ?",
                    (event, subject, payload["key"]),
                ).fetchone()
            ):
                return False
            self._audit(event, subject, payload, actor=actor, revision=revision)
        self._write_head()
        return True

    def _write_head(self) -> None:
        """Remember the chain's head outside the database: truncation shows."""
        row = self.conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        if row:
            tmp = self.state_dir / "audit.head.tmp"
            tmp.write_text(f"{row['seq']} {row['hash']}\n")
            tmp.replace(self.state_dir / "audit.head")

    def verify_audit(self) -> audit_log.Verification:
        result = audit_log.verify(self.conn)
        head = self.state_dir / "audit.head"
        if result.ok and head.exists():
            seq_text, _, digest = head.read_text().strip().partition(" ")
            seq = int(seq_text)
            if result.checked < seq:
                return audit_log.Verification(
                    False,
                    result.checked,
                    f"records after {result.checked} were removed (the log reached record {seq})",
                    result.checked + 1,
                )
            row = self.conn.execute("SELECT hash FROM audit_log WHERE seq = ?", (seq,)).fetchone()
            if row is None or row["hash"] != digest:
                return audit_log.Verification(
                    False, result.checked, f"record {seq} does not match the recorded head", seq
                )
        return result

    # -- data checks ---------------------------------------------------------
    def data_check(self, key: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM data_checks WHERE key = ?", (key,)).fetchone()
        return None if row is None else {**dict(row), "evidence": json.loads(row["evidence"])}

    def last_data_check(self, dataset: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT * FROM data_checks WHERE dataset = ? ORDER BY id DESC LIMIT 1", (dataset,)
        ).fetchone()
        return None if row is None else {**dict(row), "evidence": json.loads(row["evidence"])}

    def record_data_check(
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
        with transaction(self.conn):
            if self.conn.execute("SELECT 1 FROM data_checks WHERE key = ?", (key,)).fetchone():
                return False
            self.conn.execute(
                "INSERT INTO data_checks (key, dataset, dataset_hash, revision, success, gx_run_id, evidence, at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, dataset, dataset_hash, revision, int(success), gx_run_id, json.dumps(evidence), now()),
            )
            self._audit(
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
                actor="modelplane",
                revision=revision,
            )
        self._write_head()
        return True

    # -- runs ----------------------------------------------------------------
    def run_by_key(self, key: str) -> dict[str, Any] | None:
        return _run(self.conn.execute("SELECT * FROM runs WHERE key = ?", (key,)).fetchone())

    def run(self, run_id: str) -> dict[str, Any] | None:
        rows = self.conn.execute("SELECT * FROM runs WHERE id LIKE ? ORDER BY started_at", (run_id + "%",)).fetchall()
        return _run(rows[0]) if len(rows) == 1 else None

    def runs(self, model: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT * FROM runs" + (" WHERE model = ?" if model else "") + " ORDER BY started_at, id"
        return [_run(r) for r in self.conn.execute(query, (model,) if model else ())]  # type: ignore[misc]

    def start_run(
        self, run_id: str, key: str, model: str, revision: str | None, dataset: str, dataset_hash: str, spec_digest: str
    ) -> None:
        """Mark a run as started; a run left 'running' by a crash is started again under the same id."""
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO runs (id, key, model, status, revision, dataset, dataset_hash, spec_digest, started_at) "
                "VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET status='running', started_at=excluded.started_at, error=NULL",
                (run_id, key, model, revision, dataset, dataset_hash, spec_digest, now()),
            )

    def finish_run(
        self,
        key: str,
        *,
        status: str,
        params: dict[str, Any],
        metrics: dict[str, Any],
        gates: list[dict[str, Any]],
        fairness: dict[str, Any],
        trials: list[dict[str, Any]],
        environment: dict[str, Any],
        artifact_digest: str | None,
        duration_s: float,
        error: str | None,
        revision: str | None,
    ) -> None:
        with transaction(self.conn):
            row = self.conn.execute("SELECT id, model, status FROM runs WHERE key = ?", (key,)).fetchone()
            if row["status"] != "running":
                return  # finished before a crash: keep the first outcome
            self.conn.execute(
                "UPDATE runs SET status=?, params=?, metrics=?, gates=?, fairness=?, trials=?, environment=?, "
                "artifact_digest=?, duration_s=?, error=?, finished_at=? WHERE key=?",
                (
                    status,
                    json.dumps(params),
                    json.dumps(metrics),
                    json.dumps(gates),
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
            self._audit(
                "train",
                f"Model/{row['model']}",
                {
                    "run": row["id"],
                    "status": status,
                    "metrics": metrics,
                    "gates": gates,
                    "fairness": fairness,
                    "artifact": artifact_digest,
                    "error": error,
                },
                actor="modelplane",
                revision=revision,
            )
        self._write_head()

    def record_gates(
        self, key: str, *, passed: bool, gates: list[dict[str, Any]], fairness: dict[str, Any], revision: str | None
    ) -> bool:
        """Record the metric gate's decision on a trained run, once."""
        with transaction(self.conn):
            row = self.conn.execute("SELECT id, model, status FROM runs WHERE key = ?", (key,)).fetchone()
            if row is None or row["status"] != "trained":
                return False
            status = "passed" if passed else "gate-failed"
            self.conn.execute(
                "UPDATE runs SET status = ?, gates = ?, fairness = ? WHERE key = ?",
                (status, json.dumps(gates), json.dumps(fairness), key),
            )
            self._audit(
                "metric-gate",
                f"Model/{row['model']}",
                {"run": row["id"], "passed": passed, "gates": gates, "fairness": fairness},
                actor="modelplane",
                revision=revision,
            )
        self._write_head()
        return True

    # -- registry ------------------------------------------------------------
    def versions(self, model: str) -> list[Version]:
        rows = self.conn.execute("SELECT * FROM model_versions WHERE model = ? ORDER BY version", (model,))
        return [version_from_row(r) for r in rows]

    def version(self, model: str, version: int) -> Version | None:
        row = self.conn.execute(
            "SELECT * FROM model_versions WHERE model = ? AND version = ?", (model, version)
        ).fetchone()
        return None if row is None else version_from_row(row)

    def version_for_run(self, run_id: str) -> Version | None:
        row = self.conn.execute("SELECT * FROM model_versions WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else version_from_row(row)

    def resolve_version(self, model: str, ref: str | int) -> int:
        """A version number from ``3``, ``v3``, a stage name such as ``Staging``, or an alias."""
        text = str(ref)
        if text.lstrip("v").isdigit():
            return int(text.lstrip("v"))
        stage = text.capitalize()
        if stage in STAGES:
            found = self.in_stage(model, stage)
            if found is None:
                raise KeyError(f"{model} has no version in {stage}")
            return found.version
        row = self.conn.execute("SELECT version FROM aliases WHERE model = ? AND alias = ?", (model, text)).fetchone()
        if row is None:
            raise KeyError(f"{model} has no version, stage or alias {text!r}")
        return int(row["version"])

    def set_alias(self, model: str, alias: str, version: int, *, actor: str, revision: str | None = None) -> None:
        """Point ``alias`` (e.g. ``champion``) at a version; moving it is recorded."""
        if alias.capitalize() in STAGES or alias.lstrip("v").isdigit():
            raise KeyError(f"alias {alias!r} would shadow a stage or a version number")
        with transaction(self.conn):
            if self.version(model, version) is None:
                raise KeyError(f"{model} has no version {version}")
            old = self.conn.execute(
                "SELECT version FROM aliases WHERE model = ? AND alias = ?", (model, alias)
            ).fetchone()
            self.conn.execute(
                "INSERT INTO aliases (model, alias, version, at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(model, alias) DO UPDATE SET version = excluded.version, at = excluded.at",
                (model, alias, version, now()),
            )
            self._audit(
                "alias",
                f"Model/{model}",
                {"alias": alias, "version": version, "previous": old["version"] if old else None},
                actor=actor,
                revision=revision,
            )
        self._write_head()

    def aliases(self, model: str) -> dict[str, int]:
        rows = self.conn.execute("SELECT alias, version FROM aliases WHERE model = ? ORDER BY alias", (model,))
        return {r["alias"]: r["version"] for r in rows}

    def in_stage(self, model: str, stage: str) -> Version | None:
        row = self.conn.execute(
            "SELECT * FROM model_versions WHERE model = ? AND stage = ? ORDER BY version DESC LIMIT 1", (model, stage)
        ).fetchone()
        return None if row is None else version_from_row(row)

    def register(self, model: str, run_id: str, artifact_digest: str, revision: str | None) -> tuple[Version, bool]:
        """The version for ``run_id`` (stage None), creating it once. Returns (version, created)."""
        with transaction(self.conn):
            row = self.conn.execute("SELECT * FROM model_versions WHERE run_id = ?", (run_id,)).fetchone()
            if row is not None:
                return version_from_row(row), False
            number = self.conn.execute(
                "SELECT coalesce(max(version), 0) + 1 FROM model_versions WHERE model = ?", (model,)
            ).fetchone()[0]
            self.conn.execute(
                "INSERT INTO model_versions (model, version, run_id, stage, artifact_digest, revision, created_at) "
                "VALUES (?, ?, ?, 'None', ?, ?, ?)",
                (model, number, run_id, artifact_digest, revision, now()),
            )
            self._audit(
                "register",
                f"Model/{model}",
                {"version": number, "run": run_id, "artifact": artifact_digest},
                actor="modelplane",
                revision=revision,
            )
        self._write_head()
        return self.version(model, number), True  # type: ignore[return-value]

    def promote(
        self,
        model: str,
        version: int,
        to_stage: str,
        *,
        key: str,
        actor: str,
        reason: str,
        revision: str | None,
        archive_existing: bool = False,
    ) -> bool:
        """Move a version to ``to_stage`` once per ``key``; with ``archive_existing``, the
        version that held the stage goes to Archived in the same transaction."""
        with transaction(self.conn):
            if self.conn.execute("SELECT 1 FROM promotions WHERE key = ?", (key,)).fetchone():
                return False
            current = self.version(model, version)
            if current is None:
                raise KeyError(f"{model} has no version {version}")
            if archive_existing and to_stage in ("Staging", "Production"):
                for old in self.conn.execute(
                    "SELECT version FROM model_versions WHERE model = ? AND stage = ? AND version != ?",
                    (model, to_stage, version),
                ).fetchall():
                    self._transition(
                        model,
                        old["version"],
                        to_stage,
                        "Archived",
                        f"{key}/archive",
                        actor,
                        f"replaced by version {version}",
                        revision,
                    )
            self._transition(model, version, current.stage, to_stage, key, actor, reason, revision)
        self._write_head()
        return True

    def _transition(
        self,
        model: str,
        version: int,
        from_stage: str,
        to_stage: str,
        key: str,
        actor: str,
        reason: str,
        revision: str | None,
    ) -> None:
        self.conn.execute(
            "UPDATE model_versions SET stage = ? WHERE model = ? AND version = ?", (to_stage, model, version)
        )
        self.conn.execute(
            "INSERT INTO promotions (key, model, version, from_stage, to_stage, actor, reason, revision, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key, model, version, from_stage, to_stage, actor, reason, revision, now()),
        )
        self._audit(
            "promote",
            f"Model/{model}",
            {"version": version, "from": from_stage, "to": to_stage, "reason": reason},
            actor=actor,
            revision=revision,
        )

    def history(self, model: str) -> list[Promotion]:
        rows = self.conn.execute("SELECT * FROM promotions WHERE model = ? ORDER BY id", (model,))
        return [
            Promotion(
                r["model"],
                r["version"],
                r["from_stage"],
                r["to_stage"],
                r["actor"],
                r["reason"],
                r["revision"],
                r["at"],
            )
            for r in rows
        ]

    # -- approvals -----------------------------------------------------------
    def approve(self, model: str, version: int, approver: str, revision: str | None = None) -> bool:
        """Record an approval; the same person approving twice counts once (returns False)."""
        with transaction(self.conn):
            if self.version(model, version) is None:
                raise KeyError(f"{model} has no version {version}")
            cursor = self.conn.execute(
                "INSERT OR IGNORE INTO approvals (model, version, approver, at) VALUES (?, ?, ?, ?)",
                (model, version, approver, now()),
            )
            if cursor.rowcount == 0:
                return False
            self._audit("approve", f"Model/{model}", {"version": version}, actor=approver, revision=revision)
        self._write_head()
        return True

    def approvals(self, model: str, version: int) -> list[str]:
        rows = self.conn.execute(
            "SELECT approver FROM approvals WHERE model = ? AND version = ? ORDER BY at", (model, version)
        )
        return [r["approver"] for r in rows]

    def all_approvals(self) -> dict[str, dict[str, list[str]]]:
        out: dict[str, dict[str, list[str]]] = {}
        for r in self.conn.execute("SELECT model, version, approver FROM approvals ORDER BY at"):
            out.setdefault(r["model"], {}).setdefault(str(r["version"]), []).append(r["approver"])
        return out

    # -- statuses and cards --------------------------------------------------
    def set_status(self, kind: str, name: str, status: dict[str, Any]) -> None:
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO statuses (kind, name, status) VALUES (?, ?, ?) "
                "ON CONFLICT(kind, name) DO UPDATE SET status = excluded.status",
                (kind, name, json.dumps(status)),
            )

    def status(self, kind: str, name: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT status FROM statuses WHERE kind = ? AND name = ?", (kind, name)).fetchone()
        return None if row is None else json.loads(row["status"])

    def statuses(self) -> dict[tuple[str, str], dict[str, Any]]:
        return {(r["kind"], r["name"]): json.loads(r["status"]) for r in self.conn.execute("SELECT * FROM statuses")}

    def record_card(self, model: str, version: int, paths: dict[str, str]) -> None:
        with transaction(self.conn):
            self.conn.execute(
                "INSERT OR REPLACE INTO cards (model, version, json_path, markdown_path, html_path, at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (model, version, paths["json"], paths["markdown"], paths["html"], now()),
            )

    def card(self, model: str, version: int) -> dict[str, str] | None:
        row = self.conn.execute("SELECT * FROM cards WHERE model = ? AND version = ?", (model, version)).fetchone()
        return (
            None
            if row is None
            else {"json": row["json_path"], "markdown": row["markdown_path"], "html": row["html_path"]}
        )
