"""What policies see of the repo: the commit, its author and branch, and the changed
files, read with git itself (two calls for the work tree), without writing to the repo."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from controller.triggers.git_source import GitError, GitRepo, context_for


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=Ada", "-c", "user.email=ada@example.com", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "platform"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / ".gitignore").write_text("*.log\n")
    (root / "kept.yaml").write_text("a: 1\n")
    (root / "old name.yaml").write_text("b: 2\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    return root


def test_the_work_tree_context_names_every_change_and_nothing_ignored(repo: Path) -> None:
    (repo / "kept.yaml").write_text("a: 2\n")  # unstaged
    git(repo, "mv", "old name.yaml", "new name.yaml")  # staged rename: both paths
    (repo / "specs").mkdir()
    (repo / "specs" / "fresh.yaml").write_text("c: 3\n")  # untracked, in a new directory
    (repo / "debug.log").write_text("ignored\n")
    context = context_for(str(repo))
    assert context.revision == git(repo, "rev-parse", "HEAD")
    assert (context.branch, context.author) == ("main", "Ada <ada@example.com>")
    assert context.changed_files == ("kept.yaml", "new name.yaml", "old name.yaml", "specs/fresh.yaml")


def test_reading_the_context_does_not_write_the_index(repo: Path) -> None:
    (repo / "kept.yaml").write_text("a: 2\n")
    index = repo / ".git" / "index"
    before = index.stat().st_mtime_ns
    context_for(str(repo))
    assert index.stat().st_mtime_ns == before


def test_a_detached_head_has_no_branch_and_a_revision_is_read_as_committed(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    (repo / "kept.yaml").write_text("a: 2\n")
    git(repo, "commit", "-q", "-am", "second")
    git(repo, "checkout", "-q", "--detach", first)
    assert context_for(str(repo)).branch is None
    second = context_for(str(repo), "main")
    assert (second.branch, second.changed_files) == (None, ("kept.yaml",))
    assert second.revision == git(repo, "rev-parse", "main")


@pytest.mark.parametrize("revision", ["HEAD~1..HEAD", "^HEAD", "--all", "no-such-branch"])
def test_only_a_single_commit_is_a_revision(repo: Path, revision: str) -> None:
    with pytest.raises(GitError, match="not a"):
        GitRepo(repo).commit(revision)


def test_outside_a_repository_or_before_the_first_commit_the_context_is_empty(tmp_path: Path) -> None:
    assert context_for(str(tmp_path)).revision is None
    git(tmp_path, "init", "-q")
    assert context_for(str(tmp_path)).revision is None
