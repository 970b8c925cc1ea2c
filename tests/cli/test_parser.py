"""The parser, in-process: one definition per flag, wherever it is given."""

from __future__ import annotations

import pytest

from controller.cli import build_parser
from controller.cli.common import DEFAULT_STATE_DIR, REPORT_FORMATS
from controller.output import FORMATTERS


@pytest.mark.parametrize(
    "argv",
    [
        ["--state-dir", "S", "runs", "list"],
        ["runs", "--state-dir", "S", "list"],
        ["runs", "list", "--state-dir", "S"],
        ["registry", "list", "--state-dir", "S"],
        ["registry", "history", "m", "--state-dir", "S"],
        ["--state-dir", "S", "registry", "alias", "m", "a", "1", "--as", "x"],
        ["approve", "m", "1", "--as", "x", "--state-dir", "S"],
        ["status", "--state-dir", "S"],
        ["plan", "--state-dir", "S"],
        ["apply", "--state-dir", "S"],
        ["audit", "verify", "--state-dir", "S"],
        ["--state-dir", "S", "audit", "verify"],
    ],
    ids=lambda argv: " ".join(argv),
)
def test_state_dir_is_honoured_at_every_position(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).state_dir == "S"


def test_state_dir_defaults_once() -> None:
    assert build_parser().parse_args(["runs", "list"]).state_dir == DEFAULT_STATE_DIR


def test_audit_verify_is_a_subcommand_and_audit_alone_reports() -> None:
    parser = build_parser()
    assert parser.parse_args(["audit", "verify"]).func.__name__ == "verify"
    assert parser.parse_args(["audit", "--format", "sarif"]).func.__name__ == "report"


def test_report_formats_are_the_formatters() -> None:
    assert tuple(sorted(FORMATTERS)) == REPORT_FORMATS
