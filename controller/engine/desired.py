"""Desired and observed state, as plain data for the pure planner.

``desired`` reads the resources at a revision and the digests of their inputs
(a dataset's content hash; a model's spec, its dataset's hash and the code
version). ``observed`` reads what the state store has done. Both are computed
before planning so that :func:`controller.engine.plan.plan` stays pure.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.api import Dataset, Model
from controller.loading import LoadedResource
from controller.state.store import Store, Version, version_from_row
from reconcilers import data
from reconcilers.train import code_version


def digest(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def spec_digest(model: Model) -> str:
    return digest(model.spec.model_dump(mode="json", by_alias=True))


@dataclass(frozen=True)
class DesiredDataset:
    name: str
    content_hash: str | None
    check_key: str | None
    error: str | None = None


@dataclass(frozen=True)
class DesiredModel:
    name: str
    dataset: str
    spec_digest: str
    train_key: str | None
    code_version: str
    staging_automatic: bool
    production_approvals: int | None
    archive_existing: bool


@dataclass
class Desired:
    revision: str | None
    datasets: dict[str, DesiredDataset] = field(default_factory=dict)
    models: dict[str, DesiredModel] = field(default_factory=dict)
    denied: dict[str, str] = field(default_factory=dict)  # "Kind/name" -> policy findings


def desired_state(
    resources: list[LoadedResource], root: Path, revision: str | None, denied: dict[str, str] | None = None
) -> Desired:
    datasets = {r.resource.name: r.resource for r in resources if isinstance(r.resource, Dataset)}
    models = [r.resource for r in resources if isinstance(r.resource, Model)]
    desired = Desired(revision, denied=dict(denied or {}))
    for name, dataset in datasets.items():
        try:
            content = data.content_hash(dataset, datasets, root)
        except data.DataError as exc:
            desired.datasets[name] = DesiredDataset(name, None, None, str(exc))
            continue
        spec = dataset.spec.model_dump(mode="json")
        desired.datasets[name] = DesiredDataset(name, content, digest("data-gate", name, spec, content))
    for model in models:
        model_digest = spec_digest(model)
        ds = desired.datasets.get(model.spec.dataset)
        version = code_version(model)
        key = digest("train", model.name, model_digest, ds.content_hash, version) if ds and ds.content_hash else None
        production = model.spec.promotion.production
        desired.models[model.name] = DesiredModel(
            model.name,
            model.spec.dataset,
            model_digest,
            key,
            version,
            model.spec.promotion.staging.automatic,
            production.approvals if production else None,
            production.archiveExisting if production else False,
        )
    return desired


@dataclass
class Observed:
    data_checks: dict[str, bool] = field(default_factory=dict)  # check key -> success
    data_summaries: dict[str, str] = field(default_factory=dict)  # check key -> summary
    last_data_hash: dict[str, str] = field(default_factory=dict)  # dataset -> hash of its latest check
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # train key -> run
    last_run: dict[str, dict[str, Any]] = field(default_factory=dict)  # model -> latest run
    versions: dict[str, list[Version]] = field(default_factory=dict)
    approvals: dict[tuple[str, int], int] = field(default_factory=dict)
    cards: set[tuple[str, int]] = field(default_factory=set)


def observed_state(store: Store) -> Observed:
    observed = Observed()
    conn = store.conn
    for row in conn.execute("SELECT key, dataset, dataset_hash, success, evidence FROM data_checks ORDER BY id"):
        observed.data_checks[row["key"]] = bool(row["success"])
        observed.data_summaries[row["key"]] = json.loads(row["evidence"]).get("summary", "")
        observed.last_data_hash[row["dataset"]] = row["dataset_hash"]
    query = "SELECT id, key, model, status, dataset_hash, spec_digest, gates, error FROM runs ORDER BY started_at, id"
    for row in conn.execute(query):
        run = dict(row)
        # Only a failed gate's evidence is needed to plan; decode the rest never.
        run["gates"] = json.loads(run["gates"]) if run["status"] == "gate-failed" else []
        observed.runs[run["key"]] = run
        observed.last_run[run["model"]] = run
    for row in conn.execute("SELECT * FROM model_versions ORDER BY model, version"):
        observed.versions.setdefault(row["model"], []).append(version_from_row(row))
    for row in conn.execute("SELECT model, version, count(*) AS n FROM approvals GROUP BY model, version"):
        observed.approvals[(row["model"], row["version"])] = row["n"]
    observed.cards = {(r["model"], r["version"]) for r in conn.execute("SELECT model, version FROM cards")}
    return observed
