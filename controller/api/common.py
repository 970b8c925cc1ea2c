"""Building blocks shared by every resource kind.

Imported by the per-kind modules in this package; nothing outside
``controller.api`` should need to know how a duration is parsed.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)

API_GROUP = "modelplane.io"
API_VERSION = f"{API_GROUP}/v1alpha1"

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# Kubernetes label keys: optional DNS-subdomain prefix, then a name segment.
LABEL_KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"


class StrictModel(BaseModel):
    """A model that rejects unknown fields: a typo must never pass silently."""

    model_config = ConfigDict(extra="forbid", populate_by_name=False, frozen=True, defer_build=True)


DNSLabel = Annotated[
    str,
    StringConstraints(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN),
    Field(
        description="A DNS label (RFC 1123): lower-case letters, digits and '-', "
        "starting and ending with a letter or digit, at most 63 characters."
    ),
]

NonEmptyStr = Annotated[str, StringConstraints(min_length=1, strip_whitespace=False)]

_DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
DURATION_PATTERN = r"^([0-9]+(ms|s|m|h|d))+$"


def duration_seconds(value: str) -> float:
    """Seconds in a duration such as ``90s``, ``5m``, ``1h30m``, ``250ms`` or ``30d``."""
    match = _DURATION_RE.match(value)
    if not match or not value:
        raise ValueError(f"invalid duration {value!r}")
    days, hours, minutes, seconds, millis = (int(g) if g else 0 for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds + millis / 1000


def _check_duration(value: str) -> str:
    if duration_seconds(value) <= 0:
        raise ValueError("a duration must be greater than zero")
    return value


Duration = Annotated[
    str,
    StringConstraints(pattern=DURATION_PATTERN),
    AfterValidator(_check_duration),
    Field(
        description="A duration: one or more of <n>d, <n>h, <n>m, <n>s, <n>ms in that "
        "order, e.g. '30s', '5m', '1h30m', '250ms', '365d'.",
        examples=["30s", "5m", "250ms"],
    ),
]

Percent = Annotated[
    float,
    Field(ge=0, le=100, description="A percentage between 0 and 100."),
]

Fraction = Annotated[
    float,
    Field(gt=0, lt=1, description="A fraction strictly between 0 and 1."),
]


class Operator(StrEnum):
    """Comparison operators for gates and thresholds."""

    GE = ">="
    GT = ">"
    LE = "<="
    LT = "<"
    EQ = "=="

    def holds(self, observed: float, threshold: float) -> bool:
        return {
            ">=": observed >= threshold,
            ">": observed > threshold,
            "<=": observed <= threshold,
            "<": observed < threshold,
            "==": observed == threshold,
        }[self.value]


class ObjectMeta(StrictModel):
    name: DNSLabel
    labels: dict[
        Annotated[str, StringConstraints(pattern=LABEL_KEY_PATTERN, max_length=317)],
        Annotated[str, StringConstraints(pattern=LABEL_VALUE_PATTERN, max_length=63)],
    ] = Field(default_factory=dict, description="Identifying key/value pairs used by policies and selectors.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Free-form notes for tools and people.")


class Resource(StrictModel):
    """The Kubernetes-style envelope every kind shares."""

    apiVersion: Literal["modelplane.io/v1alpha1"] = Field(description=f"Always '{API_VERSION}'.")
    kind: str
    metadata: ObjectMeta
    spec: Any

    def references(self) -> list[Reference]:
        """The resources this one points at, with the field path of each pointer."""
        return []

    @property
    def name(self) -> str:
        return self.metadata.name


class Reference(BaseModel):
    """One pointer from a resource field to another resource."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    kind: str
    name: str
    path: tuple[str | int, ...]


class ResourceRef(StrictModel):
    """A reference to any resource by kind and name."""

    kind: Annotated[str, Field(description="The kind of the referenced resource, e.g. 'Model'.")]
    name: DNSLabel


def exactly_one(model: BaseModel, fields: tuple[str, ...]) -> None:
    """Raise unless exactly one of ``fields`` is set on ``model``."""
    present = [f for f in fields if getattr(model, f) is not None]
    if len(present) != 1:
        names = ", ".join(f"'{f}'" for f in fields)
        got = ", ".join(f"'{f}'" for f in present) or "none"
        raise ValueError(f"set exactly one of {names} (got {got})")


def one_of_schema(*fields: str) -> dict[str, Any]:
    """JSON-Schema snippet saying exactly one of ``fields`` must be present."""
    return {"oneOf": [{"required": [f]} for f in fields]}
