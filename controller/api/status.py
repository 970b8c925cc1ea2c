"""Status and conditions, Flux style.

Written by the engine (never in git): each resource carries conditions such
as ``Ready``, ``Reconciling`` and ``Stalled`` with a CamelCase reason and a
human message, plus the revisions it has seen and applied.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from controller.api.common import StrictModel


class ConditionType(StrEnum):
    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Reason(StrEnum):
    """Why a condition has its status, or why a step ended as it did; CamelCase as in Kubernetes."""

    SUCCEEDED = "Succeeded"
    PROGRESSING = "Progressing"
    VALIDATION_FAILED = "ValidationFailed"
    POLICY_DENIED = "PolicyDenied"
    DATA_CONTRACT_FAILED = "DataContractFailed"
    GATE_FAILED = "GateFailed"
    AWAITING_APPROVAL = "AwaitingApproval"
    TRAINING = "Training"
    TRAINING_FAILED = "TrainingFailed"
    CANARY_ROLLED_BACK = "CanaryRolledBack"
    DEPENDENCY_NOT_READY = "DependencyNotReady"
    DATA_UNAVAILABLE = "DataUnavailable"
    DATA_CHANGED = "DataChanged"
    SPEC_CHANGED = "SpecChanged"
    STAGE_CHANGED = "StageChanged"
    ARTIFACT_CORRUPT = "ArtifactCorrupt"
    ARTIFACT_MISSING = "ArtifactMissing"
    RETRYING = "Retrying"
    RECONCILE_FAILED = "ReconcileFailed"
    SERVING_FAILED = "ServingFailed"
    NOT_RECONCILED = "NotReconciled"


class ActionKind(StrEnum):
    """What one step of the reconcile loop does (one action, one step function)."""

    DATA_GATE = "data-gate"
    TRAIN = "train"
    METRIC_GATE = "metric-gate"
    REGISTER = "register"
    PROMOTE = "promote"
    MODEL_CARD = "model-card"
    DEPLOY = "deploy"
    CANARY = "canary"


class Stage(StrEnum):
    """A model version's stage in the registry."""

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"


class RunStatus(StrEnum):
    RUNNING = "running"
    TRAINED = "trained"
    PASSED = "passed"
    GATE_FAILED = "gate-failed"
    FAILED = "failed"


class OutcomeKind(StrEnum):
    """How a step ended: done; stuck until its inputs change (or ``--retry``); try again later."""

    SUCCEEDED = "Succeeded"
    STALLED = "Stalled"
    RETRY = "Retry"


class Condition(StrictModel):
    type: ConditionType
    status: ConditionStatus
    reason: Reason
    message: str = ""
    observedGeneration: str | None = Field(default=None, description="The spec digest this condition was computed for.")
    lastTransitionTime: datetime


class ResourceStatus(StrictModel):
    conditions: list[Condition] = Field(default_factory=list)
    observedRevision: str | None = Field(default=None, description="The git revision last seen for this resource.")
    lastAppliedRevision: str | None = Field(
        default=None, description="The git revision whose spec was last applied successfully."
    )

    def condition(self, type_: ConditionType) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)
