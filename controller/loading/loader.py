"""Files -> typed resources, with every mistake located.

Called by the CLI's ``validate`` (and ``audit``, ``plan``, ``policy``) and by the
engine when it loads a revision (:func:`load_blobs`). ``load`` never raises on
bad input: it returns what loaded and the findings.

A library call with no process-wide side effects: it leaves the garbage
collector alone, and it starts worker processes only when the caller asks
(``workers``), from the main thread of a process that runs no other thread.

What a loaded resource keeps is the caller's choice (``keep``): its typed model,
its data and positions (``"resources"``, the default); only the data and
positions, the model being rebuilt when asked for (``"data"``: what policies
need, at half the memory); or only its kind, name and reference edges
(``"references"``: a validation that reports findings and nothing else).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from controller.api import API_VERSIONS, KINDS, Resource
from controller.api.findings import Finding, Location, Report
from controller.loading import errors
from controller.loading.references import Columns, Edge, check_references, columns_of
from controller.loading.yaml_reader import Document, parse

if TYPE_CHECKING:
    from controller.loading.cache import SpecCache

DEFAULT_PATHS = ("specs", "chaos")
MAX_FILE_BYTES = 1 << 20  # 1 MiB: specs are small; anything bigger is a mistake or an attack
YAML_SUFFIXES = (".yaml", ".yml")
PARALLEL_MIN_FILES = 200  # below this, starting worker processes costs more than it saves
STDIN = "-"
STDIN_NAME = "<stdin>"

Keep = Literal["resources", "data", "references"]
KEEP: tuple[Keep, ...] = ("resources", "data", "references")


class DataNotKept(AttributeError):
    """A resource's data or model was asked for, but the load kept only its references."""


@dataclass(slots=True, eq=False)
class LoadedResource:
    """A valid resource: its kind, name and reference edges, and (unless loaded with
    ``keep="references"``) the document it came from (raw data and positions).

    With ``keep="data"`` the typed model is validated again from the data the first
    time :attr:`resource` is read (the data then has its mapping keys in sorted order:
    it is kept as canonical JSON).
    """

    kind: str
    name: str
    name_at: Location  # where metadata.name is written
    edges: tuple[Edge, ...]  # the resources this one points at, located
    _document: Document | None = None
    _model: Resource | None = None
    columns: Columns | None = None  # a Dataset's declared columns, a Model's used ones, located

    @property
    def resource(self) -> Resource:
        if self._model is None:
            document = self.document
            self._model = KINDS[self.kind].model_validate(document.data)
        return self._model

    def model(self) -> Resource:
        """The typed model, as :attr:`resource` gives it, but not kept when the load kept data
        only: for a caller that reads each model once (planning keeps a fifth of the memory)."""
        if self._model is not None:
            return self._model
        return KINDS[self.kind].model_validate(self.document.data)

    @property
    def document(self) -> Document:
        if self._document is None:
            raise DataNotKept(f"{self.ref}: loaded with keep='references'; its data was not kept")
        return self._document

    @property
    def key(self) -> tuple[str, str]:
        return self.kind, self.name

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def raw(self) -> dict[str, Any]:
        return self.document.data

    def location(self, path: tuple[str | int, ...] = ()) -> Location:
        return self.document.location(path)


@dataclass
class LoadResult:
    resources: list[LoadedResource] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    rejected: int = 0  # documents that parsed but are not valid resources
    invalid: set[tuple[str, str]] = field(default_factory=set)  # (kind, name) of those that name themselves
    # The rest of the repo when a subset was loaded (see ``load(context=...)``): references
    # resolve against these and policies see them, but they are neither reported nor judged.
    context: list[LoadedResource] = field(default_factory=list)

    def report(self) -> Report:
        return Report(findings=list(self.findings), files=list(self.files), resources=len(self.resources))

    def extend(self, other: LoadResult) -> None:
        self.resources.extend(other.resources)
        self.findings.extend(other.findings)
        self.files.extend(other.files)
        self.rejected += other.rejected
        self.invalid |= other.invalid

    def by_kind(self, kind: str) -> list[LoadedResource]:
        return [r for r in self.resources if r.kind == kind]


class UsageError(Exception):
    """A path that does not exist, or nothing to read: exit code 2, not a finding."""


def discover(paths: Iterable[str]) -> Iterator[str]:
    """YAML files under ``paths`` (recursively, sorted), ``-`` passed through.

    In a directory: every file (or link to a file) named ``*.yaml`` or ``*.yml``
    below it, in path order, skipping hidden files and directories; links to
    directories are not followed. A dangling link is listed too, so that reading
    it reports it (a spec must never vanish silently).
    """
    for raw in paths:
        if raw == STDIN:
            yield STDIN_NAME
            continue
        path = Path(raw)
        if path.is_dir():
            yield from _walk(str(path))
        elif path.is_file():
            yield str(path)
        else:
            raise UsageError(f"{raw}: no such file or directory")


