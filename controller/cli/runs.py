"""``modelplane runs``: training runs, listed, shown in full, compared."""

from __future__ import annotations

import argparse
import json

from controller.cli.common import EXIT_OK, fail, store


def register(commands: argparse._SubParsersAction, state: argparse.ArgumentParser) -> None:
    runs = commands.add_parser("runs", parents=[state], help="training runs: list, show, compare")
    sub = runs.add_subparsers(dest="runs_command", metavar="COMMAND", required=True)
    listing = sub.add_parser("list", parents=[state], help="every run")
    listing.add_argument("--model", metavar="MODEL")
    listing.set_defaults(func=list_runs)
    show = sub.add_parser("show", parents=[state], help="one run in full (JSON)")
    show.add_argument("run", metavar="RUN_ID")
    show.set_defaults(func=show_run)
    compare = sub.add_parser("compare", parents=[state], help="two runs side by side")
    compare.add_argument("a", metavar="RUN_A")
    compare.add_argument("b", metavar="RUN_B")
    compare.set_defaults(func=compare_runs)


def list_runs(args: argparse.Namespace) -> int:
    with store(args) as opened:
        runs = opened.runs.all(args.model)
    for r in runs:
        metric = ", ".join(f"{k}={v:.4f}" for k, v in sorted(r.metrics.items())[:3])
        print(f"{r.id}  {r.model:28s} {r.status:11s} {r.started_at[:19]}  data {r.dataset_hash[7:15]}  {metric}")
    if not runs:
        print("No runs yet.")
    return EXIT_OK


def show_run(args: argparse.Namespace) -> int:
    with store(args) as opened:
        run = opened.runs.get(args.run)
    if run is None:
        return fail(f"no run (or more than one) matches {args.run}")
    print(json.dumps(run.to_dict(), indent=2))
    return EXIT_OK


def compare_runs(args: argparse.Namespace) -> int:
    with store(args) as opened:
        found_a, found_b = opened.runs.get(args.a), opened.runs.get(args.b)
    missing = [i for i, r in ((args.a, found_a), (args.b, found_b)) if r is None]
    if found_a is None or found_b is None:
        return fail(f"no run (or more than one) matches {', '.join(missing)}")
    a, b = found_a.to_dict(), found_b.to_dict()
    rows = [
        ("model", a["model"], b["model"]),
        ("status", a["status"], b["status"]),
        ("revision", a["revision"], b["revision"]),
        ("dataset", a["dataset_hash"][:19], b["dataset_hash"][:19]),
    ]
    for key in sorted(set(a["params"]) | set(b["params"])):
        rows.append((f"param {key}", a["params"].get(key), b["params"].get(key)))
    for key in sorted(set(a["metrics"]) | set(b["metrics"])):
        va, vb = a["metrics"].get(key), b["metrics"].get(key)
        delta = f"{vb - va:+.4f}" if isinstance(va, float) and isinstance(vb, float) else ""
        rows.append((f"metric {key}", va, f"{vb} {delta}".strip()))
    rows.append(("duration s", a["duration_s"], b["duration_s"]))
    rows.append(("trials", len(a["trials"]), len(b["trials"])))
    print(f"{'':24s} {a['id']:>24s} {b['id']:>24s}")
    for label, va, vb in rows:
        print(f"{label:24s} {va!s:>24s} {vb!s:>24s}")
    return EXIT_OK
