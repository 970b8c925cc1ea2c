"""Read a platform repo, in its work tree or at a git revision, with git itself.

Called by the CLI: ``audit --revision`` loads the resources and policies as they
were at a commit; :class:`GitSource` is the source ``plan``, ``apply`` and
``step`` hand to the engine. The commit is described for policies
(``data.modelplane.context``).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from controller.loading import Keep, LoadResult, load, load_blobs
from controller.loading.cache import Entries, SpecCache
from controller.loading.loader import MAX_FILE_BYTES, discover
from controller.policy.evaluate import Context
from controller.policy.sources import BUILTIN, PolicyFile, combine, library
from controller.policy.sources import discover as discover_policies


class GitError(Exception):
    pass


ANCHOR_REF = "refs/modelplane/audit"
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # git's empty tree object


@dataclass(frozen=True)
class Commit:
    sha: str
    author: str
    branch: str | None


class GitRepo:
    def __init__(self, root: str | Path = ".") -> None:
        self.root = Path(root)

    def _git(self, *args: str, data: bytes | None = None) -> bytes:
        try:
            out = subprocess.run(
                ["git", "-C", str(self.root), *args], input=data, capture_output=True, check=True, timeout=120
            )
        except FileNotFoundError as exc:
            raise GitError("git is not installed") from exc
        except subprocess.CalledProcessError as exc:
            raise GitError(exc.stderr.decode(errors="replace").strip() or f"git {' '.join(args)} failed") from exc
        return out.stdout

    def is_repo(self) -> bool:
        try:
            self._git("rev-parse", "--git-dir")
        except GitError:
            return False
        return True

    def commit(self, revision: str = "HEAD") -> Commit:
        if revision.startswith("-"):  # never an option to git
            raise GitError(f"'{revision}' is not a revision")
        try:
            # HEAD itself is read in one call; any other revision is verified first, so
            # that a range ('a..b') or a pattern is refused rather than read as one.
            sha = "HEAD"
            if revision != "HEAD":
                sha = self._git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}").decode().strip()
            out = self._git("log", "-1", "--no-show-signature", "--format=%H%x00%an <%ae>%x00%D", sha, "--")
            full, author, decoration = out.decode().rstrip("\n").split("\0")  # nothing read: not one commit
        except (GitError, ValueError):
            raise GitError(
                f"'{revision}' is not a commit of the git repository at {Path(self.root).resolve()} "
                "(a branch, tag or commit id; check 'git log')"
            ) from None
        # On a branch, HEAD's decoration reads 'HEAD -> main, ...'; detached, 'HEAD, ...'.
        branch = next((d[len("HEAD -> ") :] for d in decoration.split(", ") if d.startswith("HEAD -> ")), None)
        return Commit(full, author, branch if revision == "HEAD" else None)

    def changed_files(self, revision: str | None = None) -> tuple[str, ...]:
        """Files a commit changed (against its first parent), or, without a revision,
        the work tree's changes against HEAD, untracked files included."""
        if revision:
            tree = self._git(
                "diff-tree", "--no-commit-id", "--name-only", "-r", "--root", "-m", "--first-parent", revision
            )
            return tuple(sorted(set(filter(None, tree.decode().splitlines()))))
        # One call for both (staged and unstaged changes, untracked files), and without
        # refreshing the index: reading the context never writes to the repo.
        out = self._git("--no-optional-locks", "status", "--porcelain", "-z", "--untracked-files=all", "--no-renames")
        return tuple(sorted({entry[3:] for entry in out.decode().split("\0") if len(entry) > 3}))

    def export(self, revision: str, destination: Path) -> str:
        """Write the tree at ``revision`` into ``destination``; returns the commit sha."""
        import io
        import tarfile

        sha = self.commit(revision).sha
        archive = self._git("archive", "--format=tar", sha)
        destination.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(destination, filter="data")
        return sha

    def fetch(self) -> None:
        """Fetch every remote's branches (a pushed commit the repository does not have yet)."""
        self._git("fetch", "--quiet", "--all")

    def read_anchor(self) -> str | None:
        """The newest audit anchor exported to this repo (``refs/modelplane/audit``), as text."""
        try:
            return self._git("log", "-1", "--format=%B", ANCHOR_REF, "--").decode().strip() or None
        except GitError:
            return None

    def write_anchor(self, text: str) -> str:
        """Append an anchor to ``refs/modelplane/audit`` (a chain of commits on the empty tree);
        returns the anchor commit's sha."""
        parent = (
            self._git("rev-parse", "--verify", "--quiet", ANCHOR_REF).decode().strip() if self.read_anchor() else ""
        )
        ident = ["-c", "user.name=modelplane", "-c", "user.email=modelplane@localhost"]
        args = [*ident, "commit-tree", EMPTY_TREE, "-m", text] + (["-p", parent] if parent else [])
        sha = self._git(*args).decode().strip()
        self._git("update-ref", ANCHOR_REF, sha, *([parent] if parent else []))
        return sha

    def files(self, revision: str, paths: list[str]) -> list[tuple[str, bytes]]:
        """(path, content) of every file under ``paths`` at ``revision``, in path order."""
        sha = self.commit(revision).sha
        listing = self._git("ls-tree", "-r", "-z", "--full-tree", sha, "--", *paths).split(b"\0")
        entries: list[tuple[str, str]] = []
        for entry in filter(None, listing):
            meta, _, raw_path = entry.partition(b"\t")
            _, kind, blob = meta.split()
            if kind == b"blob":
                entries.append((raw_path.decode(), blob.decode()))
        if not entries:
            return []
        batch = self._git("cat-file", "--batch", data="".join(f"{b}\n" for _, b in entries).encode())
        out: list[tuple[str, bytes]] = []
        pos = 0
        for path, _ in entries:  # cat-file answers in the order it was asked
            header_end = batch.index(b"\n", pos)
            size = int(batch[pos:header_end].split()[2])
            start = header_end + 1
            out.append((path, batch[start : start + size]))
            pos = start + size + 1
        return sorted(out)


