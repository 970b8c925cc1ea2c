"""``ChaosExperiment``: a steady-state hypothesis, faults, a blast radius and rollbacks.

Run through chaostoolkit by the chaos reconciler; the names follow its domain
model (hypothesis, method, rollbacks) but every part is typed.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from controller.api.common import (
    DNSLabel,
    Duration,
    NonEmptyStr,
    Operator,
    Percent,
    Reference,
    Resource,
    StrictModel,
)


class ChaosTarget(StrictModel):
    service: DNSLabel = Field(description="Name of the InferenceService under test.")


class Probe(StrictModel):
    name: DNSLabel
    metric: Literal["latencyP99", "latencyP50", "errorRate", "availability"]
    operator: Operator = Operator.LE
    threshold: float = Field(description="Seconds for latency, percent for rates.")
    window: Duration = "30s"


class SteadyState(StrictModel):
    title: NonEmptyStr
    probes: Annotated[list[Probe], Field(min_length=1)]


class KillReplica(StrictModel):
    type: Literal["kill-replica"]
    count: Annotated[int, Field(ge=1)] = 1


class AddLatency(StrictModel):
    type: Literal["add-latency"]
    delay: Duration
    duration: Duration = "30s"


class FailDependency(StrictModel):
    type: Literal["fail-dependency"]
    dependency: NonEmptyStr
    duration: Duration = "30s"


Fault = Annotated[KillReplica | AddLatency | FailDependency, Field(discriminator="type")]


class BlastRadius(StrictModel):
    maxReplicas: Annotated[int, Field(ge=1)] = Field(description="Most replicas a fault may touch.")
    maxTrafficPercent: Percent = Field(description="Most traffic a fault may affect.")


class Rollback(StrictModel):
    action: Literal["restore-replicas", "remove-latency", "restore-dependency", "rollback-deployment"]


class ChaosExperimentSpec(StrictModel):
    target: ChaosTarget
    steadyState: SteadyState
    faults: Annotated[list[Fault], Field(min_length=1)]
    blastRadius: BlastRadius | None = None
    rollbacks: list[Rollback] = Field(default_factory=list)
    schedule: Annotated[str, Field(pattern=r"^(@(hourly|daily|weekly|monthly)|(\S+\s+){4}\S+)$")] | None = Field(
        default=None, description="Cron expression or @hourly/@daily/@weekly/@monthly; on every deploy when omitted."
    )


class ChaosExperiment(Resource):
    """An experiment against an InferenceService, run through chaostoolkit."""

    kind: Literal["ChaosExperiment"]
    spec: ChaosExperimentSpec

    def references(self) -> list[Reference]:
        return [Reference(kind="InferenceService", name=self.spec.target.service, path=("spec", "target", "service"))]
