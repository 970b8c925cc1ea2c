"""``modelplane serve``: the locally served InferenceServices and who may call them."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from controller.cli.common import EXIT_FINDINGS, EXIT_OK, fail, store


def register(commands: argparse._SubParsersAction, state: argparse.ArgumentParser) -> None:
    serve = commands.add_parser("serve", parents=[state], help="served models: status, stop, callers")
    sub = serve.add_subparsers(dest="serve_command", metavar="COMMAND", required=True)
    status = sub.add_parser("status", parents=[state], help="endpoints, versions, traffic shares and health")
    status.add_argument("service", nargs="?", help="one service (default: all)")
    status.add_argument("-o", "--output-format", choices=["text", "json"], default="text", dest="format")
    status.set_defaults(func=show_status)
    url = sub.add_parser("url", parents=[state], help="print a running service's endpoint (for scripts)")
    url.add_argument("service")
    url.set_defaults(func=show_url)
    stop = sub.add_parser("stop", parents=[state], help="stop a service's server (the next apply starts it)")
    stop.add_argument("services", nargs="*", metavar="SERVICE")
    stop.add_argument("--all", action="store_true", help="stop every served service")
    actor_flag(stop)
    stop.set_defaults(func=stop_services)
    caller = sub.add_parser("caller", parents=[state], help="who may call served models (tokens and groups)")
    callers = caller.add_subparsers(dest="caller_command", metavar="COMMAND", required=True)
    add = callers.add_parser("add", parents=[state], help="add a caller; prints its token once")
    add.add_argument("name")
    add.add_argument("--group", action="append", required=True, metavar="GROUP", help="a group; repeat for more")
    actor_flag(add)
    add.set_defaults(func=add_caller)
    listing = callers.add_parser("list", parents=[state], help="the callers and their groups (never tokens)")
    listing.set_defaults(func=list_callers)
    remove = callers.add_parser("remove", parents=[state], help="remove a caller: its token stops working")
    remove.add_argument("name")
    actor_flag(remove)
    remove.set_defaults(func=remove_caller)


def actor_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as", dest="actor", metavar="NAME", help="who does it, for the audit log (default: you)")


def _actor(args: argparse.Namespace) -> str:
    return str(args.actor or f"local:{getpass.getuser()}")


def _text(entry: dict[str, Any]) -> str:
    health = f"{entry['state']}"
    if entry["error"] and entry["state"] != "ready":
        health += f" ({entry['error']})"
    lines = [f"{entry['service']}  {health}  {entry['url'] or '-'}"]
    canary = sum(v["weight"] for v in entry["variants"] if v["role"] == "canary")
    for variant in entry["variants"]:
        share = {"stable": 100 - canary, "canary": variant["weight"]}.get(variant["role"])
        shown = f"{share:g}% of calls" if share is not None else f"a copy of {variant['weight']:g}% of calls"
        lines.append(f"  {variant['role']:7s} {variant['model']} v{variant['version']}  {shown}")
    replicas = len(entry["replicas"])
    facts = [f"generation {entry['generation']}", f"{replicas} replica(s)", f"{entry['restarts']} restart(s)"]
    if entry["cold_starts"]:
        facts.append(f"{entry['cold_starts']} cold start(s), last {entry['last_cold_start_s']} s")
    lines.append("  " + ", ".join(facts))
    return "\n".join(lines)


def show_status(args: argparse.Namespace) -> int:
    from controller.engine.serving import service_statuses

    with store(args) as opened:
        entries = service_statuses(opened, args.service)
    if args.service and not entries:
        return fail(f"no service named {args.service} is deployed")
    if args.format == "json":
        print(json.dumps(entries, indent=2, sort_keys=True))
    elif not entries:
        print("No service is deployed. An InferenceService with target: local is deployed by 'modelplane apply'.")
    else:
        print("\n".join(_text(e) for e in entries))
    healthy = all(e["state"] in ("ready", "idle") for e in entries)
    return EXIT_OK if healthy else EXIT_FINDINGS


def show_url(args: argparse.Namespace) -> int:
    from controller.engine.serving import service_statuses

    with store(args) as opened:
        entries = service_statuses(opened, args.service)
    if not entries or not entries[0]["url"]:
        return fail(f"{args.service} is not running: 'modelplane apply' deploys and starts it")
    print(entries[0]["url"])
    return EXIT_OK


def stop_services(args: argparse.Namespace) -> int:
    from controller.backends.serving.local import LocalServing
    from controller.engine.serving import stop, stop_monitoring

    if bool(args.services) == bool(args.all):
        return fail("name the services to stop, or give --all")
    with store(args) as opened:
        names = LocalServing(opened.state_dir).services() if args.all else args.services
        for name in names:
            stopped = stop(opened, name, actor=_actor(args))
            print(f"{name}: {'stopped' if stopped else 'was not running'}")
        if args.all and stop_monitoring(opened):
            print("prometheus (canary analysis): stopped")
    return EXIT_OK


def add_caller(args: argparse.Namespace) -> int:
    from controller.engine.serving import add_caller as add
    from controller.state.deployments import CallerError

    with store(args) as opened:
        try:
            token, problems = add(opened, args.name, args.group, actor=_actor(args))
        except CallerError as exc:
            return fail(str(exc))
    print(token)  # alone on standard output, so that TOKEN=$(modelplane serve caller add ...) works
    where = "above" if sys.stdout.isatty() else "on standard output"
    print(
        f"modelplane: caller {args.name} added; its token ({where}) is shown this once: keep it secret, and send "
        "it as 'Authorization: Bearer <token>'.",
        file=sys.stderr,
    )
    for problem in problems:
        print(f"modelplane: could not give the caller to {problem}", file=sys.stderr)
    return EXIT_OK if not problems else EXIT_FINDINGS


def list_callers(args: argparse.Namespace) -> int:
    with store(args) as opened:
        callers = opened.deployments.callers()
    for caller in callers:
        print(f"{caller.name:24s} {', '.join(caller.groups):40s} added {caller.created_at[:19]}")
    if not callers:
        print("No callers. Add one: modelplane serve caller add NAME --group GROUP")
    return EXIT_OK


def remove_caller(args: argparse.Namespace) -> int:
    from controller.engine.serving import remove_caller as remove

    with store(args) as opened:
        removed, problems = remove(opened, args.name, actor=_actor(args))
    if not removed:
        return fail(f"no caller named {args.name}")
    print(f"{args.name}: removed")
    for problem in problems:
        print(f"modelplane: could not take the caller from {problem}", file=sys.stderr)
    return EXIT_OK if not problems else EXIT_FINDINGS
