"""Files generated from the models: ``schemas/*.json`` and the spec reference.

Called by ``modelplane schemas generate|check`` and by the staleness test.
"""

from __future__ import annotations

from pathlib import Path

from controller.api import reference, schemas

SCHEMAS_DIR = Path("schemas")
REFERENCE_FILE = Path("docs/spec-reference.md")


def outputs(schemas_dir: Path = SCHEMAS_DIR, reference_file: Path = REFERENCE_FILE) -> dict[Path, str]:
    files = {schemas_dir / name: text for name, text in schemas.render_all().items()}
    files[reference_file] = reference.render()
    return files


def stale(schemas_dir: Path = SCHEMAS_DIR, reference_file: Path = REFERENCE_FILE) -> list[Path]:
    """Generated files whose committed content differs from what the models give."""
    out = []
    for path, text in outputs(schemas_dir, reference_file).items():
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            out.append(path)
    return out


def write(schemas_dir: Path = SCHEMAS_DIR, reference_file: Path = REFERENCE_FILE) -> list[Path]:
    """Write every generated file; return those that changed."""
    changed = stale(schemas_dir, reference_file)
    for path, text in outputs(schemas_dir, reference_file).items():
        if path in changed:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    return changed
