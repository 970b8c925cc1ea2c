"""JSON Schemas (draft 2020-12) generated from the resource models.

Called by ``modelplane schemas generate`` (which writes ``schemas/``) and by the
test that fails when the committed schemas are stale.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from controller.api import API_VERSION, KINDS
from controller.api.project import Project

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_BASE_URL = "https://modelplane.io/schemas/v1alpha1/"
COMBINED_FILE = "modelplane.schema.json"


class _Generator(GenerateJsonSchema):
    """Schemas for people and editors: no auto-generated field titles, and an
    omitted optional field is written by leaving it out, not as ``null``."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def nullable_schema(self, schema: Any) -> dict[str, Any]:
        return self.generate_inner(schema["schema"])


def schema_file(kind: str) -> str:
    """File name of one kind's schema, e.g. ``inferenceservice.schema.json``."""
    return f"{kind.lower()}.schema.json"


def kind_schema(kind: str) -> dict[str, Any]:
    cls: type[BaseModel] = KINDS.get(kind, Project)
    schema = cls.model_json_schema(by_alias=True, mode="validation", schema_generator=_Generator)
    return {
        "$schema": DRAFT,
        "$id": SCHEMA_BASE_URL + schema_file(kind),
        **schema,
        "title": f"{kind} ({API_VERSION})",
    }


def combined_schema() -> dict[str, Any]:
    """One schema for any resource, dispatching on ``kind``."""
    _, defs = models_json_schema(
        [(cls, "validation") for cls in KINDS.values()],
        by_alias=True,
        ref_template="#/$defs/{model}",
        schema_generator=_Generator,
    )
    return {
        "$schema": DRAFT,
        "$id": SCHEMA_BASE_URL + COMBINED_FILE,
        "title": f"Any modelplane resource ({API_VERSION})",
        "type": "object",
        "required": ["apiVersion", "kind"],
        "properties": {"apiVersion": {"const": API_VERSION}, "kind": {"enum": sorted(KINDS)}},
        "allOf": [
            {"if": {"properties": {"kind": {"const": kind}}}, "then": {"$ref": f"#/$defs/{kind}"}}
            for kind in sorted(KINDS)
        ],
        "$defs": defs["$defs"],
    }


def _drop_null_defaults(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _drop_null_defaults(v) for k, v in node.items() if not (k == "default" and v is None)}
    if isinstance(node, list):
        return [_drop_null_defaults(v) for v in node]
    return node


def render_all() -> dict[str, str]:
    """File name -> JSON text for every schema file in ``schemas/``."""
    files = {schema_file(kind): kind_schema(kind) for kind in sorted(KINDS)}
    files[COMBINED_FILE] = combined_schema()
    files[schema_file("Project")] = kind_schema("Project")  # modelplane.yaml, not a resource in specs/
    return {
        name: json.dumps(_drop_null_defaults(schema), indent=2, sort_keys=True) + "\n" for name, schema in files.items()
    }
