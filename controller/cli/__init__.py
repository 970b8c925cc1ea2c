"""The ``modelplane`` command: flags in, one library call, formatted output, an exit code.

One module per command group; each has ``register(commands, state)`` adding its
parsers and a function per command. No business logic lives here, and nothing
heavy is imported to build the parser (``modelplane --version`` stays instant).
Exit codes are in :mod:`controller.cli.common`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from controller import __version__
from controller.cli import audit, controller, policy, reconcile, registry, runs, schemas, serve, state, validate
from controller.cli.common import DEFAULT_STATE_DIR, EXIT_OK, EXIT_STATE_LOST, EXIT_USAGE, state_flag

GROUPS = (validate, audit, reconcile, registry, runs, state, policy, serve, controller, schemas)


def build_parser() -> argparse.ArgumentParser:
    state = state_flag()
    parser = argparse.ArgumentParser(
        prog="modelplane",
        description="A declarative GitOps control plane for machine learning.",
    )
    parser.add_argument("--version", action="version", version=f"modelplane {__version__}")
    parser.add_argument(
        "-C",
        "--root",
        dest="directory_C",
        metavar="DIR",
        help="run as if started in DIR (the platform repo, or a directory inside it)",
    )
    # Its own flag (not the shared parent's, whose default must stay SUPPRESS).
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR, metavar="DIR", help="state directory")
    parser.add_argument(
        "--log-level", default="error", choices=["debug", "info", "warning", "error"], help="log to stderr from"
    )
    parser.add_argument("--log-format", default="text", choices=["text", "json"], help="log records as text or JSON")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in GROUPS:
        group.register(commands, state)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    from controller.cli import logs

    logs.configure(args.log_level, args.log_format)
    import sqlite3

    from controller.cli import root
    from controller.loading.project import ProjectError
    from controller.state.anchor import StateLost
    from controller.state.db import DB_FILE, StateError, unreadable

    try:
        root.enter(args)
    except (ProjectError, OSError) as exc:
        print(f"modelplane: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except StateLost as exc:
        print(f"modelplane: state lost: {exc}", file=sys.stderr)
        return EXIT_STATE_LOST
    except StateError as exc:
        print(f"modelplane: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except sqlite3.DatabaseError as exc:  # damage SQLite finds only when it reads the page
        print(f"modelplane: {unreadable(Path(args.state_dir) / DB_FILE, exc)}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. `modelplane validate | head`
        return EXIT_OK
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
