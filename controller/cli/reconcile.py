"""``modelplane plan``, ``apply``, ``step`` and ``status``: the reconcile loop from the command line.

Flags in, one call to :mod:`controller.engine.reconcile`, output and an exit
code out: 0 done (or nothing to do), 1 invalid specs, a stalled resource (for
``plan`` too) or an action that did not succeed, 2 usage, I/O or a held lock,
3 a state that lost audit records.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from controller.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    fail,
    policy_flags,
    policy_settings,
    store,
)

if TYPE_CHECKING:
    from controller.engine.events import Events
    from controller.engine.reconcile import Settings


def register(commands: argparse._SubParsersAction, state: argparse.ArgumentParser) -> None:
    for name, func, text in (
        ("plan", plan, "show what apply would do, and why"),
        ("apply", apply, "run the plan: data gate, train, metric gate, promote, model cards"),
    ):
        cmd = commands.add_parser(name, parents=[state], help=text, description=text[0].upper() + text[1:] + ".")
        cmd.add_argument("--revision", metavar="REV", help="a git revision (default: the work tree)")
        policy_flags(cmd)
        cmd.add_argument("--no-policy", action="store_true", help="skip the policies")
        cmd.add_argument(
            "--retry", action="store_true", help="re-run actions that raised (ReconcileFailed) or are backing off"
        )
        if name == "plan":
            cmd.add_argument("--format", "-o", choices=["text", "markdown", "json"], default="text")
        else:
            cmd.add_argument("--wait", action="store_true", help="wait for another apply instead of refusing")
            cmd.add_argument(
                "--watch",
                action="store_true",
                help="apply again whenever a waiting step is due (a canary walking its steps), until "
                "every resource has settled",
            )
            cmd.add_argument(
                "--watch-timeout", type=float, default=3600.0, metavar="SECONDS", help="give up watching after this"
            )
        cmd.set_defaults(func=func)

    step = commands.add_parser(
        "step",
        parents=[state],
        help="run exactly one planned action (what a Tekton task runs)",
        description="Run one action against the state and artifact store and print its outcome as JSON. "
        "Give an action record (ACTION.json, or '-' for stdin, as 'plan -o json' lists them), or a KIND "
        "and a RESOURCE to run that action of the current plan. The action must be in the plan of its "
        "revision now, after the actions it depends on. Exit 0 when it succeeded (or was already done), "
        "1 when it stalled, must be retried or was refused, 2 on usage errors.",
    )
    step.add_argument("target", metavar="ACTION.json|KIND", help="an action record file, '-', or an action kind")
    step.add_argument("resource", nargs="?", metavar="RESOURCE", help="with a KIND: the resource, as Kind/name")
    step.add_argument("--revision", metavar="REV", help="with a KIND: a git revision (default: the work tree)")
    policy_flags(step)
    step.add_argument("--no-policy", action="store_true", help="skip the policies")
    step.set_defaults(func=run_step)

    status_cmd = commands.add_parser("status", parents=[state], help="each resource's conditions")
    status_cmd.add_argument("--format", "-o", choices=["text", "json"], default="text")
    status_cmd.set_defaults(func=status)


@contextmanager
def _own_process(events: Events | None = None) -> Iterator[None]:
    """What a command that owns its short-lived process may do that the library may not:
    switch the cyclic collector off while loading, validating, deciding and planning
    (hundreds of thousands of small objects, no cycles: the collector would only rescan
    them, a third of a large plan's time), and let the policies be decided in forked
    processes. The collector comes back when the first step starts (training and data
    contracts make cycles) and when the command ends."""
    import gc

    from controller.engine.events import Phase, StepEvent
    from controller.policy.evaluate import parallel

    enabled = gc.isenabled()

    def restore(event: StepEvent | None = None) -> None:
        if enabled and (event is None or event.phase == Phase.STARTED) and not gc.isenabled():
            gc.freeze()  # what was loaded stays out of the collector's way
            gc.enable()

    gc.disable()
    if events is not None:
        events.subscribe(restore)
    try:
        with parallel(os.cpu_count() or 1):
            yield
    finally:
        restore()


def settings_for(args: argparse.Namespace, *, do_apply: bool) -> Settings:
    from controller.engine.events import Events, log_event, progress_printer
    from controller.engine.reconcile import Settings

    events = Events([log_event])
    if do_apply:
        events.subscribe(progress_printer(lambda line: print(line, flush=True)))
    project = getattr(args, "project", None)
    approvers = project.spec.approvers if project is not None else None
    return Settings(
        policy=policy_settings(args),
        apply=do_apply,
        retry=getattr(args, "retry", False),
        wait=getattr(args, "wait", False),
        events=events,
        approvers=frozenset(approvers) if approvers is not None else None,
    )


def _reconcile(args: argparse.Namespace, do_apply: bool) -> int:
    from controller.engine.executor import summary
    from controller.engine.reconcile import NothingToReconcile, reconcile_revision, seconds_until_due
    from controller.loading import UsageError
    from controller.output import FORMATTERS, plan_format
    from controller.policy.engine import EngineError
    from controller.policy.sources import PolicyLoadError
    from controller.state.lock import LockHeld
    from controller.triggers.git_source import GitError, GitSource

    settings = settings_for(args, do_apply=do_apply)
    watch = do_apply and getattr(args, "watch", False)
    deadline = time.monotonic() + getattr(args, "watch_timeout", 0.0)
    try:
        with store(args) as opened, _own_process(settings.events):
            source = GitSource(Path.cwd(), scratch=opened.state_dir, workers=os.cpu_count() or 1, cache=opened.cache)
            outcome = reconcile_revision(source, args.revision, opened, settings)
            while watch and outcome.after is not None:
                due = seconds_until_due(opened, outcome.after)
                if due is None or time.monotonic() + due > deadline:
                    break
                print(f"Watching: the next step is due in {due:.0f} s.", flush=True)
                time.sleep(due + 0.05)
                outcome = reconcile_revision(source, args.revision, opened, settings)
    except (UsageError, GitError, PolicyLoadError, EngineError, LockHeld, NothingToReconcile) as exc:
        return fail(str(exc))
    if outcome.plan is None:  # validation stopped it
        sys.stdout.write(FORMATTERS["text"](outcome.report))
        return EXIT_FINDINGS
    if not do_apply:
        if outcome.report.errors or outcome.report.warnings:
            sys.stderr.write(FORMATTERS["text"](outcome.report))
        sys.stdout.write(plan_format.render(outcome.plan.to_dict(), args.format))
        return EXIT_FINDINGS if outcome.stalled else EXIT_OK
    counts = summary(outcome.executed)
    stalled = outcome.stalled
    if outcome.executed:
        not_done = counts["stalled"] + counts["retry"]
        print(
            f"Applied {counts['succeeded']} action(s), {not_done} did not succeed, "
            f"{counts['skipped']} skipped. See 'modelplane status'."
        )
    elif stalled:  # never "up to date" while something is stuck
        print(f"Nothing to apply; {len(stalled)} resource(s) stalled until their inputs change (or --retry):")
    else:
        print("Nothing to do: every resource is up to date.")
    for ref, why in sorted(stalled.items()):
        print(f"  stalled: {ref}: {why}")
    return EXIT_FINDINGS if stalled or counts["stalled"] or counts["retry"] else EXIT_OK


def plan(args: argparse.Namespace) -> int:
    return _reconcile(args, do_apply=False)


def apply(args: argparse.Namespace) -> int:
    return _reconcile(args, do_apply=True)


def run_step(args: argparse.Namespace) -> int:
    from controller.api.status import ActionKind, OutcomeKind
    from controller.engine.actions import Action, ActionFormatError
    from controller.engine.reconcile import NothingToReconcile, reconcile_revision
    from controller.engine.reconcile import run_step as run_one
    from controller.loading import UsageError
    from controller.policy.engine import EngineError
    from controller.policy.sources import PolicyLoadError
    from controller.state.lock import LockHeld
    from controller.triggers.git_source import GitError, GitSource

    settings = settings_for(args, do_apply=False)
    try:
        with store(args) as opened, _own_process(settings.events):
            source = GitSource(Path.cwd(), scratch=opened.state_dir, workers=os.cpu_count() or 1, cache=opened.cache)
            if args.target in set(ActionKind):
                if not args.resource:
                    return fail(f"'step {args.target}' needs a RESOURCE (Kind/name)")
                planned = reconcile_revision(source, args.revision, opened, settings).plan
                if planned is None:
                    return fail("the specs are invalid: run 'modelplane validate'")
                matching = [a for a in planned.actions if a.kind == args.target and a.resource == args.resource]
                if not matching:
                    return fail(f"the plan has no {args.target} action for {args.resource}")
                action = matching[0]
            else:
                if args.resource:
                    return fail(f"unknown action kind {args.target!r} (one of: {', '.join(ActionKind)})")
                text = sys.stdin.read() if args.target == "-" else Path(args.target).read_text(encoding="utf-8")
                action = Action.from_json(text)
            executed, refused = run_one(source, action, opened, settings)
    except (ActionFormatError, OSError) as exc:
        return fail(f"{args.target}: {exc}")
    except (UsageError, GitError, PolicyLoadError, EngineError, LockHeld, NothingToReconcile) as exc:
        return fail(str(exc))
    if executed is None or executed.outcome is None:
        print(json.dumps({"action": str(action.kind), "key": action.key, "outcome": "Refused", "message": refused}))
        return EXIT_FINDINGS
    out = executed.outcome
    record = {
        "action": str(action.kind),
        "resource": action.resource,
        "key": action.key,
        "outcome": str(out.kind),
        "reason": str(out.reason),
        "message": out.message,
        "duration_s": round(executed.duration_s, 3),
    }
    print(json.dumps(record))
    return EXIT_OK if out.kind == OutcomeKind.SUCCEEDED else EXIT_FINDINGS


def status(args: argparse.Namespace) -> int:
    from controller.api.status import ConditionStatus, ConditionType

    with store(args) as opened:
        statuses = opened.statuses.all()
    if args.format == "json":
        print(json.dumps({ref: s.model_dump(mode="json") for ref, s in statuses.items()}, indent=2))
        return EXIT_OK
    if not statuses:
        print("No status yet: run 'modelplane apply'.")
        return EXIT_OK
    for ref, value in statuses.items():
        ready = value.condition(ConditionType.READY)
        assert ready is not None
        holds = {c.type: c.status == ConditionStatus.TRUE for c in value.conditions}
        if holds.get(ConditionType.STALLED):
            state = "Stalled"
        elif holds.get(ConditionType.RECONCILING):
            state = "Reconciling"
        else:
            state = "Ready" if holds.get(ConditionType.READY) else "NotReady"
        applied = (value.lastAppliedRevision or "-")[:12]
        print(f"{ref}: {state} ({ready.reason}) {ready.message} [applied {applied}]")
    return EXIT_OK
