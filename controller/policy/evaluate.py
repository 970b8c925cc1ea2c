"""Judge resources with the policies: findings, waivers, decisions.

Called by ``validate`` and ``audit`` through :func:`controller.engine.checks.judge`
(and so by the reconcile loop). Every resource is evaluated against every package
that defines finding rules; the input is the resource as written plus ``_source``
(file, line, column); ``data.modelplane`` holds all resources of the revision and
its context. If the engine fails, the decision is deny: modelplane fails closed.

Linear in the number of resources: each resource is encoded to JSON once (for the
data, its input and its digest) when the engine takes JSON text, as the embedded
engine does; a finding is placed from the positions the loader recorded; the
decision log is kept compact and written out as :class:`Decision` records only
when :attr:`PolicyOutcome.decisions` is read. An engine that allows it decides
in supervised forked processes, where a decision over its time limit is stopped
(:mod:`controller.policy.supervised`), in several at once with ``workers`` > 1
(asked for explicitly, or by a caller such as the CLI through :func:`parallel`);
never from a thread.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from json.decoder import scanstring  # type: ignore[attr-defined]  # the C scanner, exported
from typing import Any

from controller.api.findings import Finding, Rule, Severity, Tally
from controller.loading import LoadedResource
from controller.loading.loader import may_fork
from controller.loading.yaml_reader import Document, canonical_json
from controller.policy.engine import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT, EngineError, PolicyEngine
from controller.policy.masking import scrub, secret_values
from controller.policy.sources import RuleInfo
from controller.policy.supervised import Progress, Supervisor
from controller.policy.waivers import WaiverRules, Waivers

PARALLEL_MIN_RESOURCES = 500  # below this, one decider is enough
_WORKERS: ContextVar[int] = ContextVar("modelplane_policy_workers", default=1)


@contextmanager
def parallel(workers: int) -> Iterator[None]:
    """Let :func:`evaluate` calls made inside this block (and in this thread or task
    only) decide in up to ``workers`` processes, for callers that reach it through
    a function that does not pass ``workers`` on (``judge``). The CLI uses it; a
    library caller passes ``workers`` to :func:`evaluate` instead."""
    token = _WORKERS.set(workers)
    try:
        yield
    finally:
        _WORKERS.reset(token)


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


@dataclass(frozen=True, slots=True)
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


# One resource's decisions, compactly: (ref, input digest, what fired), where what fired
# is ((rule index, result, message), ...) in the order of the rules; every other rule
# passed. An engine failure on the resource is (ref, input digest, message) with a str.
_Record = tuple[str, str, tuple[tuple[int, str, str], ...] | str]


@dataclass
class _DecisionLog:
    """Every decision of one evaluation, a few bytes per resource rather than a
    :class:`Decision` per rule and resource (20 rules x 10,000 resources)."""

    timestamp: str
    revision: str | None
    engine: str
    rules: list[tuple[str, str]] = field(default_factory=list)  # (package, rule id), in evaluation order
    records: list[_Record] = field(default_factory=list)

    def decisions(self) -> list[Decision]:
        out: list[Decision] = []
        add = out.append
        head = (self.timestamp, self.revision, self.engine)
        for ref, input_digest, fired in self.records:
            if isinstance(fired, str):
                add(Decision(*head, "*", "*", ref, "error", fired, input_digest))
                continue
            pending = iter(fired)
            nxt = next(pending, None)
            for index, (package, rule_id) in enumerate(self.rules):
                if nxt is None or nxt[0] != index:
                    add(Decision(*head, package, rule_id, ref, "pass", "", input_digest))
                    continue
                while nxt is not None and nxt[0] == index:
                    add(Decision(*head, package, rule_id, ref, nxt[1], nxt[2], input_digest))
                    nxt = next(pending, None)
        return out


@dataclass
class PolicyOutcome(Tally):
    """What the policies decided (failures, warnings, exceptions, skipped); owns the exit code of a policy run."""

    findings: list[Finding] = field(default_factory=list)
    rules: dict[str, Rule] = field(default_factory=dict)
    evaluated: int = 0
    skipped: int = 0
    _log: _DecisionLog | None = field(default=None, repr=False, compare=False)
    _decisions: list[Decision] | None = field(default=None, repr=False, compare=False)

    @property
    def decisions(self) -> list[Decision]:
        """One record per rule and resource (built on first read: most runs never read it)."""
        if self._decisions is None:
            self._decisions = self._log.decisions() if self._log is not None else []
        return self._decisions

    @property
    def failures(self) -> list[Finding]:
        return self.errors

    @property
    def exceptions(self) -> list[Finding]:
        return self.waived

    def exit_code(self, fail_on_warn: bool = False) -> int:
        return 1 if self.failures or (fail_on_warn and self.warnings) else 0


def input_for(item: LoadedResource) -> dict[str, Any]:
    return {**item.raw, "_source": _source(item.document)}


def _source(doc: Document) -> dict[str, Any]:
    return {"file": doc.file, "line": doc.line, "column": doc.column}


def data_for(resources: list[LoadedResource], context: Context) -> dict[str, Any]:
    by_kind: dict[str, dict[str, Any]] = {}
    for item in resources:
        by_kind.setdefault(item.kind, {})[item.name] = item.raw
    return {"resources": by_kind, "context": context.as_data()}


def digest(doc: Any) -> str:
    return _digest_of(canonical_json(doc))


def _digest_of(canonical: str) -> str:
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _data_json(resources: list[LoadedResource], context: Context) -> str:
    """``{"modelplane": data_for(resources, context)}`` as JSON (the same value), from
    each resource's canonical JSON (kept by the loader when it keeps data only)."""
    by_kind: dict[str, dict[str, str]] = {}
    for item in resources:
        by_kind.setdefault(item.kind, {})[item.name] = item.document.canonical_json()
    kinds = ",".join(
        f"{json.dumps(kind)}:{{{','.join(f'{json.dumps(name)}:{text}' for name, text in names.items())}}}"
        for kind, names in by_kind.items()
    )
    return f'{{"modelplane":{{"resources":{{{kinds}}},"context":{json.dumps(context.as_data())}}}}}'


