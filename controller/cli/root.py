"""``-C DIR`` and the project root: where a command runs, as git finds its repo.

The root is the nearest directory from ``-C DIR`` (or the current one) upwards
that holds ``modelplane.yaml`` or ``specs/``. Paths given on the command line are
taken relative to where the user is, then every command runs from the root, so
paths inside specs (data files) and the defaults (``policies/``, the state
directory) resolve against the root, never against the current directory. The
project file's settings fill in the flags the user did not give.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from controller.cli.common import DEFAULT_STATE_DIR

# Options and arguments that name files or directories the user typed.
PATH_ARGS = (
    "paths",
    "state_dir",
    "policies",
    "output",
    "decision_log",
    "schemas_dir",
    "reference",
    "token_file",
    "tls_cert",
    "tls_key",
)
PROJECT_FILE = "modelplane.yaml"  # controller.api.project.FILE_NAME, without importing the models
BUILTIN = "builtin"  # controller.policy.sources.BUILTIN: the policy library, not a path


def find_root(start: Path) -> Path | None:
    """The nearest directory from ``start`` upwards holding ``modelplane.yaml`` or ``specs/``."""
    for directory in (start, *start.parents):
        if (directory / PROJECT_FILE).is_file() or (directory / "specs").is_dir():
            return directory
    return None


def _rebase(value: str, here: Path, root: Path) -> str:
    if value in ("-", BUILTIN) or not value:
        return value
    absolute = (here / value).resolve()
    return str(absolute.relative_to(root)) if absolute.is_relative_to(root) else str(absolute)


def enter(args: argparse.Namespace) -> None:
    """Find the root, read its project file, rebase the user's paths, and move to the root.
    Raises ``ProjectError`` (file:line:col) for a wrong project file."""
    here = Path.cwd()
    start = (here / args.directory_C).resolve() if args.directory_C else here
    if args.directory_C and not start.is_dir():
        raise NotADirectoryError(f"-C {args.directory_C}: no such directory")
    root = find_root(start) or start
    if root != here:
        defaults = {"state_dir": DEFAULT_STATE_DIR}
        for name in PATH_ARGS:
            value = getattr(args, name, None)
            if (
                value is None
                or value == defaults.get(name)
                or (name == "decision_log" and value.startswith(".modelplane/"))
            ):
                continue
            setattr(
                args,
                name,
                [_rebase(v, here, root) for v in value] if isinstance(value, list) else _rebase(value, here, root),
            )
        if getattr(args, "target", None) and Path(here / args.target).is_file():  # `step ACTION.json`
            args.target = _rebase(args.target, here, root)
        os.chdir(root)
    args.project = None
    if (root / PROJECT_FILE).is_file():  # read (and import the models) only when there is one
        from controller.loading.project import read_project

        args.project = read_project(root).project
    if args.project is not None:
        spec = args.project.spec
        if args.state_dir == DEFAULT_STATE_DIR:
            args.state_dir = spec.stateDir
