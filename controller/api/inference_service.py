"""``InferenceService``: how a registered model version is served."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, model_validator

from controller.api.common import (
    DNSLabel,
    Duration,
    NonEmptyStr,
    Percent,
    Reference,
    Resource,
    StrictModel,
    exactly_one,
    one_of_schema,
)


class Stage(StrEnum):
    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"


class ModelSelector(StrictModel):
    model_config = StrictModel.model_config | {"json_schema_extra": one_of_schema("stage", "alias", "version")}

    name: DNSLabel = Field(description="Name of the Model.")
    stage: Literal[Stage.STAGING, Stage.PRODUCTION] | None = Field(
        default=None, description="Serve whatever version holds this stage in the registry."
    )
    alias: DNSLabel | None = Field(
        default=None, description="Serve whatever version this registry alias points at ('modelplane registry alias')."
    )
    version: Annotated[int, Field(ge=1)] | None = Field(default=None, description="Pin one version.")

    @model_validator(mode="after")
    def _one_selector(self) -> ModelSelector:
        exactly_one(self, ("stage", "alias", "version"))
        return self


class Replicas(StrictModel):
    min: Annotated[int, Field(ge=0, le=1000)] = Field(default=1, description="0 means scale to zero.")
    max: Annotated[int, Field(ge=1, le=1000)] = 1
    scaleToZeroAfter: Duration = Field(
        default="5m", description="With min 0: how long the service may go without a call before its server stops."
    )

    @model_validator(mode="after")
    def _ordered(self) -> Replicas:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


class Autoscaling(StrictModel):
    metric: Literal["concurrency", "rps", "cpu", "memory"] = "concurrency"
    target: Annotated[float, Field(gt=0)]


class SLO(StrictModel):
    latencyP99: Duration | None = Field(default=None, description="Highest allowed p99 latency.")
    errorRate: Percent | None = Field(default=None, description="Highest allowed share of failed requests.")


class CanaryAnalysis(StrictModel):
    interval: Duration = Field(default="1m", description="How long each step is observed.")
    maxLatencyP99: Duration | None = None
    maxErrorRate: Percent | None = None
    minRequests: Annotated[int, Field(ge=0)] = 100


class Canary(StrictModel):
    steps: Annotated[list[Annotated[float, Field(gt=0, le=100)]], Field(min_length=1)] = Field(
        description="Traffic percentages, increasing."
    )
    analysis: CanaryAnalysis | None = None

    @model_validator(mode="after")
    def _increasing(self) -> Canary:
        if any(b <= a for a, b in zip(self.steps, self.steps[1:], strict=False)):
            raise ValueError(f"canary steps must increase, got {self.steps}")
        return self


class Shadow(StrictModel):
    model: ModelSelector
    percent: Percent = 100


class Access(StrictModel):
    groups: list[NonEmptyStr] = Field(default_factory=list, description="Groups allowed to call the model.")
    requireConsent: bool = Field(default=False, description="Callers must present GDPR consent.")


class Runtime(StrEnum):
    SKLEARN = "sklearn"
    XGBOOST = "xgboost"
    LIGHTGBM = "lightgbm"


class InferenceServiceSpec(StrictModel):
    model: ModelSelector
    runtime: Runtime = Runtime.SKLEARN
    protocol: Literal["v1", "v2"] = Field(
        "v1",
        description="KServe's protocol for the service on Kubernetes (protocolVersion). Served locally, "
        "a service answers both V1 and V2.",
    )
    environment: Environment = Environment.DEVELOPMENT
    target: Literal["local", "kubernetes"] = "local"
    replicas: Replicas = Field(default_factory=Replicas)
    autoscaling: Autoscaling | None = None
    slo: SLO | None = None
    canary: Canary | None = None
    shadow: Shadow | None = None
    access: Access = Field(default_factory=Access)
    storageUri: Annotated[str, Field(pattern=r"^[a-z][a-z0-9+.-]*://\S+$")] | None = None


class InferenceService(Resource):
    """Serves a model version through KServe, locally or on Kubernetes."""

    kind: Literal["InferenceService"]
    spec: InferenceServiceSpec

    def references(self) -> list[Reference]:
        refs = [Reference(kind="Model", name=self.spec.model.name, path=("spec", "model", "name"))]
        if self.spec.shadow:
            refs.append(
                Reference(kind="Model", name=self.spec.shadow.model.name, path=("spec", "shadow", "model", "name"))
            )
        return refs
