"""``PolicyException``: a waiver of named policy rules for named resources, until it expires.

A waiver is a decision by a person, so its approver is a real identity (as
approvals are: trimmed, case-folded, matching a pattern) and its reason real
text, and it has a start (``approvedAt``) and an end (``expires``): how long a
waiver may last is the platform's setting (the project file's ``waiverMaxDays``),
checked where policies judge, since it depends on the project.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from controller.api.common import Reference, Resource, ResourceRef, StrictModel
from controller.api.identity import normalise
from controller.api.located import field_error

RULE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"
MIN_REASON_CHARS = 12
# What people type to get past a required field.
PLACEHOLDERS = frozenset({"todo", "tbd", "n/a", "na", "none", "fixme", "xxx", "test", "temp", "reason", "waiver", "-"})
# Words that mark a reason as not written yet, wherever they appear in it.
NOT_YET_WRITTEN = frozenset({"todo", "tbd", "fixme", "placeholder", "lorem", "ipsum", "asdf", "qwerty", "xxx", "wip"})
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


# Spellings of the markers with separators ("T.O.D.O", "fix me", "place-holder", "TBC");
# not "to do", which real sentences use.
_NOT_YET_WRITTEN_SPELT = re.compile(r"\b(?:t[._-]*o[._-]*d[._-]*o|fix[\W_]*me|place[\W_]*holder|tb[cd])\b")
_INVISIBLE = re.compile(r"[\u200b-\u200f\u2060\ufeff]")


def _reason(value: str) -> str:
    value = _INVISIBLE.sub("", unicodedata.normalize("NFKC", value))
    text = " ".join(value.split())
    if text.casefold().strip(".!") in PLACEHOLDERS or len(text) < MIN_REASON_CHARS or len(text.split()) < 2:
        raise ValueError(
            f"reason {value.strip()!r} does not say why: write a sentence a reviewer can check "
            f"(at least {MIN_REASON_CHARS} characters and two words), e.g. 'Public, de-identified data; no "
            "retention clock applies.'"
        )
    words = {w.casefold() for w in re.findall(r"[^\W\d_]+", text)}
    unwritten = sorted(words & NOT_YET_WRITTEN) or [m.group() for m in _NOT_YET_WRITTEN_SPELT.finditer(text.casefold())]
    if unwritten:
        raise ValueError(
            f"reason {value.strip()!r} is not written yet ({', '.join(unwritten)}): say why the rule does not apply"
        )
    meaningful = {w for w in words if w not in PLACEHOLDERS and len(set(w)) > 1}
    if len(meaningful) < 2:
        raise ValueError(
            f"reason {value.strip()!r} has no words that say why (placeholders and repeated letters do not "
            "count): say why the rule does not apply"
        )
    return text


class PolicyExceptionSpec(StrictModel):
    rules: Annotated[list[Annotated[str, Field(pattern=RULE_PATTERN)]], Field(min_length=1)] = Field(
        description="Waived rules as '<package>.<rule>', e.g. 'models.medical_min_auc'."
    )
    resources: Annotated[list[ResourceRef], Field(min_length=1)]
    reason: str = Field(description="Why the rules do not apply: a sentence a reviewer can check.")
    approvedBy: str = Field(
        description="Who approved the waiver, as an identity (e.g. alice or dpo@example.org; compared "
        "case-folded and trimmed)."
    )
    approvedAt: date = Field(description="The day the waiver was approved (YYYY-MM-DD); its lifetime starts here.")
    expires: date = Field(
        description="Last day the waiver applies (YYYY-MM-DD); at most the project's waiverMaxDays "
        "(default 180) after approvedAt."
    )

    @field_validator("reason")
    @classmethod
    def _real_reason(cls, value: str) -> str:
        return _reason(value)

    @field_validator("approvedBy")
    @classmethod
    def _identity(cls, value: str) -> str:
        return normalise(value)

    @field_validator("approvedAt", "expires", mode="before")
    @classmethod
    def _a_day(cls, value: object) -> object:
        if (
            isinstance(value, datetime)
            or not isinstance(value, str | date)
            or (isinstance(value, str) and not _DAY.match(value.strip()))
        ):
            raise ValueError(f"{value!r} is not a day: write YYYY-MM-DD")
        return value

    @model_validator(mode="after")
    def _expires_after_approval(self) -> PolicyExceptionSpec:
        if self.expires < self.approvedAt:
            raise field_error("expires", message=f"expires ({self.expires}) is before approvedAt ({self.approvedAt})")
        return self

    @property
    def lifetime_days(self) -> int:
        """Days from approval to expiry."""
        return (self.expires - self.approvedAt).days

    def active_on(self, day: date) -> bool:
        return self.approvedAt <= day <= self.expires


class PolicyException(Resource):
    """Waives policy rules for resources, with reason, approver and expiry."""

    kind: Literal["PolicyException"]
    spec: PolicyExceptionSpec

    def references(self) -> list[Reference]:
        return [
            Reference(kind=r.kind, name=r.name, path=("spec", "resources", i, "name"))
            for i, r in enumerate(self.spec.resources)
        ]