def _walk(root: str) -> list[str]:
    """What ``sorted(Path(root).rglob("*"))`` keeps (see :func:`discover`), with one
    ``scandir`` per directory instead of a ``stat`` and a ``Path`` per file."""
    found: list[tuple[str, ...]] = []
    pending: list[tuple[str, tuple[str, ...]]] = [(root, ())]
    while pending:
        directory, parts = pending.pop()
        try:
            with os.scandir(directory) as entries:
                listed = list(entries)
        except PermissionError:
            continue
        for entry in listed:
            name = entry.name
            if name.startswith("."):
                continue  # hidden, and everything below it
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append((entry.path, (*parts, name)))
                    continue
                if os.path.splitext(name)[1] in YAML_SUFFIXES and (
                    entry.is_file() or (entry.is_symlink() and not os.path.exists(entry.path))
                ):
                    found.append((*parts, name))  # a dangling link too: reading it reports it
            except OSError:
                continue
    prefix = "" if root == "." else root if root.endswith("/") else root + "/"
    return [prefix + "/".join(relative) for relative in sorted(found)]


def leaves_repo(name: str) -> str | None:
    """Where ``name`` really is, when it is a relative path (a file of the repo, the
    working directory being its root) that a link, in any of its components (the file,
    or a directory such as ``specs`` itself), takes outside the repo; else None. A pull
    request could otherwise make the runner read any file through a link."""
    if os.path.isabs(name):
        return None
    target, here = os.path.realpath(name), os.path.realpath(".")
    if not os.path.exists(target) or target == here or target.startswith(here + os.sep):
        return None
    return target


def _read(name: str, stdin: IO[Any] | None, max_bytes: int) -> tuple[str | None, Finding | None]:
    if name != STDIN_NAME and (target := leaves_repo(name)) is not None:
        message = f"a symbolic link to {target!r}, outside the repo: spec files must live in the repo (copy it in)"
        return None, Finding("io-error", message, Location(name, 1, 1))
    try:
        if name == STDIN_NAME:
            stream = stdin if stdin is not None else sys.stdin.buffer
            data = stream.read(max_bytes + 1)
            data = data.encode() if isinstance(data, str) else data
        else:
            with open(name, "rb") as handle:
                data = handle.read(max_bytes + 1)
    except OSError as exc:
        if os.path.islink(name) and not os.path.exists(name):
            message = f"a symbolic link to {os.readlink(name)!r}, which does not exist; fix or remove the link"
        else:
            message = f"cannot read file: {exc.strerror}"
        return None, Finding("io-error", message, Location(name, 1, 1))
    return _decode(name, data, max_bytes)


def _decode(name: str, data: bytes, max_bytes: int) -> tuple[str | None, Finding | None]:
    if len(data) > max_bytes:
        return None, Finding("file-too-large", f"file is larger than the {max_bytes}-byte limit", Location(name, 1, 1))
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, Finding("yaml-syntax", "file is not valid UTF-8", Location(name, line, 1))


def _resource_name(data: dict[str, Any]) -> str | None:
    meta = data.get("metadata")
    kind = data.get("kind")
    if isinstance(meta, dict) and isinstance(meta.get("name"), str) and isinstance(kind, str):
        return f"{kind}/{meta['name']}"
    return None


def _to_resource(doc: Document, keep: Keep = "resources") -> tuple[LoadedResource | None, list[Finding]]:
    data = doc.data
    if not isinstance(data, dict):
        return None, [
            Finding(
                "not-a-mapping",
                f"document {doc.index + 1} is a {type(data).__name__}, "
                "not a mapping with apiVersion, kind, metadata and spec",
                Location(doc.file, doc.line, doc.column),
            )
        ]
    name = _resource_name(data)
    api_version = data.get("apiVersion")
    kind = data.get("kind")
    if api_version is None or kind is None:
        missing = "apiVersion" if api_version is None else "kind"
        return None, [
            Finding(
                "missing-field", f"missing required field '{missing}'", doc.location((), at_key=True), resource=name
            )
        ]
    if api_version not in API_VERSIONS:
        return None, [
            Finding(
                "unknown-api-version",
                f"unknown apiVersion '{api_version}'; known: {', '.join(API_VERSIONS)}",
                doc.location(("apiVersion",)),
                resource=name,
                field="apiVersion",
            )
        ]
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        close = errors._closest(str(kind), list(KINDS))
        hint = f"did you mean '{close}'? " if close else ""
        return None, [
            Finding(
                "unknown-kind",
                f"unknown kind '{kind}'; {hint}known kinds: {', '.join(sorted(KINDS))}",
                doc.location(("kind",)),
                resource=name,
                field="kind",
            )
        ]
    try:
        resource = cls.model_validate(data)
    except ValidationError as exc:
        return None, errors.translate_all(exc, cls, doc, name)
    edges = tuple(Edge(ref.kind, ref.name, ref.path, doc.location(ref.path)) for ref in resource.references())
    return LoadedResource(
        resource.kind,
        resource.name,
        doc.location(("metadata", "name")),
        edges,
        None if keep == "references" else doc.compact() if keep == "data" else doc,
        resource if keep == "resources" else None,
        columns_of(resource, doc),
    ), []


