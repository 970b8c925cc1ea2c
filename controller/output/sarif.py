"""SARIF 2.1.0, so GitHub code scanning shows findings inline in the diff."""

from __future__ import annotations

import json
from pathlib import PurePath

from controller import __version__
from controller.api.findings import Report, Severity

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://modelplane.io/docs/spec-reference"


def _uri(file: str) -> str:
    return PurePath(file).as_posix().removeprefix("./")


def render(report: Report) -> str:
    findings = report.sorted_findings()
    used = list(dict.fromkeys(f.rule for f in findings))
    rules = [report.rule(rule_id) for rule_id in used]
    index = {rule.id: i for i, rule in enumerate(rules)}
    results = []
    for f in findings:
        result = {
            "ruleId": f.rule,
            "ruleIndex": index[f.rule],
            "level": f.severity.value,
            "message": {"text": f"{f.resource}: {f.message}" if f.resource else f.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(f.location.file), "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": f.location.line, "startColumn": f.location.column},
                    }
                }
            ],
        }
        if f.waived_by:
            result["suppressions"] = [{"kind": "external", "status": "accepted", "justification": f.waived_by}]
        if f.resource:
            result["properties"] = {"resource": f.resource, **({"field": f.field} if f.field else {})}
        results.append(result)
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "modelplane",
                        "version": __version__,
                        "informationUri": INFO_URI,
                        "rules": [
                            {
                                "id": rule.id,
                                "name": "".join(part.title() for part in rule.id.split("-")),
                                "shortDescription": {"text": rule.summary},
                                "help": {"text": rule.help or rule.summary},
                                "defaultConfiguration": {"level": Severity.ERROR.value},
                            }
                            for rule in rules
                        ],
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "The platform repository root."}}},
                "artifacts": [{"location": {"uri": _uri(name), "uriBaseId": "%SRCROOT%"}} for name in report.files],
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"
