"""Desired and observed state, as plain data for the pure planners.

``desired`` reads the resources at a revision and the digests of their inputs
(a dataset's content hash; a model's spec, its dataset's hash and the code
version). ``observed`` reads what the state store has done (the effects ledger
first). Both are computed before planning so that the planners stay pure.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.api import Dataset, InferenceService, Model
from controller.backends.serving.local import LocalServing
from controller.loading import LoadedResource
from controller.state.clock import now
from controller.state.records import Deployment, Effect, ModelVersion, Run, ServingCaller
from controller.state.store import Store
from reconcilers import data
from reconcilers.train import code_version


def digest(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def spec_digest(resource: Model | Dataset | InferenceService) -> str:
    return digest(resource.spec.model_dump(mode="json", by_alias=True))


@dataclass(frozen=True)
class DesiredDataset:
    name: str
    spec_digest: str
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


@dataclass(frozen=True)
class Selector:
    """Which version of ``model`` to serve: by ``stage``, ``alias`` or pinned ``version``."""

    model: str
    by: str  # "stage", "alias" or "version"
    value: str | int

    def describe(self) -> str:
        return f"{self.model} v{self.value}" if self.by == "version" else f"{self.model} {self.by} {self.value}"


@dataclass(frozen=True)
class DesiredService:
    name: str
    spec_digest: str
    target: str
    model: Selector
    shadow: Selector | None
    shadow_percent: float
    canary_steps: tuple[float, ...]
    # data.modelplane for the runtime access policy: the service, its model, the model's dataset
    access_data: dict[str, Any] = field(hash=False, compare=False, default_factory=dict)
    access_digest: str = ""


@dataclass
class Desired:
    revision: str | None
    datasets: dict[str, DesiredDataset] = field(default_factory=dict)
    models: dict[str, DesiredModel] = field(default_factory=dict)
    services: dict[str, DesiredService] = field(default_factory=dict)
    denied: dict[str, str] = field(default_factory=dict)  # "Kind/name" -> policy findings
    # Who may approve a promotion to Production (the project file's approvers); None: anyone.
    # Approvals by anyone else are not counted, whenever they were given.
    approvers: frozenset[str] | None = None


def counted_approvals(given: list[str], approvers: frozenset[str] | None) -> list[str]:
    """The approvals that count: those by people on the project's approvers list (all of
    them without a list). Taking someone off the list withdraws the approvals they gave."""
    return list(given) if approvers is None else [a for a in given if a in approvers]


class _Datasets(Mapping[str, Dataset]):
    """Datasets by name, each typed model built when it is asked for."""

    def __init__(self, loaded: dict[str, LoadedResource]) -> None:
        self._loaded = loaded

    def __getitem__(self, name: str) -> Dataset:
        model = self._loaded[name].model()
        assert isinstance(model, Dataset)
        return model

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded)

    def __len__(self) -> int:
        return len(self._loaded)


def desired_state(
    resources: list[LoadedResource],
    root: Path,
    revision: str | None,
    denied: dict[str, str] | None = None,
    digests: data.FileDigests | None = None,
    approvers: frozenset[str] | None = None,
) -> Desired:
    """What the resources ask for, with their inputs' digests; ``digests`` remembers data
    files' hashes by file identity (the state's cache) so that unchanged files are not read."""
    # Each typed model is built when it is needed and dropped after (a load that kept data
    # only holds none): a derived dataset builds its parent's again.
    datasets = _Datasets({r.name: r for r in resources if r.kind == "Dataset"})
    desired = Desired(revision, denied=dict(denied or {}), approvers=approvers)
    for name in datasets:
        dataset = datasets[name]
        dataset_digest = spec_digest(dataset)
        try:
            content = data.content_hash(dataset, datasets, root, digests)
        except data.DataError as exc:
            desired.datasets[name] = DesiredDataset(name, dataset_digest, None, None, str(exc))
            continue
        spec = dataset.spec.model_dump(mode="json")
        desired.datasets[name] = DesiredDataset(name, dataset_digest, content, digest("data-gate", name, spec, content))
    for loaded in resources:
        if loaded.kind != "Model":
            continue
        model = loaded.model()
        assert isinstance(model, Model)
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
    documents = {(r.kind, r.name): r for r in resources if r.kind in ("Model", "Dataset")}
    for loaded in resources:
        if loaded.kind == "InferenceService":
            desired.services[loaded.name] = _desired_service(loaded, documents)
    return desired


def _selector(raw: Any) -> Selector:
    for by in ("version", "alias", "stage"):
        value = getattr(raw, by)
        if value is not None:
            return Selector(raw.name, by, value if by == "version" else str(value))
    raise ValueError("a model selector names a stage, an alias or a version")  # the schema says so first


def _desired_service(loaded: LoadedResource, documents: dict[tuple[str, str], LoadedResource]) -> DesiredService:
    service = loaded.model()
    assert isinstance(service, InferenceService)
    spec = service.spec
    model_doc = documents.get(("Model", spec.model.name))
    dataset_doc = None
    if model_doc is not None:
        dataset_name = model_doc.document.data.get("spec", {}).get("dataset")
        dataset_doc = documents.get(("Dataset", dataset_name)) if isinstance(dataset_name, str) else None
    resources: dict[str, dict[str, Any]] = {"InferenceService": {service.name: loaded.document.data}}
    if model_doc is not None:
        resources["Model"] = {model_doc.name: model_doc.document.data}
    if dataset_doc is not None:
        resources["Dataset"] = {dataset_doc.name: dataset_doc.document.data}
    access = {"resources": resources}
    return DesiredService(
        name=service.name,
        spec_digest=spec_digest(service),
        target=spec.target,
        model=_selector(spec.model),
        shadow=_selector(spec.shadow.model) if spec.shadow else None,
        shadow_percent=float(spec.shadow.percent) if spec.shadow else 0.0,
        canary_steps=tuple(spec.canary.steps) if spec.canary else (),
        access_data=access,
        access_digest=digest(access),
    )


@dataclass
class Observed:
    """What the state store says has been done, as the planners need it."""

    effects: dict[str, Effect] = field(default_factory=dict)  # the ledger, by idempotency key
    last_data_hash: dict[str, str] = field(default_factory=dict)  # dataset -> hash of its latest check
    last_run: dict[str, Run] = field(default_factory=dict)  # model -> latest run
    versions: dict[str, ModelVersion] = field(default_factory=dict)  # train key -> version
    approvals: dict[tuple[str, int], list[str]] = field(default_factory=dict)  # (model, version) -> approvers
    now: str = ""  # when observed (ISO 8601, UTC): back-offs are compared with it
    registered: dict[tuple[str, int], ModelVersion] = field(default_factory=dict)  # (model, version) -> version
    aliases: dict[tuple[str, str], int] = field(default_factory=dict)  # (model, alias) -> version
    deployments: dict[str, Deployment] = field(default_factory=dict)  # service -> what it serves
    serving: dict[str, bool] = field(default_factory=dict)  # service -> whether its supervisor runs
    callers: tuple[ServingCaller, ...] = ()

    def resolve(self, selector: Selector) -> ModelVersion | None:
        """The registered version ``selector`` names now (None: none does)."""
        if selector.by == "version":
            return self.registered.get((selector.model, int(selector.value)))
        if selector.by == "alias":
            number = self.aliases.get((selector.model, str(selector.value)))
            return None if number is None else self.registered.get((selector.model, number))
        holding = [v for (m, _), v in self.registered.items() if m == selector.model and v.stage == selector.value]
        return max(holding, key=lambda v: v.version, default=None)

    @property
    def callers_digest(self) -> str:
        return digest([(c.name, c.token_sha256, c.groups) for c in self.callers])


def observed_state(store: Store) -> Observed:
    versions = store.registry.versions()
    deployments = store.deployments.all()
    serving = LocalServing(store.state_dir)
    return Observed(
        effects=store.effects.all(),
        last_data_hash=store.checks.last_hashes(),
        last_run=store.runs.latest_per_model(),
        versions=store.registry.by_run_key(),
        approvals=store.approvals.by_version(),
        now=now(),
        registered={(v.model, v.version): v for v in versions},
        aliases={(m, a): n for m in {v.model for v in versions} for a, n in store.registry.aliases(m).items()},
        deployments=deployments,
        serving={name: serving.running(name) for name in deployments},
        callers=tuple(store.deployments.callers()),
    )
