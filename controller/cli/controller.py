"""``modelplane controller``: the long-running controller server (being built: issue 10).

It serves the webhook routes (``POST /webhooks/github``, ``/webhooks/gitlab``):
deliveries are authenticated, recorded and queued in the state, and a worker thread
reconciles the queued commits one at a time, as ``modelplane apply REVISION`` would;
``modelplane queue list`` shows the queue.
"""

from __future__ import annotations

import argparse
import sys

from controller.cli.common import EXIT_OK, fail, guard_flags, policy_flags, store


def register(commands: argparse._SubParsersAction, state: argparse.ArgumentParser) -> None:
    command = commands.add_parser(
        "controller",
        parents=[state],
        help="serve the webhooks (GitHub, GitLab): deliveries are authenticated and queued",
        description="Serve POST /webhooks/github and /webhooks/gitlab on HOST:PORT. The shared secrets come from "
        "MODELPLANE_GITHUB_WEBHOOK_SECRET and MODELPLANE_GITLAB_WEBHOOK_SECRET (a source without one has no "
        "route); the other routes need 'Authorization: Bearer TOKEN' (MODELPLANE_API_TOKEN or --token-file).",
    )
    command.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    command.add_argument("--port", type=int, default=8080)
    command.add_argument(
        "--branch", action="append", default=[], metavar="BRANCH",
        help="a branch whose pushes are reconciled; repeatable (default: the repository's default branch)",
    )  # fmt: skip
    command.add_argument(
        "--watch-path", action="append", default=[], metavar="PATTERN",
        help="a path pattern whose changes are reconciled; repeatable (default: specs/** policies/** chaos/**)",
    )  # fmt: skip
    command.add_argument(
        "--no-worker", action="store_true", help="only receive and queue deliveries; reconcile nothing"
    )
    policy_flags(command)
    guard_flags(command)
    command.set_defaults(func=serve)
    queue = commands.add_parser("queue", parents=[state], help="the commits webhooks queued, and what became of them")
    sub = queue.add_subparsers(dest="queue_command", metavar="COMMAND", required=True)
    listing = sub.add_parser("list", parents=[state], help="the newest queued commits first")
    listing.add_argument("--limit", type=int, default=50, help="how many (default: 50)")
    listing.add_argument("-o", "--output-format", choices=["text", "json"], default="text", dest="format")
    listing.set_defaults(func=list_queue)


def list_queue(args: argparse.Namespace) -> int:
    import json

    with store(args) as opened:
        items = opened.queue.items(max(1, args.limit))
    if args.format == "json":
        print(json.dumps([i.to_dict() for i in items], indent=2))
        return EXIT_OK
    if not items:
        print("The queue is empty: no webhook delivery has asked for a reconcile.")
        return EXIT_OK
    for item in items:
        where = f"{item.repository or '?'}@{item.branch}"
        detail = f": {item.detail}" if item.detail else ""
        print(f"{item.id:>5}  {item.state:<10}  {where}  {item.sha[:12]}  (attempts {item.attempts}){detail}")
    return EXIT_OK


def serve(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from pathlib import Path

    from controller.cli.reconcile import settings_for
    from controller.server.guard import Guard
    from controller.server.run import ServerError
    from controller.server.serve import ControllerStarted, serve_controller
    from controller.state.db import StateError

    def announce(started: ControllerStarted) -> None:
        for warning in started.warnings:
            print(warning, file=sys.stderr, flush=True)
        routes = ", ".join(f"POST /webhooks/{s}" for s in started.sources)
        worker = "a worker reconciles them one at a time" if started.worker else "no worker (--no-worker)"
        print(
            f"controller on {started.url}: {routes}; deliveries are queued in {started.state_dir}, {worker}",
            flush=True,
        )
        if started.clients:
            print(f"clients with a token: {', '.join(started.clients)}", flush=True)

    guard = Guard(
        token_file=Path(args.token_file) if args.token_file else None,
        insecure_no_auth=args.insecure_no_auth,
        tls_cert=Path(args.tls_cert) if args.tls_cert else None,
        tls_key=Path(args.tls_key) if args.tls_key else None,
        behind_tls_proxy=args.behind_tls_proxy,
    )
    try:
        serve_controller(
            guard=guard,
            host=args.host,
            port=args.port,
            state_dir=Path(args.state_dir),
            branches=args.branch,
            watch_paths=args.watch_path,
            on_ready=announce,
            settings=None if args.no_worker else (lambda: replace(settings_for(args, do_apply=True), wait=True)),
        )
    except (ServerError, StateError, OSError) as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        pass
    return EXIT_OK
