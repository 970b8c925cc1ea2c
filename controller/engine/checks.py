"""Validation and policy checks of a whole tree, as one report.

Called by the CLI's ``validate`` and ``audit``; the reconcile loop will call it
before planning. Schema and reference findings come from the loader; policy
findings from the chosen engine; the report decides the exit code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from controller.api.findings import Report
from controller.loading import LoadResult
from controller.policy import decision_log
from controller.policy.embedded import EmbeddedEngine
from controller.policy.engine import PolicyEngine
from controller.policy.evaluate import DEFAULT_TIMEOUT, Context, PolicyOutcome, evaluate
from controller.policy.sources import BUILTIN, PolicyFile, discover
from controller.policy.waivers import WaiverRules


@dataclass
class PolicySettings:
    sources: Sequence[str] = (BUILTIN,)  # 'builtin' or policy directories
    opa_url: str | None = None
    decision_log: Path | None = None
    today: date | None = None
    waivers: WaiverRules = field(default_factory=WaiverRules)
    timeout: float = DEFAULT_TIMEOUT  # seconds per decision
    opa_token: str | None = field(default=None, repr=False)  # a bearer token for the OPA server


def open_engine(
    files: list[PolicyFile],
    opa_url: str | None = None,
    opa_token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> PolicyEngine:
    """The embedded engine, or an OPA server when ``opa_url`` is given (each request
    limited to ``timeout`` seconds)."""
    if opa_url:
        from controller.policy.opa import OpaServerEngine  # requests and opa-client: only when asked for

        return OpaServerEngine(opa_url, token=opa_token, timeout=timeout)
    return EmbeddedEngine(files)


def judge(
    result: LoadResult, settings: PolicySettings | None, context: Context, files: list[PolicyFile] | None = None
) -> tuple[Report, PolicyOutcome | None]:
    """Merge the loader's findings with the policies' decisions into one report;
    the policy outcome too (None with policies off), for callers that act on it."""
    report = result.report()
    if settings is None:
        return report, None
    files = files if files is not None else discover(settings.sources)
    engine = open_engine([f for f in files if not f.is_test], settings.opa_url, settings.opa_token, settings.timeout)
    outcome: PolicyOutcome = evaluate(
        engine,
        result.resources,
        context=context,
        today=settings.today,
        skipped=result.rejected,
        waiver_rules=settings.waivers,
        timeout=settings.timeout,
        others=result.context,
    )
    report.findings.extend(outcome.findings)
    report.rules.update(outcome.rules)
    report.skipped = outcome.skipped
    if settings.decision_log is not None:
        decision_log.append(settings.decision_log, outcome.decisions)
    return report, outcome
