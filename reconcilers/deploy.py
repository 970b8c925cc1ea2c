"""The deploy reconciler: what a local InferenceService's server must run, from its spec.

Pure: it turns the spec, the registered versions chosen for each variant, the
callers and the data the access policy sees into the serving configuration
(:class:`~controller.backends.serving.config.ServiceConfig`) that the local
serving target runs. ``replicas.min`` replicas serve (at least one while the
service is called); with ``min: 0`` a replica that goes ``scaleToZeroAfter``
without a call stops, and the next call starts one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.api import InferenceService
from controller.api.common import duration_seconds
from controller.backends.serving.config import Caller, ServiceConfig, Variant


@dataclass(frozen=True)
class Served:
    """A registered version chosen for a variant."""

    model: str
    version: int
    digest: str


def service_config(
    service: InferenceService,
    artifacts: Path,
    stable: Served,
    *,
    canary: tuple[Served, float] | None = None,
    shadow: Served | None = None,
    callers: list[tuple[str, str, tuple[str, ...]]],
    access_data: dict[str, Any],
) -> ServiceConfig:
    """The configuration for ``service`` serving ``stable`` (and a canary taking its
    weight in percent of the calls, and a shadow seeing ``spec.shadow.percent`` of them)."""
    spec = service.spec
    variants = [Variant("stable", stable.model, stable.version, stable.digest)]
    if canary is not None:
        served, weight = canary
        variants.append(Variant("canary", served.model, served.version, served.digest, weight))
    if shadow is not None and spec.shadow is not None:
        variants.append(Variant("shadow", shadow.model, shadow.version, shadow.digest, float(spec.shadow.percent)))
    return ServiceConfig(
        service=service.name,
        environment=str(spec.environment),
        artifacts=str(artifacts.resolve()),
        variants=tuple(variants),
        callers=tuple(Caller(name, sha, groups) for name, sha, groups in callers),
        access_data=access_data,
        replicas=max(1, spec.replicas.min),
        idle_seconds=duration_seconds(spec.replicas.scaleToZeroAfter) if spec.replicas.min == 0 else None,
    )
