"""Waivers: ``PolicyException`` resources and conftest-style ``exception`` rules.

Called by :mod:`controller.policy.evaluate`. A waiver applies only to the rules
and resources it names, from the day it was approved until it expires, and only
if it lasts no longer than the platform allows (``waiverMaxDays`` in the project
file, default 180 days). An expired, premature or over-long waiver is reported
and waives nothing; waived findings are counted, never hidden.

``exception`` rules inside a policy package are waivers nobody approved: they are
reported as such, and in strict mode (``--strict-waivers``, the default in CI)
they waive nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from controller.api import PolicyException
from controller.api.findings import Finding, Severity
from controller.api.policy_exception import PolicyExceptionSpec
from controller.api.project import DEFAULT_WAIVER_MAX_DAYS
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


@dataclass(frozen=True)
class WaiverRules:
    """The platform's rules for waivers."""

    max_days: int = DEFAULT_WAIVER_MAX_DAYS
    strict: bool = False  # exception rules (no approver) waive nothing


class Waivers:
    def __init__(self, resources: list[LoadedResource], today: date, rules: WaiverRules | None = None) -> None:
        self.today = today
        self.rules = rules or WaiverRules()
        self.all = [Waiver(r) for r in resources if r.kind == "PolicyException"]
        self._index: dict[tuple[str, str], Waiver] = {}  # (rule id, "Kind/name") -> first waiver in force
        for waiver in self.all:
            if self.in_force(waiver):
                for rule_id in waiver.spec.rules:
                    for ref in waiver.spec.resources:
                        self._index.setdefault((rule_id, f"{ref.kind}/{ref.name}"), waiver)

    def in_force(self, waiver: Waiver) -> bool:
        return waiver.active_on(self.today) and waiver.spec.lifetime_days <= self.rules.max_days

    def waiver_for(self, rule_id: str, resource_ref: str) -> Waiver | None:
        return self._index.get((rule_id, resource_ref))

    def exception_rule(self, package: str) -> str | None:
        """How a finding waived by ``package``'s exception rule is labelled; None in
        strict mode, where such rules waive nothing."""
        return None if self.rules.strict else f"exception rule in package {package}, without an approver"

    def problems(self, known_rule_ids: set[str]) -> list[Finding]:
        """Waivers that waive nothing: unknown rules, too long, not yet approved, expired."""
        out = []
        for waiver in self.all:
            spec = waiver.spec
            for i, rule_id in enumerate(spec.rules):
                if rule_id not in known_rule_ids:
                    out.append(
                        _finding(
                            waiver,
                            "waiver-unknown-rule",
                            f"waives '{rule_id}', which no policy defines; it waives nothing",
                            ("spec", "rules", i),
                            Severity.WARNING,
                        )
                    )
            waived = f"{', '.join(spec.rules)} for {', '.join(f'{r.kind}/{r.name}' for r in spec.resources)}"
            if spec.lifetime_days > self.rules.max_days:
                latest = spec.approvedAt + timedelta(days=self.rules.max_days)
                out.append(
                    _finding(
                        waiver,
                        "waiver-too-long",
                        f"lasts {spec.lifetime_days} days ({spec.approvedAt} to {spec.expires}), longer than the "
                        f"{self.rules.max_days} this platform allows (waiverMaxDays in modelplane.yaml), so it "
                        f"waives nothing: set expires to {latest} or earlier, and renew the waiver when it ends",
                        ("spec", "expires"),
                        Severity.ERROR,
                    )
                )
            elif self.today < spec.approvedAt:
                out.append(
                    _finding(
                        waiver,
                        "waiver-not-yet-approved",
                        f"approvedAt ({spec.approvedAt}) is after today ({self.today}); it waives nothing before then",
                        ("spec", "approvedAt"),
                        Severity.ERROR,
                    )
                )
            elif self.today > spec.expires:
                out.append(
                    _finding(
                        waiver,
                        "waiver-expired",
                        f"expired on {spec.expires}; it no longer waives {waived}",
                        ("spec", "expires"),
                        Severity.WARNING,
                    )
                )
        return out


def _finding(waiver: Waiver, rule: str, message: str, path: tuple[str | int, ...], severity: Severity) -> Finding:
    return Finding(
        rule,
        message,
        waiver.source.location(path),
        severity,
        resource=waiver.source.ref,
        field=".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in path).replace(".[", "["),
    )
