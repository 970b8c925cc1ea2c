"""GitHub Actions workflow commands: ``::error file=...,line=...,col=...::message``.

Each finding becomes an annotation on the pull request's diff.
"""

from __future__ import annotations

from controller.api.findings import Report, Severity

_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}


def _data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(value: str) -> str:
    return _data(value).replace(":", "%3A").replace(",", "%2C")


def render(report: Report) -> str:
    lines = []
    for f in report.sorted_findings():
        props = (
            f"file={_prop(f.location.file)},line={f.location.line},col={f.location.column},"
            f"title={_prop('modelplane ' + f.rule)}"
        )
        who = f"{f.resource}: " if f.resource else ""
        level = "notice" if f.waived_by else _LEVEL[f.severity]
        waived = f" (waived by {f.waived_by})" if f.waived_by else ""
        lines.append(f"::{level} {props}::{_data(who + f.message + waived)}")
    return "".join(line + "\n" for line in lines)
