"""The approvals area: who approved which model version."""

from __future__ import annotations

from controller.state.audit import AuditTrail
from controller.state.clock import now
from controller.state.db import Database
from controller.state.records import Approval


class Approvals:
    def __init__(self, db: Database, audit: AuditTrail) -> None:
        self._db = db
        self._audit = audit

    def approve(self, model: str, version: int, approver: str, revision: str | None = None) -> bool:
        """Record an approval; the same person approving twice counts once (returns False)."""
        with self._db.transaction() as conn:
            if not conn.execute(
                "SELECT 1 FROM model_versions WHERE model = ? AND version = ?", (model, version)
            ).fetchone():
                raise KeyError(f"{model} has no version {version}")
            cursor = conn.execute(
                "INSERT OR IGNORE INTO approvals (model, version, approver, at) VALUES (?, ?, ?, ?)",
                (model, version, approver, now()),
            )
            if cursor.rowcount == 0:
                return False
            self._audit.append("approve", f"Model/{model}", {"version": version}, actor=approver, revision=revision)
        return True

    def revoke(self, model: str, version: int, approver: str, revision: str | None = None) -> bool:
        """Withdraw an approval (audited); False when there was none to withdraw."""
        with self._db.transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM approvals WHERE model = ? AND version = ? AND approver = ?", (model, version, approver)
            )
            if cursor.rowcount == 0:
                return False
            self._audit.append("revoke", f"Model/{model}", {"version": version}, actor=approver, revision=revision)
        return True

    def of(self, model: str, version: int) -> list[str]:
        rows = self._db.execute(
            "SELECT approver FROM approvals WHERE model = ? AND version = ? ORDER BY at", (model, version)
        )
        return [r["approver"] for r in rows]

    def all(self) -> list[Approval]:
        rows = self._db.execute("SELECT * FROM approvals ORDER BY at")
        return [Approval(r["model"], r["version"], r["approver"], r["at"]) for r in rows]

    def by_version(self) -> dict[tuple[str, int], list[str]]:
        """``{(model, version): [approvers]}``, in the order they approved."""
        out: dict[tuple[str, int], list[str]] = {}
        for a in self.all():
            out.setdefault((a.model, a.version), []).append(a.approver)
        return out

    def by_model(self) -> dict[str, dict[str, list[str]]]:
        """``{model: {version: [approvers]}}``, as policies see them (``data.modelplane.context.approvals``)."""
        out: dict[str, dict[str, list[str]]] = {}
        for a in self.all():
            out.setdefault(a.model, {}).setdefault(str(a.version), []).append(a.approver)
        return out
