"""Findings: what a check found, where, and what to do about it.

Produced by the loader (and later the policy engine), consumed by the
formatters in ``controller.output``. The :class:`Report` owns the exit code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True)
class Rule:
    """A kind of finding; its id is stable (SARIF rule ids, docs anchors)."""

    id: str
    summary: str
    help: str


# Every rule the loader can report, in the order the docs list them.
RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule("yaml-syntax", "YAML cannot be parsed", "Fix the YAML syntax at the position shown."),
        Rule("tab-indent", "Tab used for indentation", "YAML allows only spaces for indentation; replace the tab."),
        Rule("duplicate-key", "Key appears twice in one mapping", "Remove or rename one of the two keys."),
        Rule("empty-document", "Document or file holds no resource", "Remove the stray '---' or add a resource."),
        Rule(
            "not-a-mapping",
            "Document is not a mapping",
            "A resource is a mapping with apiVersion, kind, metadata and spec.",
        ),
        Rule("file-too-large", "File exceeds the size limit", "Split the file, or raise --max-file-bytes."),
        Rule("too-deep", "Nesting exceeds the depth limit", "Flatten the document; specs never need this depth."),
        Rule("alias-bomb", "YAML aliases expand beyond the limit", "Write the values out instead of nesting aliases."),
        Rule(
            "unsupported-tag",
            "YAML tag is not allowed",
            "Remove the explicit tag; only plain YAML values are accepted.",
        ),
        Rule("unknown-api-version", "apiVersion is not known", "Use one of the apiVersions listed in the message."),
        Rule("unknown-kind", "kind is not known", "Use one of the kinds listed in the message."),
        Rule("unknown-field", "Field is not part of the schema", "Check the spelling; see docs/spec-reference.md."),
        Rule("missing-field", "Required field is missing", "Add the field named in the message."),
        Rule("wrong-type", "Value has the wrong type", "Write a value of the type named in the message."),
        Rule("invalid-value", "Value is not allowed", "Write one of the values the message names."),
        Rule(
            "duplicate-name", "Two resources of one kind share a name", "Rename one of them; names are unique per kind."
        ),
        Rule("dangling-reference", "Reference names no resource", "Create the referenced resource or fix the name."),
        Rule("reference-cycle", "References form a cycle", "Break the cycle; references must form a DAG."),
        Rule("io-error", "File cannot be read", "Check the path and its permissions."),
        Rule(
            "policy-engine-error",
            "The policy engine failed; the decision is deny",
            "Fix the engine or policy error named in the message; modelplane fails closed.",
        ),
        Rule(
            "waiver-expired",
            "A PolicyException has expired and no longer applies",
            "Renew the waiver with a new approval and expiry, or fix the resource.",
        ),
        Rule(
            "waiver-unknown-rule",
            "A PolicyException names a rule no policy defines",
            "Use a rule id '<package>.<rule>' that exists in the policy set.",
        ),
        Rule(
            "waiver-too-long",
            "A PolicyException lasts longer than the platform allows; it waives nothing",
            "Bring expires within waiverMaxDays of approvedAt (modelplane.yaml; default 180) and renew it later.",
        ),
        Rule(
            "waiver-not-yet-approved",
            "A PolicyException's approvedAt is in the future; it waives nothing yet",
            "Set approvedAt to the day the waiver was approved.",
        ),
        Rule(
            "waiver-without-approver",
            "A policy's own exception rule waived a finding; nobody approved it",
            "File a PolicyException with a reason, an approver and an expiry instead; --strict-waivers refuses these.",
        ),
        Rule(
            "policy-timeout",
            "A policy decision took longer than its time limit; the decision is deny",
            "Make the named package's rules cheaper, or raise --policy-timeout; modelplane fails closed.",
        ),
        Rule(
            "policy-memory",
            "A policy decision went over its memory limit (or its process died); the decision is deny",
            "Make the named package's rules allocate less; modelplane fails closed.",
        ),
        Rule(
            "policy-not-decided",
            "Decisions were stopped for several resources, so the rest were not decided; the decision is deny",
            "Fix the rules named in the policy-timeout or policy-memory findings and run again.",
        ),
    )
}


@dataclass(frozen=True)
class Location:
    file: str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Finding:
    rule: str
    message: str
    location: Location
    severity: Severity = Severity.ERROR
    resource: str | None = None  # "Kind/name"
    field: str | None = None  # dotted path, e.g. "spec.gates[0].operator"
    waived_by: str | None = None  # e.g. "PolicyException/retention-waiver (until 2027-04-30)"

    @property
    def help(self) -> str:
        rule = RULES.get(self.rule)
        return rule.help if rule else ""


class Tally:
    """Counts over ``self.findings``: waived findings count apart from errors and warnings."""

    findings: list[Finding]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == Severity.ERROR and not f.waived_by]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == Severity.WARNING and not f.waived_by]

    @property
    def waived(self) -> list[Finding]:
        return [f for f in self.findings if f.waived_by]


@dataclass
class Report(Tally):
    """Everything one check produced; decides the exit code."""

    findings: list[Finding] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    resources: int = 0
    fail_on_warn: bool = False
    rules: dict[str, Rule] = field(default_factory=dict)  # rules beyond RULES, e.g. policy rules
    skipped: int = 0  # resources that policies could not judge (they failed to load)

    def rule(self, rule_id: str) -> Rule:
        return self.rules.get(rule_id) or RULES.get(rule_id) or Rule(rule_id, rule_id, "")

    @property
    def exit_code(self) -> int:
        if self.errors or (self.fail_on_warn and self.warnings):
            return 1
        return 0

    def sorted_findings(self) -> list[Finding]:
        return sorted(self.findings, key=lambda f: (f.location.file, f.location.line, f.location.column, f.rule))
