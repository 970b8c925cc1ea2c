"""What start-up imports: formatters, findings and the CLI's parser pull in no models.

``modelplane --version`` builds the parser and nothing else; printing a report
needs the report's types and the one formatter asked for. Each check runs in a
fresh interpreter, since this test process has imported everything already.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("pydantic", "yaml", "regorus", "controller.api.model", "xml.etree.ElementTree")


def imported_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    return set(out.stdout.split())


@pytest.mark.parametrize(
    "code",
    [
        "import controller.cli; controller.cli.build_parser()",
        "import controller.api.findings",
        "import controller.output",
    ],
    ids=["cli-parser", "findings", "formatters"],
)
def test_importing_pulls_in_no_models_nor_parsers(code: str) -> None:
    loaded = imported_after(code)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_a_formatter_is_imported_when_first_used() -> None:
    loaded = imported_after(
        "from controller.api.findings import Report\n"
        "from controller.output import FORMATTERS\n"
        "assert FORMATTERS['text'](Report()).startswith('OK ')"
    )
    assert "controller.output.text" in loaded
    assert not {"controller.output.junit", "controller.output.sarif", "xml.etree.ElementTree"} & loaded
