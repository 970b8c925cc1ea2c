"""The registry area: model versions, stage transitions, aliases and model cards."""

from __future__ import annotations

from controller.api.status import Stage
from controller.state.audit import AuditTrail
from controller.state.clock import now
from controller.state.db import Database
from controller.state.records import Card, ModelVersion, Promotion


class Registry:
    def __init__(self, db: Database, audit: AuditTrail) -> None:
        self._db = db
        self._audit = audit

    def models(self) -> list[str]:
        return [r["model"] for r in self._db.execute("SELECT DISTINCT model FROM model_versions ORDER BY model")]

    def versions(self, model: str | None = None) -> list[ModelVersion]:
        query = "SELECT * FROM model_versions" + (" WHERE model = ?" if model else "") + " ORDER BY model, version"
        return [ModelVersion.from_row(r) for r in self._db.execute(query, (model,) if model else ())]

    def version(self, model: str, version: int) -> ModelVersion | None:
        row = self._db.execute(
            "SELECT * FROM model_versions WHERE model = ? AND version = ?", (model, version)
        ).fetchone()
        return None if row is None else ModelVersion.from_row(row)

    def for_run(self, run_id: str) -> ModelVersion | None:
        row = self._db.execute("SELECT * FROM model_versions WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else ModelVersion.from_row(row)

    def by_run_key(self) -> dict[str, ModelVersion]:
        """Every version, by the idempotency key of the run it was trained by."""
        rows = self._db.execute("SELECT v.*, r.key AS run_key FROM model_versions v JOIN runs r ON r.id = v.run_id")
        return {r["run_key"]: ModelVersion.from_row(r) for r in rows}

    def in_stage(self, model: str, stage: Stage) -> ModelVersion | None:
        row = self._db.execute(
            "SELECT * FROM model_versions WHERE model = ? AND stage = ? ORDER BY version DESC LIMIT 1",
            (model, str(stage)),
        ).fetchone()
        return None if row is None else ModelVersion.from_row(row)

    def resolve(self, model: str, ref: str | int) -> int:
        """A version number from ``3``, ``v3``, a stage name such as ``Staging``, or an alias."""
        text = str(ref)
        if text.lstrip("v").isdigit():
            return int(text.lstrip("v"))
        stage = text.capitalize()
        if stage in set(Stage):
            found = self.in_stage(model, Stage(stage))
            if found is None:
                raise KeyError(f"{model} has no version in {stage}")
            return found.version
        row = self._db.execute("SELECT version FROM aliases WHERE model = ? AND alias = ?", (model, text)).fetchone()
        if row is None:
            raise KeyError(f"{model} has no version, stage or alias {text!r}")
        return int(row["version"])

    def register(
        self, model: str, run_id: str, artifact_digest: str, revision: str | None
    ) -> tuple[ModelVersion, bool]:
        """The version for ``run_id`` (stage None), creating it once. Returns (version, created)."""
        with self._db.transaction() as conn:
            row = conn.execute("SELECT * FROM model_versions WHERE run_id = ?", (run_id,)).fetchone()
            if row is not None:
                return ModelVersion.from_row(row), False
            number = conn.execute(
                "SELECT coalesce(max(version), 0) + 1 FROM model_versions WHERE model = ?", (model,)
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO model_versions (model, version, run_id, stage, artifact_digest, revision, created_at) "
                "VALUES (?, ?, ?, 'None', ?, ?, ?)",
                (model, number, run_id, artifact_digest, revision, now()),
            )
            self._audit.append(
                "register",
                f"Model/{model}",
                {"version": number, "run": run_id, "artifact": artifact_digest},
                revision=revision,
            )
            created = self.version(model, number)
        assert created is not None
        return created, True

    def promote(
        self,
        model: str,
        version: int,
        to_stage: Stage,
        *,
        key: str,
        actor: str,
        reason: str,
        revision: str | None,
        archive_existing: bool = False,
    ) -> bool:
        """Move a version to ``to_stage`` once per ``key``; with ``archive_existing``, the
        version that held the stage goes to Archived in the same transaction."""
        with self._db.transaction() as conn:
            if conn.execute("SELECT 1 FROM promotions WHERE key = ?", (key,)).fetchone():
                return False
            current = self.version(model, version)
            if current is None:
                raise KeyError(f"{model} has no version {version}")
            if archive_existing and to_stage in (Stage.STAGING, Stage.PRODUCTION):
                for old in conn.execute(
                    "SELECT version FROM model_versions WHERE model = ? AND stage = ? AND version != ?",
                    (model, str(to_stage), version),
                ).fetchall():
                    self._transition(
                        model,
                        old["version"],
                        to_stage,
                        Stage.ARCHIVED,
                        f"{key}/archive",
                        actor,
                        f"replaced by version {version}",
                        revision,
                    )
            self._transition(model, version, current.stage, to_stage, key, actor, reason, revision)
        return True

    def _transition(
        self,
        model: str,
        version: int,
        from_stage: Stage,
        to_stage: Stage,
        key: str,
        actor: str,
        reason: str,
        revision: str | None,
    ) -> None:
        conn = self._db.conn
        conn.execute(
            "UPDATE model_versions SET stage = ? WHERE model = ? AND version = ?", (str(to_stage), model, version)
        )
        conn.execute(
            "INSERT INTO promotions (key, model, version, from_stage, to_stage, actor, reason, revision, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key, model, version, str(from_stage), str(to_stage), actor, reason, revision, now()),
        )
        self._audit.append(
            "promote",
            f"Model/{model}",
            {"version": version, "from": str(from_stage), "to": str(to_stage), "reason": reason},
            actor=actor,
            revision=revision,
        )

    def history(self, model: str) -> list[Promotion]:
        rows = self._db.execute("SELECT * FROM promotions WHERE model = ? ORDER BY id", (model,))
        return [
            Promotion(
                r["model"],
                r["version"],
                Stage(r["from_stage"]),
                Stage(r["to_stage"]),
                r["actor"],
                r["reason"],
                r["revision"],
                r["at"],
            )
            for r in rows
        ]

    # -- aliases ---------------------------------------------------------------
    def set_alias(self, model: str, alias: str, version: int, *, actor: str, revision: str | None = None) -> None:
        """Point ``alias`` (e.g. ``champion``) at a version; moving it is recorded."""
        if alias.capitalize() in set(Stage) or alias.lstrip("v").isdigit():
            raise KeyError(f"alias {alias!r} would shadow a stage or a version number")
        with self._db.transaction() as conn:
            if self.version(model, version) is None:
                raise KeyError(f"{model} has no version {version}")
            old = conn.execute("SELECT version FROM aliases WHERE model = ? AND alias = ?", (model, alias)).fetchone()
            conn.execute(
                "INSERT INTO aliases (model, alias, version, at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(model, alias) DO UPDATE SET version = excluded.version, at = excluded.at",
                (model, alias, version, now()),
            )
            self._audit.append(
                "alias",
                f"Model/{model}",
                {"alias": alias, "version": version, "previous": old["version"] if old else None},
                actor=actor,
                revision=revision,
            )

    def aliases(self, model: str) -> dict[str, int]:
        rows = self._db.execute("SELECT alias, version FROM aliases WHERE model = ? ORDER BY alias", (model,))
        return {r["alias"]: r["version"] for r in rows}

    # -- model cards -------------------------------------------------------------
    def record_card(self, model: str, version: int, stage: Stage, paths: dict[str, str]) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO cards (model, version, stage, json_path, markdown_path, html_path, at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (model, version, str(stage), paths["json"], paths["markdown"], paths["html"], now()),
            )

    def card(self, model: str, version: int) -> Card | None:
        row = self._db.execute("SELECT * FROM cards WHERE model = ? AND version = ?", (model, version)).fetchone()
        if row is None:
            return None
        return Card(
            row["model"], row["version"], row["stage"], row["json_path"], row["markdown_path"], row["html_path"]
        )
