"""Machine-readable JSON: every finding with its position, plus a summary."""

from __future__ import annotations

import json

from controller.api.findings import Report


def render(report: Report) -> str:
    doc = {
        "summary": {
            "files": len(report.files),
            "resources": report.resources,
            "errors": len(report.errors),
            "warnings": len(report.warnings),
            "waived": len(report.waived),
            "skipped": report.skipped,
            "passed": report.exit_code == 0,
        },
        "findings": [
            {
                "rule": f.rule,
                "severity": f.severity.value,
                "message": f.message,
                "file": f.location.file,
                "line": f.location.line,
                "column": f.location.column,
                "resource": f.resource,
                "field": f.field,
                "help": report.rule(f.rule).help,
                "waived_by": f.waived_by,
            }
            for f in report.sorted_findings()
        ],
    }
    return json.dumps(doc, indent=2) + "\n"