def load_text(text: str, file: str, *, keep: Keep = "resources") -> LoadResult:
    """Load resources from one YAML text (no cross-resource checks)."""
    _check_keep(keep)
    result = LoadResult(files=[file])
    parsed = parse(text, file)
    result.findings.extend(parsed.findings)
    for doc in parsed.documents:
        loaded, findings = _to_resource(doc, keep)
        result.findings.extend(findings)
        if loaded is not None:
            result.resources.append(loaded)
        else:
            result.rejected += 1
            data = doc.data if isinstance(doc.data, dict) else {}
            meta = data.get("metadata")
            name = meta.get("name") if isinstance(meta, dict) else None
            if isinstance(data.get("kind"), str) and isinstance(name, str):
                result.invalid.add((data["kind"], name))
    return result


def _add(result: LoadResult, name: str, text: str | None, problem: Finding | None, keep: Keep) -> None:
    if problem is not None:
        result.files.append(name)
        result.findings.append(problem)
    else:
        assert text is not None
        result.extend(load_text(text, name, keep=keep))


def _load_each(
    names: list[str], stdin: IO[Any] | None, max_file_bytes: int, keep: Keep, blobs: dict[str, bytes] | None = None
) -> list[LoadResult]:
    """One result per file, in order; a file whose bytes are in ``blobs`` is not read again.
    Worker-process entry point too (module level, so it pickles)."""
    out = []
    for name in names:
        result = LoadResult()
        data = blobs.get(name) if blobs else None
        _add(
            result,
            name,
            *(_read(name, stdin, max_file_bytes) if data is None else _decode(name, data, max_file_bytes)),
            keep,
        )
        out.append(result)
    return out


def _load_each_shipped(
    names: list[str], stdin: IO[Any] | None, max_file_bytes: int, keep: Keep, blobs: dict[str, bytes] | None = None
) -> list[LoadResult]:
    """A worker's :func:`_load_each`: its resources travel without their typed models
    (pickling a pydantic model costs several times validating it again), which the
    caller's process rebuilds from the same data on first use."""
    results = _load_each(names, stdin, max_file_bytes, keep, blobs)
    for result in results:
        for loaded in result.resources:
            loaded._model = None
    return results


def _check_keep(keep: str) -> None:
    if keep not in KEEP:
        raise ValueError(f"keep must be one of {', '.join(KEEP)}, not {keep!r}")


def load_blobs(
    blobs: Iterable[tuple[str, bytes]], *, max_file_bytes: int = MAX_FILE_BYTES, keep: Keep = "resources"
) -> LoadResult:
    """Load files given as (name, content), e.g. read from git at a revision."""
    _check_keep(keep)
    result = LoadResult()
    for name, data in blobs:
        if Path(name).suffix in YAML_SUFFIXES:
            _add(result, name, *_decode(name, data, max_file_bytes), keep)
    result.findings.extend(check_references(result.resources, result.invalid))
    return result


def rest_of_repo(given: Sequence[str]) -> list[str]:
    """The repo's resource directories (``DEFAULT_PATHS``, relative to the current
    directory, the root), when every path given lies inside them: a subset, as a
    pre-commit hook passes, to be loaded with the rest around it (``load(context=...)``)."""
    roots = [p for p in DEFAULT_PATHS if Path(p).is_dir()]
    if not given or STDIN in given or not roots:
        return []
    resolved = [Path(p).resolve() for p in roots]
    inside = all(any(Path(p).resolve().is_relative_to(r) for r in resolved) for p in given)
    return roots if inside else []


