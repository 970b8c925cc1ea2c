"""Waivers: ``PolicyException`` resources and conftest-style ``exception`` rules.

Called by :mod:`controller.policy.evaluate`. A waiver applies only to the rules
and resources it names, only until it expires; an expired waiver is reported,
and waived findings are counted, never hidden.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from controller.api import PolicyException
from controller.api.findings import Finding, Severity
from controller.api.policy_exception import PolicyExceptionSpec
from controller.loading import LoadedResource


@dataclass(frozen=True)
class Waiver:
    source: LoadedResource  # the PolicyException

    @property
    def spec(self) -> PolicyExceptionSpec:
        resource = self.source.resource
        assert isinstance(resource, PolicyException)
        return resource.spec

    def active_on(self, day: date) -> bool:
        return self.spec.active_on(day)

    def label(self) -> str:
        return f"{self.source.ref} (approved by {self.spec.approvedBy}, until {self.spec.expires})"


class Waivers:
    def __init__(self, resources: list[LoadedResource], today: date) -> None:
        self.today = today
        self.all = [Waiver(r) for r in resources if r.kind == "PolicyException"]
        self._index: dict[tuple[str, str], Waiver] = {}  # (rule id, "Kind/name") -> first active waiver
        for waiver in self.all:
            if waiver.active_on(today):
                for rule_id in waiver.spec.rules:
                    for ref in waiver.spec.resources:
                        self._index.setdefault((rule_id, f"{ref.kind}/{ref.name}"), waiver)

    def waiver_for(self, rule_id: str, resource_ref: str) -> Waiver | None:
        return self._index.get((rule_id, resource_ref))

    def problems(self, known_rule_ids: set[str]) -> list[Finding]:
        """Expired waivers, and waivers naming rules no policy defines."""
        out = []
        for waiver in self.all:
            spec = waiver.spec
            for i, rule_id in enumerate(spec.rules):
                if rule_id not in known_rule_ids:
                    out.append(
                        Finding(
                            "waiver-unknown-rule",
                            f"waives '{rule_id}', which no policy defines; it waives nothing",
                            waiver.source.location(("spec", "rules", i)),
                            Severity.WARNING,
                            resource=waiver.source.ref,
                            field=f"spec.rules[{i}]",
                        )
                    )
            if not waiver.active_on(self.today):
                out.append(
                    Finding(
                        "waiver-expired",
                        f"expired on {spec.expires}; it no longer waives {', '.join(spec.rules)} "
                        f"for {', '.join(f'{r.kind}/{r.name}' for r in spec.resources)}",
                        waiver.source.location(("spec", "expires")),
                        Severity.WARNING,
                        resource=waiver.source.ref,
                        field="spec.expires",
                    )
                )
        return out
