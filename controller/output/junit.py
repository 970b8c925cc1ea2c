"""JUnit XML for CI dashboards: one test case per checked file, failures per finding."""

from __future__ import annotations

from collections import defaultdict
from xml.etree import ElementTree as ET

from controller.api.findings import Finding, Report, Severity


def render(report: Report) -> str:
    by_file: dict[str, list[Finding]] = defaultdict(list)
    for f in report.sorted_findings():
        by_file[f.location.file].append(f)
    files = list(dict.fromkeys([*report.files, *by_file]))
    failed = sum(1 for name in files if any(f.severity == Severity.ERROR and not f.waived_by for f in by_file[name]))

    suites = ET.Element("testsuites", name="modelplane", tests=str(len(files)), failures=str(failed))
    suite = ET.SubElement(
        suites, "testsuite", name="modelplane validate", tests=str(len(files)), failures=str(failed), errors="0"
    )
    for name in files:
        case = ET.SubElement(suite, "testcase", classname="modelplane.validate", name=name)
        errors = [f for f in by_file[name] if f.severity == Severity.ERROR and not f.waived_by]
        if errors:
            failure = ET.SubElement(case, "failure", type=errors[0].rule, message=f"{len(errors)} finding(s) in {name}")
            failure.text = "\n".join(f"{f.location}: [{f.rule}] {f.message}" for f in errors)
        others = [f for f in by_file[name] if f not in errors]
        if others:
            out = ET.SubElement(case, "system-out")
            out.text = "\n".join(
                f"{f.location}: {'waived' if f.waived_by else f.severity.value} [{f.rule}] {f.message}" for f in others
            )
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
