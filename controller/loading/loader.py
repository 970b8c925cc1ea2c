"""Files -> typed resources, with every mistake located.

Called by the CLI's ``validate`` and by the engine when it loads a revision.
``load`` never raises on bad input: it returns what loaded and the findings.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from controller.api import API_VERSIONS, KINDS, Resource
from controller.api.findings import Finding, Location, Report
from controller.loading import errors
from controller.loading.references import check_references
from controller.loading.yaml_reader import Document, parse

DEFAULT_PATHS = ("specs", "chaos")
MAX_FILE_BYTES = 1 << 20  # 1 MiB: specs are small; anything bigger is a mistake or an attack
YAML_SUFFIXES = (".yaml", ".yml")
PARALLEL_MIN_FILES = 200  # below this, starting worker processes costs more than it saves
STDIN = "-"
STDIN_NAME = "<stdin>"


@dataclass
class LoadedResource:
    """A valid resource, with the document it came from (raw data and positions)."""

    resource: Resource
    document: Document

    @property
    def key(self) -> tuple[str, str]:
        return self.resource.kind, self.resource.name

    @property
    def ref(self) -> str:
        return f"{self.resource.kind}/{self.resource.name}"

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

    def report(self) -> Report:
        return Report(findings=list(self.findings), files=list(self.files), resources=len(self.resources))

    def extend(self, other: LoadResult) -> None:
        self.resources.extend(other.resources)
        self.findings.extend(other.findings)
        self.files.extend(other.files)
        self.rejected += other.rejected

    def by_kind(self, kind: str) -> list[LoadedResource]:
        return [r for r in self.resources if r.resource.kind == kind]


class UsageError(Exception):
    """A path that does not exist, or nothing to read: exit code 2, not a finding."""


def discover(paths: Iterable[str]) -> Iterator[str]:
    """YAML files under ``paths`` (recursively, sorted), ``-`` passed through."""
    for raw in paths:
        if raw == STDIN:
            yield STDIN_NAME
            continue
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file() and not _hidden(p, path)
            )
            yield from (str(p) for p in found)
        elif path.is_file():
            yield str(path)
        else:
            raise UsageError(f"{raw}: no such file or directory")


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _read(name: str, stdin: IO[Any] | None, max_bytes: int) -> tuple[str | None, Finding | None]:
    try:
        if name == STDIN_NAME:
            stream = stdin if stdin is not None else sys.stdin.buffer
            data = stream.read(max_bytes + 1)
            data = data.encode() if isinstance(data, str) else data
        else:
            with open(name, "rb") as handle:
                data = handle.read(max_bytes + 1)
    except OSError as exc:
        return None, Finding("io-error", f"cannot read file: {exc.strerror}", Location(name, 1, 1))
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


def _to_resource(doc: Document) -> tuple[LoadedResource | None, list[Finding]]:
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
    return LoadedResource(resource, doc), []


def load_text(text: str, file: str) -> LoadResult:
    """Load resources from one YAML text (no cross-resource checks)."""
    result = LoadResult(files=[file])
    parsed = parse(text, file)
    result.findings.extend(parsed.findings)
    for doc in parsed.documents:
        loaded, findings = _to_resource(doc)
        result.findings.extend(findings)
        if loaded is not None:
            result.resources.append(loaded)
        else:
            result.rejected += 1
    return result


def _add(result: LoadResult, name: str, text: str | None, problem: Finding | None) -> None:
    if problem is not None:
        result.files.append(name)
        result.findings.append(problem)
    else:
        assert text is not None
        result.extend(load_text(text, name))


def _load_files(names: list[str], stdin: IO[Any] | None, max_file_bytes: int) -> LoadResult:
    result = LoadResult()
    for name in names:
        _add(result, name, *_read(name, stdin, max_file_bytes))
    return result


def load_blobs(blobs: Iterable[tuple[str, bytes]], *, max_file_bytes: int = MAX_FILE_BYTES) -> LoadResult:
    """Load files given as (name, content), e.g. read from git at a revision."""
    result = LoadResult()
    with _no_gc():
        for name, data in blobs:
            if Path(name).suffix in YAML_SUFFIXES:
                _add(result, name, *_decode(name, data, max_file_bytes))
        result.findings.extend(check_references(result.resources))
    return result


def _load_chunk(names: list[str], max_file_bytes: int) -> LoadResult:
    """Worker-process entry point (module level, so it pickles)."""
    with _no_gc():
        return _load_files(names, None, max_file_bytes)


@contextmanager
def _no_gc() -> Iterator[None]:
    """Parsing allocates many small objects and no cycles: the cyclic collector
    would only rescan them again and again (it doubles the load time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load(
    paths: Iterable[str] = DEFAULT_PATHS,
    *,
    stdin: IO[Any] | None = None,
    max_file_bytes: int = MAX_FILE_BYTES,
    workers: int | None = None,
) -> LoadResult:
    """Load every resource under ``paths`` and check references between them.

    Large trees are parsed by ``workers`` processes (default: one per core);
    results keep the order of the files. Raises :class:`UsageError` for a path
    that does not exist.
    """
    names = list(discover(paths))
    workers = workers or os.cpu_count() or 1
    with _no_gc():
        if workers > 1 and len(names) >= PARALLEL_MIN_FILES and STDIN_NAME not in names:
            # The first chunk is loaded here while worker processes load the rest.
            size = -(-len(names) // workers)
            chunks = [names[i : i + size] for i in range(0, len(names), size)]
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(len(chunks) - 1, mp_context=context) as pool:
                futures = [pool.submit(_load_chunk, chunk, max_file_bytes) for chunk in chunks[1:]]
                parts = [_load_files(chunks[0], stdin, max_file_bytes), *(f.result() for f in futures)]
        else:
            parts = [_load_files(names, stdin, max_file_bytes)]
        result = LoadResult()
        for part in parts:
            result.extend(part)
        result.findings.extend(check_references(result.resources))
    return result