def _input_json(item: LoadedResource) -> str:
    """``canonical_json(input_for(item))``, without encoding the resource again:
    ``_source`` is spliced in front when it sorts before the resource's first key
    (it does for every valid resource: apiVersion, kind, metadata, spec)."""
    text = item.document.canonical_json()
    if text.startswith('{"') and scanstring(text, 2)[0] > "_source":
        return '{"_source":' + canonical_json(_source(item.document)) + "," + text[1:]
    return canonical_json(input_for(item))


MAX_FINDINGS_PER_RULE = 50  # findings of one rule for one resource
MAX_FINDINGS_PER_RESOURCE = 500  # findings of every rule for one resource
MAX_MESSAGE_CHARS = 1000


def _messages(value: Any) -> list[tuple[str, str | None]]:
    """(message, field) pairs from a rule's value: strings, or ``{msg, field}`` objects;
    at most :data:`MAX_FINDINGS_PER_RULE` (then one that says how many more there were),
    each at most :data:`MAX_MESSAGE_CHARS` long: a rule cannot flood the report."""
    items = value if isinstance(value, list) else [value] if value not in (None, False) else []
    out = []
    if len(items) > MAX_FINDINGS_PER_RULE:
        extra = len(items) - MAX_FINDINGS_PER_RULE
        items = [*items[:MAX_FINDINGS_PER_RULE], f"... and {extra} more findings of this rule (not shown)"]
    for item in items:
        if isinstance(item, dict):
            out.append((str(item.get("msg", json.dumps(item, sort_keys=True))), item.get("field")))
        elif item is True:
            out.append(("denied", None))
        else:
            out.append((str(item), None))
    return [(m if len(m) <= MAX_MESSAGE_CHARS else m[:MAX_MESSAGE_CHARS] + "… (cut)", f) for m, f in out]


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


@dataclass(frozen=True, slots=True)
class _FindingRule:
    """What evaluation needs of a finding rule, worked out once rather than per resource."""

    index: int  # in evaluation order
    name: str
    rule_id: str
    severity: Severity
    suffix: str
    fired: str  # the decision's result when it fires unwaived

    @classmethod
    def of(cls, index: int, rule: RuleInfo) -> _FindingRule:
        severity = Severity.WARNING if rule.name.startswith("warn") else Severity.ERROR
        fired = "warn" if severity == Severity.WARNING else "deny"
        return cls(index, rule.name, rule.rule_id, severity, rule.name.partition("_")[2] or rule.name, fired)


