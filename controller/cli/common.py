"""What every command group shares: exit codes, errors, the state flag, the store.

Exit codes: 0 success, 1 findings (or stale files, or stalled resources),
2 usage or I/O error (an unreadable state database among them), 3 the state lost
audit records its anchor proves it held (restore it; never start afresh).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs 5 ms of every start-up

if TYPE_CHECKING:
    from controller.api.findings import Report
    from controller.engine.checks import PolicySettings
    from controller.state.store import Store

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_STATE_LOST = 0, 1, 2, 3
DEFAULT_STATE_DIR = ".modelplane"
# The names of controller.output.FORMATTERS, without importing the formatters (and
# every pydantic model behind them) to build the parser; a test keeps them equal.
REPORT_FORMATS = ("github", "json", "junit", "markdown", "sarif", "text")
OPA_TOKEN_ENV = "MODELPLANE_OPA_TOKEN"


def fail(message: str) -> int:
    print(f"modelplane: {message}", file=sys.stderr)
    return EXIT_USAGE


def state_flag() -> argparse.ArgumentParser:
    """``--state-dir``, accepted by every command that reads or writes state, at any
    depth. Its default lives on the top-level parser only: a sub-command's default
    would otherwise overwrite a value given before it (``--state-dir X runs list``)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--state-dir",
        default=argparse.SUPPRESS,
        metavar="DIR",
        help=f"state directory (default: {DEFAULT_STATE_DIR})",
    )
    return parent


def policy_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policies",
        action="append",
        metavar="DIR",
        help="a policy directory, or 'builtin' for the library shipped with modelplane; repeat for more "
        "(default: the project file's 'policies', else builtin and policies/ when it exists)",
    )
    timeout_flag(
        parser,
        "time limit of one policy decision (one resource, every package); over it the resource is "
        "denied with policy-timeout (default: the project file's policyTimeoutSeconds, else 5)",
    )
    parser.add_argument(
        "--strict-waivers",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="refuse waivers nobody approved (a policy's own 'exception' rules); default: on when the CI "
        "environment variable is set, as CI services set it",
    )
    parser.add_argument(
        "--opa-url",
        metavar="URL",
        help=f"decide with an OPA server instead of the embedded engine (a bearer token from {OPA_TOKEN_ENV})",
    )


def timeout_flag(parser: argparse.ArgumentParser | argparse._ArgumentGroup, help: str) -> None:
    parser.add_argument("--policy-timeout", type=_seconds, metavar="SECONDS", help=help)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds between 0 and 3600")
    return value


def policy_settings(args: argparse.Namespace) -> PolicySettings | None:
    if getattr(args, "no_policy", False):
        return None  # before importing the policy engine: --no-policy does not need it

    from controller.engine.checks import PolicySettings
    from controller.policy.waivers import WaiverRules

    log = Path(args.decision_log) if getattr(args, "decision_log", None) else None
    strict = args.strict_waivers
    if strict is None:
        strict = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    project = getattr(args, "project", None)
    rules = WaiverRules(strict=strict) if project is None else WaiverRules(project.spec.waiverMaxDays, strict)
    # The token comes from the environment only: a flag would show it in the process listing.
    token = os.environ.get(OPA_TOKEN_ENV, "").strip() or None
    settings = PolicySettings(
        sources=policy_sources(args), opa_url=args.opa_url, decision_log=log, waivers=rules, opa_token=token
    )
    settings.timeout = policy_timeout(args) or settings.timeout
    return settings


def policy_timeout(args: argparse.Namespace) -> float | None:
    """``--policy-timeout``, else the project file's ``policyTimeoutSeconds``, else None (the engine's default)."""
    if args.policy_timeout is not None:
        return float(args.policy_timeout)
    project = getattr(args, "project", None)
    return float(project.spec.policyTimeoutSeconds) if project is not None else None


def policy_sources(args: argparse.Namespace) -> list[str]:
    """``--policies`` as given, else the project file's, else the default set (the
    current directory is the root by now: see :mod:`controller.cli.root`)."""
    if args.policies:
        return list(args.policies)
    project = getattr(args, "project", None)
    if project is not None and project.spec.policies is not None:
        return list(project.spec.policies)
    from controller.policy.sources import default_sources

    return default_sources()


def emit(report: Report, args: argparse.Namespace) -> int:
    from controller.output import FORMATTERS

    report.fail_on_warn = args.fail_on_warn
    text = FORMATTERS[args.format](report)
    if getattr(args, "output", None):
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return report.exit_code


def open_store(args: argparse.Namespace) -> Store:
    """The state, checked against the repo's exported audit anchor, if any (``StateLost``):
    a wiped or replaced state is never a fresh start for any command."""
    from controller.state.store import open_anchored
    from controller.triggers.git_source import GitRepo

    return open_anchored(Path(args.state_dir).resolve(), GitRepo(".").read_anchor())


@contextmanager
def store(args: argparse.Namespace) -> Iterator[Store]:
    opened = open_store(args)
    try:
        yield opened
    finally:
        opened.close()


def guard_flags(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The access flags of a command that serves HTTP (``policy serve``, ``controller``);
    the group, for a command to add its own."""
    guard = parser.add_argument_group("access")
    guard.add_argument(
        "--token-file",
        metavar="FILE",
        help="clients and their tokens, one 'NAME TOKEN' line each (# comments); chmod 600 "
        "(default: one client, 'default', with the token in MODELPLANE_API_TOKEN)",
    )
    guard.add_argument(
        "--insecure-no-auth", action="store_true", help="serve without tokens (loopback addresses only; no writes)"
    )
    guard.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this PEM certificate (chain)")
    guard.add_argument("--tls-key", metavar="FILE", help="the certificate's PEM private key")
    guard.add_argument(
        "--behind-tls-proxy",
        action="store_true",
        help="serve plain HTTP on a non-loopback address, because a TLS proxy in front is the only way in",
    )
    return guard
