"""The library's generated index: fresh, equal to what its AST says, and never able to
make loading differ (a file whose text changed is read from its AST)."""

from __future__ import annotations

import json

import regorus

from controller.policy import conflicts, index
from controller.policy.embedded import EmbeddedEngine
from controller.policy.sources import BUILTIN, PolicyFile, discover


def test_the_committed_index_is_fresh() -> None:
    assert index.INDEX.read_text() == index.generate(), "run 'python -m controller.policy.index' and commit it"


def test_indexed_facts_are_the_asts() -> None:
    files = discover([BUILTIN, "policies"])
    engine = regorus.Engine()
    for policy in files:
        engine.add_policy(policy.path, policy.text)
    from_ast = conflicts.facts_of(json.loads(engine.get_ast_as_json()))
    assert [index.known(f) for f in files if f.path.startswith("builtin/")] == [
        m for m in from_ast if m.file.startswith("builtin/")
    ]
    assert EmbeddedEngine(files).rules() == conflicts.rules_of(from_ast)


def test_an_edited_library_file_is_read_from_its_ast() -> None:
    files = discover(BUILTIN)
    edited = [
        PolicyFile(f.path, f.text + '\ndeny_everything contains "no" if true\n')
        if f.path == "builtin/models.rego"
        else f
        for f in files
    ]
    assert index.known(edited[[f.path for f in edited].index("builtin/models.rego")]) is None
    rules = {r.rule_id for r in EmbeddedEngine(edited).rules()}
    assert "models.everything" in rules