class _Judge:
    """Decides resources one by one with an engine that holds the data already."""

    def __init__(
        self, engine: PolicyEngine, resources: list[LoadedResource], rules: list[RuleInfo], waivers: Waivers
    ) -> None:
        self.engine = engine
        self.resources = resources
        self.waivers = waivers
        by_package: dict[str, list[RuleInfo]] = {}
        for rule in rules:
            by_package.setdefault(rule.package, []).append(rule)
        self.packages: list[tuple[str, list[_FindingRule]]] = []
        self.order: list[tuple[str, str]] = []  # (package, rule id) in evaluation order
        for package, package_rules in sorted(by_package.items()):
            judged = []
            for rule in package_rules:
                judged.append(_FindingRule.of(len(self.order), rule))
                self.order.append((package, rule.rule_id))
            self.packages.append((package, judged))
        self.decide_json = getattr(engine, "decide_json", None)

    def run(self, indexes: Sequence[int], progress: Progress | None = None) -> tuple[list[Finding], list[_Record]]:
        findings: list[Finding] = []
        records: list[_Record] = []
        for index in indexes:
            if progress is not None:
                progress(index)
            self._one(self.resources[index], findings, records)
        return findings, records

    def stopped(
        self, index: int, packages: list[str], why: str, seconds: float, memory_mb: int
    ) -> tuple[list[Finding], list[_Record]]:
        """The denial of a resource whose decision was stopped: over the time limit
        (``why`` "time") or its memory limit ("memory")."""
        item = self.resources[index]
        named = ", ".join(packages)
        if why == "time":
            rule, error = "policy-timeout", f"policy-timeout: package {named} did not decide within {seconds:g} s"
            message = (
                f"policy package {named} did not decide {item.ref} within {seconds:g} s; denied (modelplane fails "
                "closed): make its rules cheaper, or raise --policy-timeout"
            )
        else:
            rule = "policy-memory"
            error = f"policy-memory: package {named} went over {memory_mb} MB (or its process died)"
            message = (
                f"policy package {named} went over its memory limit of {memory_mb} MB deciding {item.ref} (or its "
                "process died); denied (modelplane fails closed): make its rules allocate less"
            )
        finding = Finding(rule, message, item.document.location(()), resource=item.ref)
        return [finding], [(item.ref, digest(input_for(item)), error)]

    def not_decided(self, index: int, stops: int) -> tuple[list[Finding], list[_Record]]:
        """The denial of a resource left undecided after ``stops`` decisions were stopped."""
        item = self.resources[index]
        error = f"policy-not-decided: {stops} decisions were stopped before this one"
        finding = Finding(
            "policy-not-decided",
            f"{item.ref} was not decided: {stops} policy decisions were stopped (see the policy-timeout and "
            "policy-memory findings); denied (modelplane fails closed): fix those rules and run again",
            item.document.location(()),
            resource=item.ref,
        )
        return [finding], [(item.ref, digest(input_for(item)), error)]

    def probe(self, index: int, package: str) -> Any:
        """One package alone, for one resource (to find which package is slow)."""
        return self.engine.query(package.replace(".", "/"), input_for(self.resources[index]))

    def _one(self, item: LoadedResource, findings: list[Finding], records: list[_Record]) -> None:
        start = len(findings)
        self._decide_one(item, findings, records)
        if len(findings) - start > MAX_FINDINGS_PER_RESOURCE:
            extra = len(findings) - start - MAX_FINDINGS_PER_RESOURCE
            del findings[start + MAX_FINDINGS_PER_RESOURCE :]
            findings.append(
                Finding(
                    "policy-engine-error",
                    f"... and {extra} more policy findings for {item.ref} (not shown: at most "
                    f"{MAX_FINDINGS_PER_RESOURCE} per resource); denied (modelplane fails closed)",
                    item.document.location(()),
                    resource=item.ref,
                )
            )

    def _decide_one(self, item: LoadedResource, findings: list[Finding], records: list[_Record]) -> None:
        ref = item.ref
        if self.decide_json is not None:
            text = _input_json(item)
            input_digest = _digest_of(text)
        else:
            doc = input_for(item)
            input_digest = digest(doc)
        try:
            results = self.decide_json(text) if self.decide_json is not None else self.engine.decide(doc)
        except EngineError as exc:
            findings.append(_engine_failure(item, "*", str(exc)))
            records.append((ref, input_digest, str(exc)))
            return
        fired: list[tuple[int, str, str]] = []
        secrets: set[str] | None = None  # found only if a message needs scrubbing
        for package, package_rules in self.packages:
            result = results.get(package, {})
            exception = result.get("exception")
            excepted = _exception_names(exception) if exception else set()
            for rule in package_rules:
                value = result.get(rule.name)
                if value is None or value is False or value == []:  # did not fire (the common case)
                    continue
                waiver = self.waivers.waiver_for(rule.rule_id, ref)
                unapproved = rule.suffix in excepted and waiver is None  # an approved waiver comes first
                waived_by = waiver.label() if waiver else self.waivers.exception_rule(package) if unapproved else None
                for message, field_text in _messages(value):
                    if secrets is None:
                        secrets = secret_values(item.raw)
                    message = scrub(message, secrets)
                    path = _field_path(field_text) if isinstance(field_text, str) else ()
                    location = item.document.location(path)
                    if unapproved and waived_by is None:
                        message += (
                            f" (an exception rule in package {package} would waive this, but it names no "
                            "approver: strict waivers accept only a PolicyException)"
                        )
                    findings.append(
                        Finding(
                            rule.rule_id,
                            message,
                            location,
                            rule.severity,
                            resource=ref,
                            field=field_text if isinstance(field_text, str) else None,
                            waived_by=waived_by,
                        )
                    )
                    if unapproved and waived_by is not None:
                        findings.append(
                            Finding(
                                "waiver-without-approver",
                                f"{rule.rule_id} is waived for {ref} by the exception rule of package {package}, "
                                "which names no approver, reason or expiry; file a PolicyException instead "
                                "(--strict-waivers, the default when CI is set, refuses this waiver)",
                                location,
                                Severity.WARNING,
                                resource=ref,
                            )
                        )
                    fired.append((rule.index, "waived" if waived_by else rule.fired, message))
        records.append((ref, input_digest, tuple(fired)))


