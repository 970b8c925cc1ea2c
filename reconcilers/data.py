"""Reading a Dataset's data, and its content hash (the dataset's version).

Called by the data gate and the train step (and by the engine, which needs the
hash to plan). Paths are relative to the platform repo root.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from controller.api import Dataset
from controller.api.dataset import SKLEARN_DATASETS, DataFormat
from controller.loading.project import data_file_escapes, data_roots

if TYPE_CHECKING:
    import pandas as pd


class DataError(Exception):
    """The data cannot be read: a missing or broken file, an unknown format."""


class FileDigests(Protocol):
    """Content hashes remembered by file identity (the state directory's cache)."""

    def digest(self, path: str, stat: os.stat_result) -> str | None:
        """The hash remembered for ``path``, if the file's identity in ``stat`` is unchanged."""
        ...

    def remember_digest(self, path: str, stat: os.stat_result, digest: str, read_at_ns: int) -> bool:
        """Remember a hash taken from a read that began at ``read_at_ns``; refused (False)
        for a file changed too recently for a later edit to be seen."""
        ...


@dataclass(frozen=True)
class Loaded:
    frame: pd.DataFrame
    content_hash: str


def _format(dataset: Dataset, location: str) -> DataFormat:
    if dataset.spec.source.format:
        return dataset.spec.source.format
    suffix = Path(location).suffix.lower().lstrip(".")
    try:
        return DataFormat(suffix)
    except ValueError:
        raise DataError(f"cannot tell the format of '{location}'; set spec.source.format") from None


def _read_bytes(path: Path, shown: str) -> bytes:
    """The file's bytes; errors name it as the spec does (``shown``), not by its absolute path."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"data file '{shown}' does not exist") from None
    except OSError as exc:
        raise DataError(f"cannot read '{shown}': {exc.strerror}") from None


def _parse(data: bytes, path: str, fmt: DataFormat) -> pd.DataFrame:
    import io

    import pandas as pd

    try:
        if fmt == DataFormat.CSV:
            return pd.read_csv(io.BytesIO(data))
        if fmt == DataFormat.PARQUET:
            return pd.read_parquet(io.BytesIO(data))
        return pd.read_json(io.BytesIO(data))
    except Exception as exc:  # pandas raises many parser error types
        detail = " ".join(str(exc).split())  # one line: pyarrow's messages can span several
        raise DataError(f"cannot read '{path}' as {fmt.value}: {detail}") from None


def content_hash(
    dataset: Dataset, datasets: Mapping[str, Dataset], root: Path, digests: FileDigests | None = None
) -> str:
    """The dataset's version without loading it when a file's bytes suffice; with
    ``digests``, without reading a file whose identity is unchanged since it was hashed."""
    source = dataset.spec.source
    if not source.path:
        return load(dataset, datasets, root).content_hash
    path = _local_path(dataset, root)
    if digests is None:
        return _sha256(_read_bytes(path, _spec_path(dataset)))
    key = str(path)
    read_at = time.time_ns()
    try:
        before = os.stat(path)
    except OSError:
        before = None  # reading it says why
    known = digests.digest(key, before) if before is not None else None
    if known is not None:
        return known
    value = _sha256(_read_bytes(path, _spec_path(dataset)))
    try:
        after = os.stat(path)
    except OSError:
        return value
    if before is not None and _identity(before) == _identity(after):  # not changed while it was read
        digests.remember_digest(key, after, value, read_at)
    return value


def _identity(stat: os.stat_result) -> tuple[int, ...]:
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _spec_path(dataset: Dataset) -> str:
    return dataset.spec.source.path or ""


def _local_path(dataset: Dataset, root: Path) -> Path:
    """The data file, which must stay inside the repo (or a data root the project file
    lists) once symlinks are followed (the schema already refuses absolute paths and
    '..'; a link is only seen here, on disk)."""
    escapes = data_file_escapes(_spec_path(dataset), root, data_roots(root))
    if escapes is not None:
        raise DataError(escapes)
    return root / _spec_path(dataset)


def load(dataset: Dataset, datasets: Mapping[str, Dataset], root: Path, _seen: tuple[str, ...] = ()) -> Loaded:
    """The dataset as a DataFrame, with its content hash."""
    source = dataset.spec.source
    if source.sklearn:
        import sklearn.datasets

        frame = getattr(sklearn.datasets, SKLEARN_DATASETS[source.sklearn])(as_frame=True).frame
        return Loaded(frame, _sha256(frame.to_csv(index=False, lineterminator="\n").encode()))
    if source.derivedFrom:
        parent_name = source.derivedFrom.dataset
        if parent_name in _seen or parent_name not in datasets:
            raise DataError(f"Dataset '{parent_name}' (parent of {dataset.name}) is missing or cyclic")
        parent = load(datasets[parent_name], datasets, root, (*_seen, dataset.name))
        columns = source.derivedFrom.columns
        missing = [c for c in columns or [] if c not in parent.frame.columns]
        if missing:
            raise DataError(f"parent Dataset '{parent_name}' has no column(s) {', '.join(missing)}")
        frame = parent.frame[columns] if columns else parent.frame
        return Loaded(frame, _sha256(f"{parent.content_hash}|{columns}".encode()))
    if source.uri:
        scheme = source.uri.split("://", 1)[0]
        raise DataError(f"'{scheme}://' sources are not reachable by the embedded runner; use a file path")
    path = _local_path(dataset, root)
    data = _read_bytes(path, _spec_path(dataset))
    return Loaded(_parse(data, _spec_path(dataset), _format(dataset, str(path))), _sha256(data))
