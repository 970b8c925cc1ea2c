"""Plain text for terminals: ``file:line:col: severity [rule] resource: message``."""

from __future__ import annotations

from controller.api.findings import Report


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def render(report: Report) -> str:
    lines = []
    for f in report.sorted_findings():
        who = f" {f.resource}:" if f.resource else ""
        level = "waived" if f.waived_by else f.severity.value
        waived = f" (waived by {f.waived_by})" if f.waived_by else ""
        lines.append(f"{f.location}: {level} [{f.rule}]{who} {f.message}{waived}")
    summary = (
        f"{_plural(len(report.files), 'file')}, {_plural(report.resources, 'resource')}: "
        f"{_plural(len(report.errors), 'error')}, {_plural(len(report.warnings), 'warning')}"
    )
    if report.waived:
        summary += f", {len(report.waived)} waived"
    if report.skipped:
        summary += f", {report.skipped} not judged by policy"
    lines.append(("FAIL " if report.exit_code else "OK ") + summary)
    return "\n".join(lines) + "\n"
