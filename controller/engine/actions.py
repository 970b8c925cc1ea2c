"""The action vocabulary: what a planner asks for, as plain JSON-serialisable records.

An :class:`Action` names one step (``kind``) on one resource, the inputs it was
planned from (by digest or key, never data), and its idempotency key: the key
its effect is recorded under in the effects ledger. ``modelplane step
ACTION.json`` runs one; the local executor runs a plan's in order. A
:class:`Note` says where a resource stands when it needs no action.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from controller.api.status import ActionKind, ConditionType, Reason

Input = str | int | float | bool | None


class ActionFormatError(ValueError):
    """An action record that is not one: the message names what is wrong."""


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    resource: str  # "Kind/name"
    key: str  # idempotency key: the effects ledger's key for this action's effect
    reason: str
    inputs: dict[str, Input] = field(default_factory=dict)
    after: tuple[str, ...] = ()  # keys of actions that must succeed first
    revision: str | None = None

    @property
    def name(self) -> str:
        return self.resource.split("/", 1)[1]

    def describe(self) -> str:
        stage = self.inputs.get("stage")
        what = f"{self.kind} {self.name}" + (f" -> {stage}" if stage and self.kind == ActionKind.PROMOTE else "")
        return f"{what}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "action": str(self.kind),
            "resource": self.resource,
            "key": self.key,
            "reason": self.reason,
            "inputs": dict(self.inputs),
            "after": list(self.after),
            "revision": self.revision,
        }
        if self.kind == ActionKind.PROMOTE:
            out["stage"] = self.inputs["stage"]
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: Any) -> Action:
        if not isinstance(data, dict):
            raise ActionFormatError("an action is a JSON object")
        try:
            kind = ActionKind(data["action"])
        except KeyError:
            raise ActionFormatError("missing 'action' (one of: " + ", ".join(ActionKind) + ")") from None
        except ValueError:
            raise ActionFormatError(
                f"unknown action {data['action']!r} (one of: " + ", ".join(ActionKind) + ")"
            ) from None
        for name in ("resource", "key", "reason"):
            if not isinstance(data.get(name), str) or not data[name]:
                raise ActionFormatError(f"'{name}' must be a non-empty string")
        if "/" not in data["resource"]:
            raise ActionFormatError("'resource' must be 'Kind/name'")
        inputs = data.get("inputs", {})
        if not isinstance(inputs, dict) or not all(
            isinstance(v, str | int | float | bool) or v is None for v in inputs.values()
        ):
            raise ActionFormatError("'inputs' must map names to strings, numbers, booleans or null")
        after = data.get("after", [])
        if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
            raise ActionFormatError("'after' must be a list of keys")
        revision = data.get("revision")
        if revision is not None and not isinstance(revision, str):
            raise ActionFormatError("'revision' must be a string or null")
        return cls(kind, data["resource"], data["key"], data["reason"], inputs, tuple(after), revision)

    @classmethod
    def from_json(cls, text: str) -> Action:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ActionFormatError(f"not JSON: {exc}") from None


@dataclass(frozen=True)
class Note:
    """Where a resource stands when it needs no action (its status)."""

    condition: ConditionType
    status: bool
    reason: Reason
    message: str


@dataclass
class Plan:
    revision: str | None
    actions: list[Action] = field(default_factory=list)
    notes: dict[str, Note] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.actions

    def keys(self) -> set[str]:
        return {a.key for a in self.actions}

    def stalled(self) -> dict[str, Note]:
        return {ref: n for ref, n in self.notes.items() if n.condition == ConditionType.STALLED}

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "actions": [a.to_dict() for a in self.actions],
            "resources": {
                ref: {
                    "condition": str(n.condition),
                    "status": n.status,
                    "reason": str(n.reason),
                    "message": n.message,
                }
                for ref, n in sorted(self.notes.items())
            },
        }
