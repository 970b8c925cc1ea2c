"""Judge resources with the policies: findings, waivers, decisions.

Called by ``validate`` and ``audit`` (and later the engine). Every resource is
evaluated against every package that defines finding rules; the input is the
resource as written plus ``_source`` (file, line, column); ``data.modelplane``
holds all resources of the revision and its context. If the engine fails, the
decision is deny: modelplane fails closed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from controller.api.findings import Finding, Rule, Severity, Tally
from controller.loading import LoadedResource
from controller.policy.engine import EngineError, PolicyEngine
from controller.policy.masking import scrub, secret_values
from controller.policy.sources import RuleInfo
from controller.policy.waivers import Waivers


@dataclass(frozen=True)
class Context:
    """What a policy may know about the change besides the resources."""

    revision: str | None = None
    branch: str | None = None
    author: str | None = None
    changed_files: tuple[str, ...] = ()
    approvals: dict[str, Any] = field(default_factory=dict)

    def as_data(self) -> dict[str, Any]:
        return {**asdict(self), "changed_files": list(self.changed_files)}


@dataclass(frozen=True)
class Decision:
    """One line of the decision log."""

    timestamp: str
    revision: str | None
    engine: str
    policy: str  # package
    rule: str  # rule id, e.g. models.medical_min_auc
    resource: str  # Kind/name
    result: str  # deny | warn | waived | pass | error
    message: str
    input_digest: str


@dataclass
class PolicyOutcome(Tally):
    """What the policies decided (failures, warnings, exceptions, skipped); owns the exit code of a policy run."""

    findings: list[Finding] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    rules: dict[str, Rule] = field(default_factory=dict)
    evaluated: int = 0
    skipped: int = 0

    @property
    def failures(self) -> list[Finding]:
        return self.errors

    @property
    def exceptions(self) -> list[Finding]:
        return self.waived

    def exit_code(self, fail_on_warn: bool = False) -> int:
        return 1 if self.failures or (fail_on_warn and self.warnings) else 0


def input_for(item: LoadedResource) -> dict[str, Any]:
    doc = item.document
    return {**item.raw, "_source": {"file": doc.file, "line": doc.line, "column": doc.column}}


def data_for(resources: list[LoadedResource], context: Context) -> dict[str, Any]:
    by_kind: dict[str, dict[str, Any]] = {}
    for item in resources:
        by_kind.setdefault(item.kind, {})[item.name] = item.raw
    return {"resources": by_kind, "context": context.as_data()}


def digest(doc: Any) -> str:
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _messages(value: Any) -> list[tuple[str, str | None]]:
    """(message, field) pairs from a rule's value: strings, or ``{msg, field}`` objects."""
    items = value if isinstance(value, list) else [value] if value not in (None, False) else []
    out = []
    for item in items:
        if isinstance(item, dict):
            out.append((str(item.get("msg", json.dumps(item, sort_keys=True))), item.get("field")))
        elif item is True:
            out.append(("denied", None))
        else:
            out.append((str(item), None))
    return out


def _field_path(text: str) -> tuple[str | int, ...]:
    """``spec.gates[0].threshold`` -> ("spec", "gates", 0, "threshold")."""
    parts: list[str | int] = []
    for piece in text.replace("]", "").split("."):
        name, *indexes = piece.split("[")
        if name:
            parts.append(name)
        parts.extend(int(i) for i in indexes if i.isdigit())
    return tuple(parts)


def _exception_names(value: Any) -> set[str]:
    names: set[str] = set()
    for item in value or []:
        names.update(item if isinstance(item, list) else [item])
    return {str(n) for n in names}


def evaluate(
    engine: PolicyEngine,
    resources: list[LoadedResource],
    *,
    context: Context | None = None,
    today: date | None = None,
    skipped: int = 0,
) -> PolicyOutcome:
    context = context or Context()
    today = today or datetime.now(UTC).date()
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    outcome = PolicyOutcome(skipped=skipped)

    def decide(item: LoadedResource, rule_id: str, package: str, result: str, message: str, doc_digest: str) -> None:
        outcome.decisions.append(
            Decision(now, context.revision, engine.name, package, rule_id, item.ref, result, message, doc_digest)
        )

    try:
        rules = [r for r in engine.rules() if r.is_finding]
        engine.set_data(data_for(resources, context))
    except EngineError as exc:
        for item in resources:
            outcome.findings.append(_engine_failure(item, "*", str(exc)))
            decide(item, "*", "*", "error", str(exc), "")
        return outcome
    outcome.rules = {
        r.rule_id: Rule(r.rule_id, f"{r.package}: {r.name}", f"Defined at {r.file}:{r.line}.") for r in rules
    }
    by_package: dict[str, list[RuleInfo]] = {}
    for rule in rules:
        by_package.setdefault(rule.package, []).append(rule)
    waivers = Waivers(resources, today)

    for item in resources:
        doc = input_for(item)
        doc_digest = digest(doc)
        secrets: set[str] | None = None  # found only if a message needs scrubbing
        outcome.evaluated += 1
        try:
            results = engine.decide(doc)
        except EngineError as exc:
            outcome.findings.append(_engine_failure(item, "*", str(exc)))
            decide(item, "*", "*", "error", str(exc), doc_digest)
            continue
        for package, package_rules in sorted(by_package.items()):
            result = results.get(package, {})
            excepted = _exception_names(result.get("exception"))
            for rule in package_rules:
                fired = _messages(result.get(rule.name))
                if not fired:
                    decide(item, rule.rule_id, package, "pass", "", doc_digest)
                    continue
                severity = Severity.WARNING if rule.name.startswith("warn") else Severity.ERROR
                suffix = rule.name.partition("_")[2] or rule.name
                waiver = waivers.waiver_for(rule.rule_id, item.ref)
                waived_by = (
                    f"exception rule in package {package}" if suffix in excepted else waiver.label() if waiver else None
                )
                for message, field_text in fired:
                    if secrets is None:
                        secrets = secret_values(item.raw)
                    message = scrub(message, secrets)
                    path = _field_path(field_text) if isinstance(field_text, str) else ()
                    outcome.findings.append(
                        Finding(
                            rule.rule_id,
                            message,
                            item.document.location(path),
                            severity,
                            resource=item.ref,
                            field=field_text if isinstance(field_text, str) else None,
                            waived_by=waived_by,
                        )
                    )
                    result_word = "waived" if waived_by else ("warn" if severity == Severity.WARNING else "deny")
                    decide(item, rule.rule_id, package, result_word, message, doc_digest)
    outcome.findings.extend(waivers.problems({r.rule_id for r in rules}))
    return outcome


def _engine_failure(item: LoadedResource, package: str, error: str) -> Finding:
    return Finding(
        "policy-engine-error",
        f"policy engine failed on package '{package}': {error}; denied (modelplane fails closed)",
        item.document.location(()),
        resource=item.ref,
    )
