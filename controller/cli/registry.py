"""``modelplane approve`` and ``modelplane registry``: versions, stages, aliases, approvals."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from controller.cli.common import EXIT_FINDINGS, EXIT_OK, fail, store

if TYPE_CHECKING:
    from controller.state.store import Store


def register(commands: argparse._SubParsersAction, state: argparse.ArgumentParser) -> None:
    approve = commands.add_parser("approve", parents=[state], help="approve a model version for Production")
    approve.add_argument("model")
    approve.add_argument("version", help="a version number, or a stage (e.g. Staging) for the version in it")
    approve.add_argument(
        "--as",
        dest="approver",
        required=True,
        metavar="NAME",
        help="who approves (a local claim: whoever runs the command names themselves)",
    )
    approve.add_argument("--revoke", action="store_true", help="withdraw NAME's approval instead")
    approve.set_defaults(func=approve_version)

    registry = commands.add_parser("registry", parents=[state], help="model versions and their promotion history")
    sub = registry.add_subparsers(dest="registry_command", metavar="COMMAND", required=True)
    listing = sub.add_parser("list", parents=[state], help="versions, stages, cards")
    listing.add_argument("model", nargs="?")
    listing.set_defaults(func=list_versions)
    history = sub.add_parser("history", parents=[state], help="every stage transition")
    history.add_argument("model")
    history.set_defaults(func=show_history)
    verify = sub.add_parser(
        "verify",
        parents=[state],
        help="check every registered version's artifact against its digest",
        description="Hash every registered version's model artifact and compare it with the digest the "
        "registry recorded. Exit 0 when all verify, 1 when any is missing or altered.",
    )
    verify.add_argument("model", nargs="?")
    verify.set_defaults(func=verify_artifacts)
    alias = sub.add_parser("alias", parents=[state], help="point a named alias (e.g. champion) at a version")
    alias.add_argument("model")
    alias.add_argument("alias")
    alias.add_argument("version", help="a version number, a stage or another alias")
    alias.add_argument("--as", dest="actor", required=True, metavar="NAME", help="who moves the alias")
    alias.set_defaults(func=set_alias)


def approve_version(args: argparse.Namespace) -> int:
    from controller.api.identity import IdentityError
    from controller.engine.approvals import ApprovalRefused, approve, revoke

    allowed = args.project.spec.approvers if getattr(args, "project", None) else None
    with store(args) as opened:
        try:
            if args.revoke:
                result = revoke(opened, args.model, args.version, args.approver)
            else:
                result = approve(opened, args.model, args.version, args.approver, allowed=allowed)
        except (ApprovalRefused, IdentityError) as exc:
            return fail(str(exc))
    name, count = f"{result.model} v{result.version}", len(result.approvals)
    if args.revoke:
        print(
            f"{result.approver} withdrew the approval of {name} ({count} approval(s) left)."
            if result.changed
            else f"{result.approver} had not approved {name}; {count} approval(s)."
        )
    elif result.changed:
        print(
            f"{result.approver} approved {name} ({_counted(result.approvals, allowed)}); the next apply promotes it "
            "once enough are in."
        )
    else:
        print(f"{result.approver} had already approved {name}; still {count} approval(s).")
    return EXIT_OK


def _counted(approvals: tuple[str, ...], allowed: list[str] | None) -> str:
    """How many approvals there are, and how many count (only the project's approvers')."""
    if allowed is None:
        return f"{len(approvals)} approval(s)"
    ignored = [a for a in approvals if a not in allowed]
    if not ignored:
        return f"{len(approvals)} approval(s)"
    return (
        f"{len(approvals) - len(ignored)} approval(s) counted; {', '.join(ignored)} are not in the project's approvers"
    )


def show_history(args: argparse.Namespace) -> int:
    with store(args) as opened:
        history = opened.registry.history(args.model)
    for p in history:
        print(f"{p.at[:19]}  v{p.version}  {p.from_stage} -> {p.to_stage}  by {p.actor}: {p.reason}")
    if not history:
        print(f"No promotions for {args.model}.")
    return EXIT_OK


def set_alias(args: argparse.Namespace) -> int:
    with store(args) as opened:
        try:
            version = opened.registry.resolve(args.model, args.version)
            opened.registry.set_alias(args.model, args.alias, version, actor=args.actor)
        except KeyError as exc:
            return fail(str(exc.args[0]))
    print(f"{args.model}@{args.alias} -> v{version}")
    return EXIT_OK


def verify_artifacts(args: argparse.Namespace) -> int:
    with store(args) as opened:
        results = opened.verify_artifacts(args.model)
    for version, problem in results:
        print(f"{version.model} v{version.version} ({version.stage}): {problem or 'ok ' + version.artifact_digest}")
    bad = sum(1 for _, problem in results if problem)
    print(f"{len(results)} version(s) checked, {bad} with a missing or altered artifact")
    return EXIT_FINDINGS if bad else EXIT_OK


def list_versions(args: argparse.Namespace) -> int:
    with store(args) as opened:
        for line in _version_lines(opened, args.model):
            print(line)
    return EXIT_OK


def _version_lines(opened: Store, model: str | None) -> list[str]:
    models = [model] if model else opened.registry.models()
    lines = []
    for name in models:
        aliases = opened.registry.aliases(name)
        for v in opened.registry.versions(name):
            approvals = opened.approvals.of(name, v.version)
            named = [a for a, n in aliases.items() if n == v.version]
            card = opened.registry.card(name, v.version)
            lines.append(
                f"{name} v{v.version}: {v.stage}  run {v.run_id}  artifact {v.artifact_digest[:19]}  "
                f"approvals {len(approvals)}"
                + (f"  aliases {','.join(named)}" if named else "")
                + (f"  card {card.html}" if card else "")
            )
    return lines
