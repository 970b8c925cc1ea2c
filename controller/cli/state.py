"""``modelplane state check``: the state database's integrity, the audit chain, every artifact."""

from __future__ import annotations

import argparse

from controller.cli.common import EXIT_FINDINGS, EXIT_OK, store


def register(commands: argparse._SubParsersAction, state: argparse.ArgumentParser) -> None:
    group = commands.add_parser("state", parents=[state], help="check the state directory")
    sub = group.add_subparsers(dest="state_command", metavar="COMMAND", required=True)
    check = sub.add_parser(
        "check",
        parents=[state],
        help="database integrity, audit chain, artifacts",
        description="Check the SQLite database's integrity, the audit chain against its head, and every "
        "registered artifact against its digest. Exit 0 when all hold, 1 otherwise, 3 when the state lost "
        "records its anchor proves.",
    )
    check.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    with store(args) as opened:
        results = opened.check()
    for name, problem in results:
        print(f"{'ok  ' if problem is None else 'FAIL'} {name}" + (f": {problem}" if problem else ""))
    return EXIT_FINDINGS if any(problem for _, problem in results) else EXIT_OK
