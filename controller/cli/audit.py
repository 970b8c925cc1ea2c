"""``modelplane audit``: every policy over the repo (a report and the decision log);
``modelplane audit verify``: the audit log's hash chain."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from controller.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_STATE_LOST,
    REPORT_FORMATS,
    emit,
    fail,
    policy_flags,
    policy_settings,
    store,
)


def register(commands: argparse._SubParsersAction, state: argparse.ArgumentParser) -> None:
    audit = commands.add_parser(
        "audit",
        help="evaluate every policy over the repo; 'audit verify' checks the audit log",
        description="Evaluate every policy over the resources, at a git revision or in the work tree, "
        "write a report and append every decision to the decision log. "
        "'modelplane audit verify' checks the audit log's hash chain instead (exit 1 when broken).",
    )
    audit.add_argument(
        "--path",
        dest="paths",
        action="append",
        default=[],
        metavar="PATH",
        help="resource paths, repeatable (default: specs/ and chaos/)",
    )
    audit.add_argument("--revision", metavar="REV", help="a git revision (default: the work tree)")
    audit.add_argument("--format", "-o", choices=REPORT_FORMATS, default="text", help="report format")
    audit.add_argument("--output", metavar="FILE", help="write the report to FILE instead of stdout")
    audit.add_argument("--fail-on-warn", action="store_true", help="exit 1 on warnings too")
    audit.add_argument(
        "--decision-log", metavar="FILE", default=".modelplane/decisions.jsonl", help="decision log (JSON lines)"
    )
    policy_flags(audit)
    audit.set_defaults(func=report)
    sub = audit.add_subparsers(dest="audit_command", metavar="COMMAND")
    verify_cmd = sub.add_parser(
        "verify",
        parents=[state],
        help="check the audit log's hash chain",
        description="Check every record of the audit log against its hash chain and the recorded head. "
        "Exit 0 when intact, 1 when broken.",
    )
    verify_cmd.set_defaults(func=verify)
    anchor_cmd = sub.add_parser(
        "anchor",
        parents=[state],
        help="export the audit chain's head to the platform repo (refs/modelplane/audit)",
        description="Append the audit chain's current head (signed when MODELPLANE_AUDIT_KEY or "
        "MODELPLANE_AUDIT_KEY_FILE is set) to refs/modelplane/audit in the git repo here. Push that ref to a "
        "remote the controller cannot rewrite; plan, apply and step refuse a state that lost what it proves.",
    )
    anchor_cmd.set_defaults(func=export_anchor)
    sign_cmd = sub.add_parser(
        "sign-head",
        parents=[state],
        help="sign the head of a log kept without a key so far (once, when the audit key is first set)",
        description="Adopt a new audit key for an existing log: the repo's exported anchor must be unsigned (made "
        "before the key) and name the log's last record; the chain must verify. Then its head is signed. "
        "Before setting the key: 'modelplane audit anchor', and push refs/modelplane/audit.",
    )
    sign_cmd.set_defaults(func=sign_head)


def report(args: argparse.Namespace) -> int:
    from controller.engine.checks import judge
    from controller.loading import DEFAULT_PATHS, UsageError, load
    from controller.policy.engine import EngineError
    from controller.policy.sources import PolicyLoadError
    from controller.triggers.git_source import GitError, context_for, load_revision

    paths = args.paths or list(DEFAULT_PATHS)
    settings = policy_settings(args)
    assert settings is not None
    try:
        if args.revision:
            result, files = load_revision(args.revision, paths, settings.sources)
        else:
            result, files = load([p for p in paths if Path(p).exists()] or paths), None
        outcome, _ = judge(result, settings, context_for(revision=args.revision), files)
    except (UsageError, GitError, PolicyLoadError, EngineError) as exc:
        return fail(str(exc))
    code = emit(outcome, args)
    print(f"decisions appended to {settings.decision_log}", file=sys.stderr)
    return code


def export_anchor(args: argparse.Namespace) -> int:
    from controller.triggers.git_source import ANCHOR_REF, GitError, GitRepo

    with store(args) as opened:  # the chain extends the last anchor, or nothing is exported
        verification = opened.audit.verify()
        head = opened.audit.last()
    if not verification.ok:
        print(
            f"modelplane: not anchored: the audit log is BROKEN at record {verification.seq}: {verification.problem} "
            "(see 'modelplane audit verify'); an anchor must never vouch for a chain that does not verify",
            file=sys.stderr,
        )
        return EXIT_STATE_LOST
    if head is None:
        return fail("the audit log is empty: nothing to anchor yet")
    try:
        sha = GitRepo(".").write_anchor(head.text().strip())
    except GitError as exc:
        return fail(f"cannot write {ANCHOR_REF}: {exc}")
    signed = "signed" if head.mac else "unsigned: set MODELPLANE_AUDIT_KEY to sign it"
    print(f"anchored record {head.seq} ({head.hash[:12]}, {signed}) at {ANCHOR_REF} {sha[:12]}")
    return EXIT_OK


def sign_head(args: argparse.Namespace) -> int:
    from controller.state.anchor import Head, StateLost
    from controller.state.db import StateError
    from controller.state.store import Store, require_database
    from controller.triggers.git_source import GitRepo

    exported = GitRepo(".").read_anchor()
    state_dir = Path(args.state_dir).resolve()
    if not require_database(state_dir, exported):  # a lost state is never signed afresh
        return fail(f"not signed: there is no state in {state_dir}")
    opened = Store(state_dir, adopt_key=True)
    try:
        head = opened.audit.sign_head(Head.parse(exported) if exported else None)
    except StateLost:
        raise
    except StateError as exc:
        return fail(f"not signed: {exc}")
    finally:
        opened.close()
    print(f"signed the head, record {head.seq} ({head.hash[:12]}); run 'modelplane audit anchor' to export it")
    return EXIT_OK


def verify(args: argparse.Namespace) -> int:
    with store(args) as opened:
        result = opened.audit.verify()
    if result.ok:
        print(f"audit log intact: {result.checked} records, hash chain verified")
        return EXIT_OK
    print(f"audit log BROKEN at record {result.seq}: {result.problem} ({result.checked} records verified before it)")
    return EXIT_FINDINGS
