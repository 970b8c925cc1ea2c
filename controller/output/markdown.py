"""Markdown for pull-request comments and audit reports."""

from __future__ import annotations

from controller.api.findings import Report


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(report: Report) -> str:
    status = "✅ passed" if report.exit_code == 0 else "❌ failed"
    lines = [
        f"### modelplane: {status}",
        "",
        f"{len(report.files)} files, {report.resources} resources: **{len(report.errors)} errors**, "
        f"{len(report.warnings)} warnings, {len(report.waived)} waived.",
        "",
    ]
    findings = report.sorted_findings()
    if findings:
        lines += ["| | location | rule | resource | message |", "|---|---|---|---|---|"]
        icons = {"error": "❌", "warning": "⚠️", "note": "ℹ️"}
        for f in findings:
            icon = "🛡️" if f.waived_by else icons[f.severity.value]
            message = f.message + (f" — waived by {f.waived_by}" if f.waived_by else "")
            lines.append(f"| {icon} | `{f.location}` | `{f.rule}` | {_cell(f.resource or '')} | {_cell(message)} |")
        lines.append("")
    return "\n".join(lines)
