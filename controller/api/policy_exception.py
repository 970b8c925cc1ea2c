"""``PolicyException``: a waiver of named policy rules for named resources, until it expires."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field, model_validator

from controller.api.common import NonEmptyStr, Reference, Resource, ResourceRef, StrictModel

RULE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"


class PolicyExceptionSpec(StrictModel):
    rules: Annotated[list[Annotated[str, Field(pattern=RULE_PATTERN)]], Field(min_length=1)] = Field(
        description="Waived rules as '<package>.<rule>', e.g. 'models.medical_min_auc'."
    )
    resources: Annotated[list[ResourceRef], Field(min_length=1)]
    reason: NonEmptyStr
    approvedBy: NonEmptyStr
    approvedAt: date | None = None
    expires: date = Field(description="Last day the waiver applies (YYYY-MM-DD).")

    @model_validator(mode="after")
    def _expires_after_approval(self) -> PolicyExceptionSpec:
        if self.approvedAt and self.expires < self.approvedAt:
            raise ValueError(f"expires ({self.expires}) is before approvedAt ({self.approvedAt})")
        return self

    def active_on(self, day: date) -> bool:
        return day <= self.expires


class PolicyException(Resource):
    """Waives policy rules for resources, with reason, approver and expiry."""

    kind: Literal["PolicyException"]
    spec: PolicyExceptionSpec

    def references(self) -> list[Reference]:
        return [
            Reference(kind=r.kind, name=r.name, path=("spec", "resources", i, "name"))
            for i, r in enumerate(self.spec.resources)
        ]
