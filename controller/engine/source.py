"""Where the engine reads a platform repo from: the protocol, implemented above it.

The engine never reads the current directory or git by itself: it is handed a
:class:`Source` (``controller.triggers.git_source.GitSource`` reads a work
tree, or a git revision with git itself) and asks it for the resources, the
policies, the policy context and a directory holding the tree's data files.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from controller.loading import Keep, LoadResult
from controller.policy.evaluate import Context
from controller.policy.sources import PolicyFile


class Source(Protocol):
    def context(self, revision: str | None) -> Context:
        """The commit (sha, author, branch, changed files); an empty context outside git."""
        ...

    def load(self, revision: str | None, paths: Sequence[str], *, keep: Keep = "resources") -> LoadResult:
        """The resources under ``paths`` (relative to the repo root), named by their relative paths,
        keeping what ``keep`` says (see :func:`controller.loading.load`)."""
        ...

    def policy_files(self, revision: str | None, sources: Sequence[str]) -> list[PolicyFile]:
        """The Rego files of the policy set (``builtin`` or directories); raises
        PolicyLoadError when there are none."""
        ...

    def anchor(self) -> str | None:
        """The newest audit anchor exported to the repo (``modelplane audit anchor``), if any."""
        ...

    def tree(self, revision: str | None) -> AbstractContextManager[Path]:
        """A directory holding the tree at ``revision`` (the work tree itself when None)."""
        ...
