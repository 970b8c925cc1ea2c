"""``modelplane plan``, ``apply`` and ``status``: the reconcile loop from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from controller.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    fail,
    open_store,
    policy_flags,
    policy_settings,
    store,
)


def register(commands: argparse._SubParsersAction, state: argparse.ArgumentParser) -> None:
    for name, func, text in (
        ("plan", plan, "show what apply would do, and why"),
        ("apply", apply, "run the plan: data gate, train, metric gate, promote, model cards"),
    ):
        cmd = commands.add_parser(name, parents=[state], help=text, description=text[0].upper() + text[1:] + ".")
        cmd.add_argument("--revision", metavar="REV", help="a git revision (default: the work tree)")
        policy_flags(cmd)
        cmd.add_argument("--no-policy", action="store_true", help="skip the policies")
        if name == "plan":
            cmd.add_argument("--format", "-o", choices=["text", "markdown", "json"], default="text")
        else:
            cmd.add_argument("--wait", action="store_true", help="wait for another apply instead of refusing")
        cmd.set_defaults(func=func)
    status_cmd = commands.add_parser("status", parents=[state], help="each resource's conditions")
    status_cmd.add_argument("--format", "-o", choices=["text", "json"], default="text")
    status_cmd.set_defaults(func=status)


def _reconcile(args: argparse.Namespace, do_apply: bool) -> int:
    import dataclasses
    import gc
    import os
    import shutil
    import tempfile

    from controller.engine.apply import summary as executor_summary
    from controller.engine.reconcile import reconcile
    from controller.loading import DEFAULT_PATHS, UsageError, load
    from controller.output import FORMATTERS, plan_format
    from controller.policy.engine import EngineError
    from controller.policy.sources import PolicyLoadError
    from controller.state.lock import LockHeld
    from controller.triggers.git_source import GitError, GitRepo, context_for

    opened = open_store(args)
    checkout: Path | None = None
    home = Path.cwd()
    try:
        context = context_for(revision=args.revision)
        if args.revision:  # work on the tree as committed, not the work tree
            checkout = Path(tempfile.mkdtemp(prefix="checkout-", dir=opened.state_dir))
            GitRepo(".").export(args.revision, checkout)
            os.chdir(checkout)
        context = dataclasses.replace(context, approvals=opened.all_approvals())
        paths = [p for p in DEFAULT_PATHS if Path(p).exists()]
        result = load(paths) if paths else None
        if result is None:
            return fail(f"nothing to reconcile: none of {', '.join(DEFAULT_PATHS)} exists")
        gc.freeze()  # a short-lived process: keep the collector off the loaded resources
        progress = (lambda msg: print(msg, flush=True)) if do_apply else (lambda _msg: None)
        outcome = reconcile(
            result,
            root=Path("."),
            store=opened,
            policy=policy_settings(args),
            context=context,
            do_apply=do_apply,
            wait=getattr(args, "wait", False),
            progress=progress,
        )
    except (UsageError, GitError, PolicyLoadError, EngineError) as exc:
        return fail(str(exc))
    except LockHeld as exc:
        return fail(str(exc))
    finally:
        opened.close()
        if checkout is not None:
            os.chdir(home)
            shutil.rmtree(checkout, ignore_errors=True)
    if outcome.plan is None:  # validation or policy stopped it
        sys.stdout.write(FORMATTERS["text"](outcome.report))
        return EXIT_FINDINGS
    if not do_apply:
        if outcome.report.errors or outcome.report.warnings:
            sys.stderr.write(FORMATTERS["text"](outcome.report))
        sys.stdout.write(plan_format.render(outcome.plan.to_dict(), args.format))
        return EXIT_OK
    counts = executor_summary(outcome.executed)
    if not outcome.executed:
        print("Nothing to do: every resource is up to date.")
    else:
        print(
            f"Applied {counts['succeeded']} action(s), {counts['failed']} failed, "
            f"{counts['skipped']} skipped. See 'modelplane status'."
        )
    return EXIT_FINDINGS if counts["failed"] else EXIT_OK


def plan(args: argparse.Namespace) -> int:
    return _reconcile(args, do_apply=False)


def apply(args: argparse.Namespace) -> int:
    return _reconcile(args, do_apply=True)


def status(args: argparse.Namespace) -> int:
    with store(args) as opened:
        statuses = opened.statuses()
    if args.format == "json":
        print(json.dumps({f"{k}/{n}": v for (k, n), v in sorted(statuses.items())}, indent=2))
        return EXIT_OK
    if not statuses:
        print("No status yet: run 'modelplane apply'.")
        return EXIT_OK
    for (kind, name), value in sorted(statuses.items()):
        conditions = {c["type"]: c for c in value["conditions"]}
        ready = conditions["Ready"]
        if conditions["Stalled"]["status"] == "True":
            state = "Stalled"
        elif conditions["Reconciling"]["status"] == "True":
            state = "Reconciling"
        else:
            state = "Ready" if ready["status"] == "True" else "NotReady"
        applied = (value.get("lastAppliedRevision") or "-")[:12]
        print(f"{kind}/{name}: {state} ({ready['reason']}) {ready['message']} [applied {applied}]")
    return EXIT_OK