def context_for(root: str = ".", revision: str | None = None) -> Context:
    """What policies see of the repo at ``revision`` (the work tree when None); empty
    outside a git repository, or in one without commits."""
    repo = GitRepo(root)
    try:
        commit = repo.commit(revision or "HEAD")
    except GitError:  # not a repository, or an empty one (no HEAD yet)
        return Context()
    return Context(
        revision=commit.sha,
        branch=commit.branch,
        author=commit.author,
        changed_files=repo.changed_files(commit.sha if revision else None),
    )


def _revision_policies(repo: GitRepo, revision: str, sources: Sequence[str]) -> list[PolicyFile]:
    """The policy set at ``revision``: the repo's directories as committed there, and
    the built-in library as installed (it is not part of the repo)."""
    parts = []
    for source in sources:
        if source == BUILTIN:
            parts.append((source, library()))
            continue
        files = [PolicyFile(p, b.decode("utf-8")) for p, b in repo.files(revision, [source]) if p.endswith(".rego")]
        parts.append((f"{source}' at revision '{revision}", files))
    return combine(parts)


def load_revision(
    revision: str, paths: list[str], policies: Sequence[str], root: str = "."
) -> tuple[LoadResult, list[PolicyFile]]:
    """Resources and policies exactly as committed at ``revision``."""
    repo = GitRepo(root)
    return load_blobs(repo.files(revision, paths)), _revision_policies(repo, revision, policies)


def _relative(path: str, root: Path) -> str:
    absolute = Path(path).resolve()
    return str(absolute.relative_to(root)) if absolute.is_relative_to(root) else path


class GitSource:
    """A platform repo on disk: its work tree, or any revision read with git itself.

    Implements :class:`controller.engine.source.Source`. Paths are relative to
    ``root``; findings name files relative to it, whatever the current directory.
    """

    def __init__(
        self, root: str | Path = ".", *, scratch: Path | None = None, workers: int = 1, cache: Entries | None = None
    ) -> None:
        self.root = Path(root).resolve()
        self.repo = GitRepo(self.root)
        self.scratch = scratch  # where revisions are exported (default: the system's temp dir)
        self.workers = workers  # loader processes for a large work tree (the CLI, owning its process, asks)
        self.cache = cache  # what the work tree's spec files loaded to (the state directory's cache)

    def context(self, revision: str | None) -> Context:
        return context_for(str(self.root), revision)

    def load(self, revision: str | None, paths: Sequence[str], *, keep: Keep = "resources") -> LoadResult:
        if revision:
            return load_blobs(self.repo.files(revision, list(paths)), keep=keep)
        if self.root == Path.cwd().resolve():  # names are relative already: the loader reads (in parallel)
            cache = SpecCache(self.cache, max_file_bytes=MAX_FILE_BYTES) if self.cache is not None else None
            return load([p for p in paths if Path(p).exists()], workers=self.workers, keep=keep, cache=cache)
        blobs = []
        for path in paths:
            if not (self.root / path).exists():
                continue
            for name in discover([str(self.root / path)]):
                with open(name, "rb") as handle:
                    blobs.append((_relative(name, self.root), handle.read(MAX_FILE_BYTES + 1)))
        return load_blobs(blobs, keep=keep)

    def policy_files(self, revision: str | None, sources: Sequence[str]) -> list[PolicyFile]:
        if revision:
            return _revision_policies(self.repo, revision, sources)
        absolute = [s if s == BUILTIN or Path(s).is_absolute() else str(self.root / s) for s in sources]
        files = discover_policies(absolute)
        builtin = f"{BUILTIN}/"
        return [f if f.path.startswith(builtin) else PolicyFile(_relative(f.path, self.root), f.text) for f in files]

    def anchor(self) -> str | None:
        return self.repo.read_anchor() if self.repo.is_repo() else None

    @contextmanager
    def tree(self, revision: str | None) -> Iterator[Path]:
        if not revision:
            yield self.root
            return
        if self.scratch is not None:
            self.scratch.mkdir(parents=True, exist_ok=True)
        checkout = Path(tempfile.mkdtemp(prefix="checkout-", dir=self.scratch))
        try:
            self.repo.export(revision, checkout)
            yield checkout
        finally:
            shutil.rmtree(checkout, ignore_errors=True)
