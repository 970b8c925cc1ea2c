"""The deployments area: what each InferenceService serves, and the callers of served models.

Written by the deploy steps (``controller.engine.steps``), each change with its
audit record in the caller's transaction; callers are added and removed by
``modelplane serve caller``. A caller's token is never stored: only its SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import asdict, fields

from controller.api.identity import normalise
from controller.state.audit import AuditTrail
from controller.state.clock import now
from controller.state.db import Database
from controller.state.records import Deployment, ServingCaller

TOKEN_BYTES = 32
GROUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class CallerError(ValueError):
    """A caller that cannot be added or removed as asked; the message says why."""


class Deployments:
    def __init__(self, db: Database, audit: AuditTrail) -> None:
        self._db = db
        self._audit = audit

    def get(self, service: str) -> Deployment | None:
        row = self._db.execute("SELECT * FROM deployments WHERE service = ?", (service,)).fetchone()
        return None if row is None else Deployment.from_row(row)

    def all(self) -> dict[str, Deployment]:
        return {r["service"]: Deployment.from_row(r) for r in self._db.execute("SELECT * FROM deployments")}

    def record(
        self,
        deployment: Deployment,
        event: str,
        evidence: dict[str, object],
        *,
        served_config: str,
        actor: str = "modelplane",
    ) -> None:
        """Write what ``deployment`` serves now, with the configuration it is served with
        (``served_config``: the serving target's, callers left out, see
        :meth:`served_config`), and the audit record of the change (``event``: deployed,
        restarted, canary-started, canary-step, canary-promoted, canary-rolled-back); joins
        the caller's transaction."""
        columns = [f.name for f in fields(Deployment)]
        values = asdict(deployment)
        with self._db.transaction() as conn:
            conn.execute(
                f"INSERT OR REPLACE INTO deployments ({', '.join(columns)}, served_config) "
                f"VALUES ({', '.join('?' for _ in columns)}, ?)",
                [*(values[c] for c in columns), served_config],
            )
            self._audit.append(
                event,
                f"InferenceService/{deployment.service}",
                {**evidence, "deployment": values},
                actor=actor,
                revision=deployment.revision,
            )

    def served_config(self, service: str) -> str | None:
        """The configuration ``service`` was last deployed with, callers left out (JSON, as
        the serving target reads it); None when it has no deployment, or one recorded before
        modelplane kept it."""
        row = self._db.execute("SELECT served_config FROM deployments WHERE service = ?", (service,)).fetchone()
        return None if row is None else row["served_config"]

    def remove(self, service: str, reason: str, *, actor: str = "modelplane") -> bool:
        with self._db.transaction() as conn:
            if conn.execute("DELETE FROM deployments WHERE service = ?", (service,)).rowcount == 0:
                return False
            self._audit.append("undeployed", f"InferenceService/{service}", {"reason": reason}, actor=actor)
        return True

    # Callers of served models.

    def callers(self) -> list[ServingCaller]:
        rows = self._db.execute("SELECT * FROM callers ORDER BY name")
        return [
            ServingCaller(r["name"], r["token_sha256"], tuple(json.loads(r["groups"])), r["created_at"]) for r in rows
        ]

    def add_caller(self, name: str, groups: list[str], *, actor: str) -> str:
        """Add a caller in ``groups``; returns its new token (shown once, never stored)."""
        try:
            name = normalise(name)
        except ValueError as exc:
            raise CallerError(f"caller name {name!r}: {exc}") from None
        clean = sorted({g.strip() for g in groups if g.strip()})
        if not clean:
            raise CallerError("give the caller at least one group (--group NAME)")
        bad = [g for g in clean if not GROUP.match(g)]
        if bad:
            raise CallerError(
                f"group {bad[0]!r} is not a name: letters, digits and . _ - (at most 64), e.g. clinicians"
            )
        token = secrets.token_urlsafe(TOKEN_BYTES)
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self._db.transaction() as conn:
            if conn.execute("SELECT 1 FROM callers WHERE name = ?", (name,)).fetchone():
                raise CallerError(f"caller {name} exists: remove it first to give it a new token")
            conn.execute(
                "INSERT INTO callers (name, token_sha256, groups, created_at) VALUES (?, ?, ?, ?)",
                (name, digest, json.dumps(clean), now()),
            )
            self._audit.append("caller-added", f"Caller/{name}", {"groups": clean}, actor=actor)
        return token

    def remove_caller(self, name: str, *, actor: str) -> bool:
        with self._db.transaction() as conn:
            if conn.execute("DELETE FROM callers WHERE name = ?", (name,)).rowcount == 0:
                return False
            self._audit.append("caller-removed", f"Caller/{name}", {}, actor=actor)
        return True