def evaluate(
    engine: PolicyEngine,
    resources: list[LoadedResource],
    *,
    context: Context | None = None,
    today: date | None = None,
    skipped: int = 0,
    workers: int | None = None,
    waiver_rules: WaiverRules | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    memory_mb: int = DEFAULT_MEMORY_MB,
    others: Sequence[LoadedResource] = (),
) -> PolicyOutcome:
    """Judge ``resources`` with ``engine``'s policies, one decision per resource, in order.

    ``timeout``: seconds one decision (one resource, every package at once) may take;
    ``memory_mb``: what it may allocate. An engine that can be forked decides in
    supervised child processes, where a runaway rule is stopped at either limit and
    the resource is denied with ``policy-timeout`` or ``policy-memory`` naming the
    package at fault; after a few such stops the rest are denied undecided
    (``policy-not-decided``) (see :mod:`controller.policy.supervised`).
    From a thread (no fork), the embedded engine decides in this process, where
    nothing can stop it; the OPA server engine applies its own HTTP time limit.

    ``others``: the rest of the repo when ``resources`` are a subset; they are in
    ``data.modelplane`` and their waivers count, but they are not judged.

    ``workers`` (default: 1, or what an enclosing :func:`parallel` block says): with
    more than one, an engine that can be forked (``forkable``, as the embedded
    engine) decides large sets in that many processes, forked once the data is set
    and gone when this returns. Not from a thread, nor while other threads run:
    then, and for other engines, one process decides everything.
    """
    context = context or Context()
    today = today or datetime.now(UTC).date()
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    log = _DecisionLog(now, context.revision, engine.name)
    outcome = PolicyOutcome(skipped=skipped, _log=log)
    set_data_json = getattr(engine, "set_data_json", None)

    try:
        rules = [r for r in engine.rules() if r.is_finding]
        if set_data_json is not None and getattr(engine, "decide_json", None) is not None:
            set_data_json(_data_json([*resources, *others], context))
        else:
            engine.set_data(data_for([*resources, *others], context))
    except EngineError as exc:
        for item in resources:
            outcome.findings.append(_engine_failure(item, "*", str(exc)))
            log.records.append((item.ref, "", str(exc)))
        return outcome
    outcome.rules = {
        r.rule_id: Rule(r.rule_id, f"{r.package}: {r.name}", f"Defined at {r.file}:{r.line}.") for r in rules
    }
    waivers = Waivers([*resources, *others], today, waiver_rules)
    judge = _Judge(engine, resources, rules, waivers)
    log.rules = judge.order

    workers = workers if workers is not None else _WORKERS.get()
    indexes = range(len(resources))
    if getattr(engine, "forkable", False) and may_fork() and (timeout is not None or workers > 1):
        # Forked deciders: stoppable (a runaway rule is killed at the limit), and parallel when asked.
        spread = workers > 1 and len(resources) >= PARALLEL_MIN_RESOURCES
        size = -(-len(indexes) // workers) if spread else max(1, len(indexes))
        slices = [indexes[i : i + size] for i in range(0, len(indexes), size)]
        limit = timeout if timeout is not None else float("inf")
        supervisor = Supervisor(
            judge.run,
            lambda index, packages, why: judge.stopped(index, packages, why, limit, memory_mb),
            judge.probe,
            [package for package, _ in judge.packages],
            limit,
            memory_mb=memory_mb,
            not_decided=judge.not_decided,
        )
        parts = supervisor.decide(slices, workers)
    else:
        parts = [judge.run(indexes)]
    for findings, records in parts:
        outcome.findings.extend(findings)
        log.records.extend(records)
    outcome.evaluated = len(resources)
    judged_files = {r.document.file for r in resources}
    problems = waivers.problems({r.rule_id for r in rules})
    outcome.findings.extend(p for p in problems if not others or p.location.file in judged_files)
    return outcome


def _engine_failure(item: LoadedResource, package: str, error: str) -> Finding:
    return Finding(
        "policy-engine-error",
        f"policy engine failed on package '{package}': {error}; denied (modelplane fails closed)",
        item.document.location(()),
        resource=item.ref,
    )
