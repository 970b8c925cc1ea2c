"""Read the platform repo's project file (``modelplane.yaml``).

Called by the CLI before a command, once it has found the root. The file is
read with the same positioned YAML reader as the specs, so a mistake in it is
reported at file:line:column.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from controller.api.findings import Finding, Location
from controller.api.project import FILE_NAME, Project
from controller.loading import errors
from controller.loading.yaml_reader import parse

MAX_PROJECT_BYTES = 64 * 1024


@dataclass(frozen=True)
class ProjectFile:
    root: Path
    project: Project | None  # None: the root has no project file (defaults apply)


class ProjectError(Exception):
    """The project file is wrong; the message names file:line:column and the mistake."""

    def __init__(self, findings: list[Finding]) -> None:
        super().__init__("\n".join(f"{f.location}: {f.message}" for f in findings))
        self.findings = findings


def _whole(rule: str, message: str) -> Finding:
    return Finding(rule, message, Location(FILE_NAME, 1, 1))


def read_project(root: Path) -> ProjectFile:
    path = root / FILE_NAME
    if not path.is_file():
        return ProjectFile(root, None)
    real = path.resolve()
    if not real.is_relative_to(root.resolve()):
        message = f"a symbolic link to {str(real)!r}, outside the repo: the project file lives in the repo"
        raise ProjectError([_whole("io-error", message)])
    data = path.read_bytes()
    name = FILE_NAME
    if len(data) > MAX_PROJECT_BYTES:
        raise ProjectError([_whole("file-too-large", f"larger than {MAX_PROJECT_BYTES} bytes")])
    parsed = parse(data.decode("utf-8", errors="replace"), name)
    if parsed.findings:
        raise ProjectError(parsed.findings)
    if len(parsed.documents) != 1:
        raise ProjectError([_whole("project-file", "a project file holds exactly one YAML document")])
    doc = parsed.documents[0]
    try:
        return ProjectFile(root, Project.model_validate(doc.data))
    except ValidationError as exc:
        raise ProjectError(errors.translate_all(exc, Project, doc, "Project")) from None


def data_roots(root: Path) -> tuple[Path, ...]:
    """Where data may be read from: the repo, and the project file's ``dataRoots``
    (read once per version of the file: a plan asks for every data file)."""
    try:
        stat = (root / FILE_NAME).stat()
        version: tuple[int, ...] | None = (stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size, stat.st_ino)
    except OSError:
        version = None
    return _data_roots(root.resolve(), version)


@functools.lru_cache(maxsize=8)
def _data_roots(root: Path, version: tuple[int, ...] | None) -> tuple[Path, ...]:
    project = read_project(root).project if version is not None else None
    extra = project.spec.dataRoots if project is not None else []
    return (root, *(Path(p).resolve() for p in extra))


def data_file_escapes(path: str, root: Path, allowed: tuple[Path, ...]) -> str | None:
    """Why the data file ``path`` (relative to ``root``) may not be read: a link takes it
    outside ``allowed`` (the repo and the ``dataRoots``, as :func:`data_roots` gives them);
    None when it stays inside. One message for validation and for the read itself."""
    resolved = (root / path).resolve()
    if any(resolved.is_relative_to(r) for r in allowed):
        return None
    listed = f" or the data roots of modelplane.yaml ({', '.join(map(str, allowed[1:]))})" if allowed[1:] else ""
    return (
        f"data file '{path}' leads outside the repo{listed} (to {resolved}) through a symlink: keep data inside "
        "the platform repo, or list its mount in dataRoots of modelplane.yaml"
    )
