"""Typed records of the state store: what the areas return, never raw rows.

Read by the engine (to plan and to run steps) and by the CLI (to show state).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from controller.api.status import ActionKind, OutcomeKind, Reason, RunStatus, Stage

_KINDS = {str(k): k for k in ActionKind}
_OUTCOMES = {str(o): o for o in OutcomeKind}
_REASONS = {str(r): r for r in Reason}


@dataclass(frozen=True)
class DataCheck:
    key: str
    dataset: str
    dataset_hash: str
    revision: str | None
    success: bool
    gx_run_id: str | None
    evidence: dict[str, Any]
    at: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> DataCheck:
        return cls(
            row["key"],
            row["dataset"],
            row["dataset_hash"],
            row["revision"],
            bool(row["success"]),
            row["gx_run_id"],
            json.loads(row["evidence"]),
            row["at"],
        )

    @property
    def summary(self) -> str:
        return str(self.evidence.get("summary", ""))


@dataclass(frozen=True)
class Run:
    id: str
    key: str
    model: str
    status: RunStatus
    revision: str | None
    dataset: str
    dataset_hash: str
    spec_digest: str
    started_at: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    gates: list[dict[str, Any]] = field(default_factory=list)
    fairness: dict[str, Any] = field(default_factory=dict)
    trials: list[dict[str, Any]] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    artifact_digest: str | None = None
    duration_s: float | None = None
    error: str | None = None
    finished_at: str | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Run:
        data = dict(row)
        for name in ("params", "metrics", "gates", "fairness", "trials", "environment"):
            data[name] = json.loads(data[name])
        data["status"] = RunStatus(data["status"])
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": str(self.status)}


@dataclass(frozen=True)
class ModelVersion:
    model: str
    version: int
    run_id: str
    stage: Stage
    artifact_digest: str
    revision: str | None
    created_at: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> ModelVersion:
        return cls(
            row["model"],
            row["version"],
            row["run_id"],
            Stage(row["stage"]),
            row["artifact_digest"],
            row["revision"],
            row["created_at"],
        )


@dataclass(frozen=True)
class Promotion:
    model: str
    version: int
    from_stage: Stage
    to_stage: Stage
    actor: str
    reason: str
    revision: str | None
    at: str


@dataclass(frozen=True)
class Approval:
    model: str
    version: int
    approver: str
    at: str


@dataclass(frozen=True)
class Card:
    model: str
    version: int
    stage: str
    json: str
    markdown: str
    html: str


@dataclass(frozen=True)
class Effect:
    """One entry of the effects ledger: what became of an idempotency key."""

    key: str
    kind: ActionKind
    resource: str
    outcome: OutcomeKind
    reason: Reason
    message: str
    attempts: int
    retry_after: str | None
    revision: str | None
    at: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Effect:
        # Dictionary look-ups, not Enum(...) calls: planning reads every entry of the ledger.
        return cls(
            row["key"],
            _KINDS[row["kind"]],
            row["resource"],
            _OUTCOMES[row["outcome"]],
            _REASONS[row["reason"]],
            row["message"],
            row["attempts"],
            row["retry_after"],
            row["revision"],
            row["at"],
        )


@dataclass(frozen=True)
class Deployment:
    """What an InferenceService serves now: its stable version, a canary and its share, a
    shadow; where (``url``) and under which configuration (its digest and generation)."""

    service: str
    target: str
    model: str
    stable_version: int
    canary_version: int | None
    canary_weight: float
    canary_step: int
    canary_since: str | None
    shadow_model: str | None
    shadow_version: int | None
    config_digest: str
    url: str | None
    generation: int
    starts: int
    revision: str | None
    at: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Deployment:
        return cls(**{f.name: row[f.name] for f in fields(cls)})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ServingCaller:
    """Who may call served models: a name, groups, and the SHA-256 of their token."""

    name: str
    token_sha256: str
    groups: tuple[str, ...]
    created_at: str
