"""schemas/ and docs/spec-reference.md are generated from the models and must be fresh."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from controller.api import KINDS, generate
from controller.api.schemas import COMBINED_FILE, schema_file
from controller.loading import load

INVALID_SCHEMA_LEVEL = ["unknown-field", "wrong-type", "invalid-operator", "estimator-not-allowed", "invalid-name"]


def test_committed_schemas_and_reference_are_not_stale() -> None:
    assert generate.stale() == [], "run 'modelplane schemas generate' and commit the result"


def test_stale_detects_an_edited_schema(tmp_path: Path) -> None:
    generate.write(tmp_path / "schemas", tmp_path / "ref.md")
    assert generate.stale(tmp_path / "schemas", tmp_path / "ref.md") == []
    target = tmp_path / "schemas" / "model.schema.json"
    target.write_text(target.read_text().replace('"Model', '"Modle', 1))
    assert generate.stale(tmp_path / "schemas", tmp_path / "ref.md") == [target]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_schema_is_valid_draft_2020_12(kind: str) -> None:
    schema = json.loads(Path("schemas", schema_file(kind)).read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["kind"]["const"] == kind
    assert schema["additionalProperties"] is False


def test_examples_validate_against_kind_and_combined_schemas() -> None:
    combined = jsonschema.Draft202012Validator(json.loads(Path("schemas", COMBINED_FILE).read_text()))
    for item in load(["specs", "chaos"]).resources:
        per_kind = json.loads(Path("schemas", schema_file(item.resource.kind)).read_text())
        jsonschema.validate(item.raw, per_kind, cls=jsonschema.Draft202012Validator)
        assert list(combined.iter_errors(item.raw)) == []


@pytest.mark.parametrize("name", INVALID_SCHEMA_LEVEL)
def test_schema_rejects_what_the_models_reject(name: str) -> None:
    import yaml

    combined = jsonschema.Draft202012Validator(json.loads(Path("schemas", COMBINED_FILE).read_text()))
    first = next(yaml.safe_load_all(Path("tests/invalid", f"{name}.yaml").read_text()))
    assert list(combined.iter_errors(first)), f"schema accepted tests/invalid/{name}.yaml"


def test_every_example_file_has_a_modeline_to_its_kind_schema() -> None:
    for item in load(["specs", "chaos"]).resources:
        path = Path(item.document.file)
        match = re.match(r"# yaml-language-server: \$schema=(\S+)\n", path.read_text())
        assert match, f"{path} has no yaml-language-server modeline"
        target = (path.parent / match.group(1)).resolve()
        assert target == Path("schemas", schema_file(item.resource.kind)).resolve()


NOT_YET = "**Not yet reconciled.** It is validated (schema, references) and judged by the policies, but `apply` "


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("Dataset", "Reconciled: `apply` runs its data contract"),
        ("Model", "Reconciled: `apply` trains it, runs its gates, promotes it"),
        ("InferenceService", "Reconciled with `target: local`: `apply` serves the version its `spec.model` names"),
        ("ChaosExperiment", NOT_YET + "runs no experiment: no faults, no probes, no rollbacks"),
    ],
    ids=["Dataset", "Model", "InferenceService", "ChaosExperiment"],
)
def test_reference_says_which_kinds_apply_reconciles(kind: str, status: str) -> None:
    """Chaos runs have not landed, and serving only locally: the reference must not suggest more.
    The status is the paragraph after the kind's summary."""
    page = Path("docs/spec-reference.md").read_text()
    section = page.split(f"\n## {kind}\n", 1)[1].split("\n## ", 1)[0]
    assert section.strip().split("\n\n")[1].startswith(status)
