"""The statuses area: each resource's conditions, written by the engine only."""

from __future__ import annotations

from controller.api.status import ResourceStatus
from controller.state.db import Database


class Statuses:
    def __init__(self, db: Database) -> None:
        self._db = db

    def set(self, ref: str, status: ResourceStatus) -> None:
        kind, name = ref.split("/", 1)
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO statuses (kind, name, status) VALUES (?, ?, ?) "
                "ON CONFLICT(kind, name) DO UPDATE SET status = excluded.status",
                (kind, name, status.model_dump_json()),
            )

    def get(self, ref: str) -> ResourceStatus | None:
        kind, name = ref.split("/", 1)
        row = self._db.execute("SELECT status FROM statuses WHERE kind = ? AND name = ?", (kind, name)).fetchone()
        return None if row is None else ResourceStatus.model_validate_json(row["status"])

    def all(self) -> dict[str, ResourceStatus]:
        """Every status, by ``Kind/name``, sorted."""
        rows = self._db.execute("SELECT * FROM statuses ORDER BY kind, name")
        return {f"{r['kind']}/{r['name']}": ResourceStatus.model_validate_json(r["status"]) for r in rows}
