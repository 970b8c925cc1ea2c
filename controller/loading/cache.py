"""Loaded spec files remembered by content, so that an unchanged file is not parsed again.

Used by :func:`controller.loading.load` when its caller hands it a :class:`SpecCache`
(the CLI's ``plan``, through the work-tree source, with the state directory's cache).
A file's entry is found by its name and checked against a digest of its bytes, read
again every time (so no change, however quick or however its timestamps look, is
missed), of the loader's own code and of the libraries that decide what a file
loads to (PyYAML, pydantic). Only files that loaded to valid resources with no
finding are remembered, and only for loads that keep data or references (their
data is held as canonical JSON, exactly what an entry holds); every other file is
loaded as before. A hit gives the same resources as loading the file again: the
same kind, name, positions, reference edges and canonical data.

Where entries are kept is the caller's choice (:class:`Entries`: a table keyed by
file name, one entry per name); this module only reads and writes its values.
"""

from __future__ import annotations

import base64
import hashlib
import json
from array import array
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from controller.api.findings import Location
from controller.loading.references import Columns, ColumnUse, Edge
from controller.loading.yaml_reader import Document

if TYPE_CHECKING:
    from controller.loading.loader import Keep, LoadedResource, LoadResult


class Entries(Protocol):
    """A table of (file name, key, value), one row per name, best effort: a store that
    cannot be read answers nothing, one that cannot be written keeps nothing."""

    def rows(self) -> Iterator[tuple[str, str, str]]: ...

    def put_many(self, rows: Iterable[tuple[str, str, str]]) -> None: ...


@cache
def code_fingerprint() -> str:
    """What, besides a file's bytes, decides what it loads to: the source of the models
    and the loader, and the versions of PyYAML, pydantic and pydantic-core."""
    from importlib import metadata

    import controller.api
    import controller.loading

    sha = hashlib.sha256()
    for package in (controller.api, controller.loading):
        for source in sorted(Path(next(iter(package.__path__))).glob("*.py")):
            sha.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    for dist in ("PyYAML", "pydantic", "pydantic_core"):
        try:
            sha.update(f"{dist}={metadata.version(dist)}\0".encode())
        except metadata.PackageNotFoundError:
            sha.update(f"{dist}=?\0".encode())
    return sha.hexdigest()


def _encode(result: LoadResult) -> str:
    """One line of JSON describing the file's resources, then each one's canonical JSON
    on a line of its own (JSON text never holds a raw newline): decoded without parsing
    the data."""
    meta = []
    texts = []
    for item in result.resources:
        doc = item.document
        at = item.name_at
        meta.append(
            [
                item.kind,
                item.name,
                [at.line, at.column],
                [[e.kind, e.name, list(e.path), e.location.line, e.location.column] for e in item.edges],
                [doc.index, doc.line, doc.column, doc.root, base64.b64encode(doc.positions.tobytes()).decode()],
                _encode_columns(item.columns),
            ]
        )
        texts.append(doc.canonical_json())
    return "\n".join([json.dumps(meta, separators=(",", ":")), *texts])


def _at(location: Location | None) -> list[int] | None:
    return None if location is None else [location.line, location.column]


def _encode_columns(columns: Columns | None) -> list[Any] | None:
    """A resource's column facts (and a Dataset's data path): checked across resources,
    so a remembered file must bring them back."""
    if columns is None:
        return None
    uses = [[u.column, u.role, list(u.path), u.location.line, u.location.column] for u in columns.uses]
    declared = list(columns.declared) if columns.declared is not None else None
    dataset_at, path_at = _at(columns.dataset_at), _at(columns.path_at)
    return [columns.dataset, declared, columns.target, uses, dataset_at, columns.path, path_at]


def _decode_columns(name: str, value: list[Any] | None) -> Columns | None:
    if value is None:
        return None
    dataset, declared, target, uses, dataset_at, path, path_at = value

    def at(pair: list[int] | None) -> Location | None:
        return None if pair is None else Location(name, pair[0], pair[1])

    return Columns(
        dataset,
        tuple(declared) if declared is not None else None,
        target,
        tuple(ColumnUse(c, role, tuple(p), Location(name, ln, col)) for c, role, p, ln, col in uses),
        at(dataset_at),
        path,
        at(path_at),
    )


class SpecCache:
    """Remembers what files loaded to, for :func:`controller.loading.load` (see the module)."""

    def __init__(self, entries: Entries, *, max_file_bytes: int) -> None:
        self.entries = entries
        self.max_file_bytes = max_file_bytes
        self.hits = 0
        self.misses = 0

    def _key(self, data: bytes) -> str:
        sha = hashlib.sha256(f"{code_fingerprint()}\0{self.max_file_bytes}\0".encode())
        sha.update(data)
        return sha.hexdigest()

    def lookup(self, names: list[str], keep: Keep) -> tuple[dict[str, LoadResult], dict[str, tuple[str, bytes]]]:
        """The files among ``names`` whose entry still holds (their load results), and the
        key and bytes of every other file that could be read: the loader loads those
        bytes (not the file again), so an entry always describes the bytes it is keyed by."""
        if keep == "resources":
            return {}, {}
        keys: dict[str, str] = {}
        for name in names:
            data = self._read(name)
            if data is not None:
                keys[name] = self._key(data)
        found: dict[str, LoadResult] = {}
        for name, key, value in self.entries.rows():  # one at a time: a value is dropped once decoded
            if keys.get(name) == key and name not in found:
                loaded = self._decode(name, value, keep)
                if loaded is not None:
                    found[name] = loaded
        read: dict[str, tuple[str, bytes]] = {}
        for name in keys.keys() - found.keys():
            data = self._read(name)  # again: these bytes are the ones loaded and remembered
            if data is not None:
                read[name] = (self._key(data), data)
        self.hits += len(found)
        self.misses += len(names) - len(found)
        return found, read

    def _read(self, name: str) -> bytes | None:
        try:
            with open(name, "rb") as handle:
                return handle.read(self.max_file_bytes + 1)
        except OSError:
            return None  # the loader reports it

    def remember(self, results: dict[str, LoadResult], keys: dict[str, str]) -> None:
        """Keep the results of the files that loaded cleanly, under the keys :meth:`lookup`
        gave for the bytes they were loaded from (encoded one at a time, as they are written)."""

        def clean(name: str, result: LoadResult) -> bool:
            return (
                name in keys
                and not result.findings
                and not result.rejected
                and bool(result.resources)
                and all(item._document is not None for item in result.resources)  # not keep="references"
            )

        self.entries.put_many((name, keys[name], _encode(r)) for name, r in results.items() if clean(name, r))

    @staticmethod
    def _decode(name: str, value: str, keep: Keep) -> LoadResult | None:
        from controller.loading.loader import LoadedResource, LoadResult

        try:
            meta, *texts = value.split("\n")
            resources: list[LoadedResource] = []
            for (kind, rname, at, edges, (index, line, column, root, packed), columns), text in zip(
                json.loads(meta), texts, strict=True
            ):
                document = None
                if keep != "references":
                    positions = array("Q")
                    positions.frombytes(base64.b64decode(packed))
                    document = Document(name, index, None, line, column, positions, root, text)
                resources.append(
                    LoadedResource(
                        kind,
                        rname,
                        Location(name, at[0], at[1]),
                        tuple(Edge(k, n, tuple(p), Location(name, ln, col)) for k, n, p, ln, col in edges),
                        document,
                        columns=_decode_columns(name, columns),
                    )
                )
        except (ValueError, TypeError, KeyError):  # an entry that does not decode: load the file again
            return None
        return LoadResult(resources=resources, files=[name])