def data_links(resources: Iterable[LoadedResource]) -> list[Finding]:
    """Datasets of the work tree whose data file is a link leading outside the repo (the
    working directory) and the project file's ``dataRoots``: refused at validation, at
    the path's line and column, not only when the data is read."""
    from controller.loading.project import ProjectError, data_file_escapes, data_roots

    findings: list[Finding] = []
    allowed: tuple[Path, ...] | None = None
    for item in resources:
        path = item.columns.path if item.kind == "Dataset" and item.columns is not None else None
        if not path or not os.path.lexists(path):
            continue  # no file yet: reading it reports that
        if allowed is None:
            try:
                allowed = data_roots(Path("."))
            except ProjectError:
                allowed = (Path(".").resolve(),)  # the project file's own error is reported where it is read
        message = data_file_escapes(path, Path("."), allowed)
        if message is None:
            continue
        at = item.columns.path_at if item.columns is not None else None
        findings.append(
            Finding("invalid-value", message, at or item.name_at, resource=item.ref, field="spec.source.path")
        )
    return findings


def may_fork() -> bool:
    """Whether this process may start workers by forking: only from the main thread
    of a process running no other thread (a fork copies locks other threads hold)."""
    return threading.current_thread() is threading.main_thread() and threading.active_count() == 1


def load(
    paths: Iterable[str] = DEFAULT_PATHS,
    *,
    stdin: IO[Any] | None = None,
    max_file_bytes: int = MAX_FILE_BYTES,
    workers: int = 1,
    keep: Keep = "resources",
    cache: SpecCache | None = None,
    context: Iterable[str] = (),
) -> LoadResult:
    """Load every resource under ``paths`` and check references between them.

    ``context``: more paths (e.g. the repo's ``specs/`` when ``paths`` are the files a
    pre-commit hook passes), loaded the same way but not reported: references from
    ``paths`` resolve against them, and they are kept as :attr:`LoadResult.context`.
    Their own schema findings are not reported; reference findings (names, references,
    cycles, columns) are, wherever they are, since a change in ``paths`` can break them.

    By default one process does the work. With ``workers`` > 1, large trees
    (:data:`PARALLEL_MIN_FILES` files or more) are parsed by that many processes,
    forked for the call and gone when it returns; results keep the order of the
    files. Forking is skipped (the load runs in this process) when called from a
    thread other than the main one or while other threads run. With a ``cache``,
    files whose bytes it remembers are not parsed again (see
    :mod:`controller.loading.cache`). Raises :class:`UsageError` for a path that
    does not exist.
    """
    _check_keep(keep)
    names = list(discover(paths))
    found: dict[str, LoadResult] = {}
    read: dict[str, tuple[str, bytes]] = {}
    if cache is not None and STDIN_NAME not in names:
        found, read = cache.lookup(names, keep)
    missing = [name for name in names if name not in found]
    keys = {name: key for name, (key, _) in read.items()}
    blobs = {name: data for name, (_, data) in read.items()}
    del read  # one reference to the bytes: they go once loaded
    if workers > 1 and len(missing) >= PARALLEL_MIN_FILES and STDIN_NAME not in missing and may_fork():
        loaded = _load_parallel(missing, stdin, max_file_bytes, keep, workers, blobs)
    else:
        loaded = _load_each(missing, stdin, max_file_bytes, keep, blobs)
    del blobs
    fresh = dict(zip(missing, loaded, strict=True))
    if cache is not None and keys:
        cache.remember(fresh, keys)
    result = LoadResult()
    for name in names:
        result.extend(found[name] if name in found else fresh[name])
    result.findings.extend(data_links(result.resources))
    if not context:
        result.findings.extend(check_references(result.resources, result.invalid))
        return result
    chosen = {os.path.realpath(n) for n in names if n != STDIN_NAME}  # a file named two ways is one file
    others = [n for n in discover(context) if os.path.realpath(n) not in chosen]
    rest = _load_each(others, None, max_file_bytes, keep, {})
    result.context = [r for part in rest for r in part.resources]
    for part in rest:
        result.invalid |= part.invalid
    # The subset first: a name defined both here and in the rest is reported here. Every
    # reference finding counts, wherever it is: renaming a Dataset in the subset breaks
    # the Models of the rest that name it.
    result.findings.extend(check_references(result.resources + result.context, result.invalid))
    return result


def _load_parallel(
    names: list[str], stdin: IO[Any] | None, max_file_bytes: int, keep: Keep, workers: int, blobs: dict[str, bytes]
) -> list[LoadResult]:
    """The first chunk is loaded here while forked worker processes load the rest; one result per file."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    size = -(-len(names) // workers)
    chunks = [names[i : i + size] for i in range(0, len(names), size)]
    if len(chunks) < 2:
        return _load_each(names, stdin, max_file_bytes, keep, blobs)
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(len(chunks) - 1, mp_context=context) as pool:
        futures = [
            pool.submit(
                _load_each_shipped, chunk, None, max_file_bytes, keep, {n: blobs[n] for n in chunk if n in blobs}
            )
            for chunk in chunks[1:]
        ]
        here = _load_each(chunks[0], stdin, max_file_bytes, keep, blobs)
        return [*here, *(r for f in futures for r in f.result())]
