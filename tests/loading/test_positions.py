"""Recorded positions: every path of a document is placed as the YAML node graph places it.

The loader drops each document's node graph once it is built and keeps a table of
positions instead. The oracle here walks the node graph, as the loader did before
(direct keys first, then merged mappings in order, aliases resolved to their anchor):
for every path of every document, existing or not, both must agree.
"""

from __future__ import annotations

import gc
import pickle
from pathlib import Path
from typing import Any

import pytest
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from controller.api.findings import Location
from controller.loading.yaml_reader import Document, _FastLoader, parse

MERGE = "tag:yaml.org,2002:merge"

TEXTS = {
    "merges": """\
base: &base {a: 1, b: {c: 2, d: [1, 2, {e: 3}]}}
other: &other
  x: 1
  b: {z: 9}
m:
  <<: [*base, *other]
  a: 5
n:
  a: 0
  <<: *base
deep:
  <<: {<<: *other, y: 2}
  k: v
list: [*base, *other, {<<: *base, q: 1}]
""",
    "aliases-and-duplicates": """\
anchor: &x {p: [1, {q: 2}]}
first: *x
again: [*x, *x]
dup: 1
dup: {shadowed: true}
empty_map: {}
empty_list: []
nulls: ~
""",
    "flow-and-streams": "{a: {b: [1, {c: 2}], d: 'x'}, e: [[1, 2], [3, {f: 4}]]}\n---\nfoo: bar\n---\n- 1\n- {a: 1}\n",
    "crlf": "a:\r\n  b: 1\r\n  c:\r\n    - x\r\n    - {y: z}\r\n",
    "unicode": 'a: "é\u2028x"\nb:\n  c: 1\n  "ключ": [д, {е: ж}]\n',
    "scalar-document": "just text\n",
    "sequence-document": "- a\n- - b\n  - {c: d}\n",
    "nested-sequences": "nested:\n  - - - deep: {k: v}\n      - 2\n",
    "long-line": "x: {" + ", ".join(f"k{i}: {{v: {i}}}" for i in range(150)) + "}\n",
}
EXAMPLES = sorted(Path("specs").rglob("*.yaml")) + sorted(Path("chaos").glob("*.yaml"))


def _child(node: Node, part: str | int) -> tuple[Node, Node] | None:
    """(key node, value node) of ``part`` in a mapping, or (item, item) in a sequence."""
    if isinstance(node, MappingNode):
        merged: list[Node] = []
        for key, value in node.value:
            if key.tag == MERGE:
                merged.extend(value.value if isinstance(value, SequenceNode) else [value])
            elif isinstance(key, ScalarNode) and key.value == part:
                return key, value
        for source in merged:
            found = _child(source, part)
            if found is not None:
                return found
    elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        item = node.value[part]
        return item, item
    return None


def oracle(file: str, root: Node, path: tuple[str | int, ...], at_key: bool) -> Location:
    node, key = root, None
    for part in path:
        found = _child(node, part)
        if found is None:
            at_key = True
            break
        key, node = found
    mark = (key if at_key and key is not None else node).start_mark
    return Location(file, mark.line + 1, mark.column + 1)


def paths(value: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every path of ``value``, and paths just beside it that do not exist."""
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += paths(child, (*prefix, key))
        out += [(*prefix, "missing"), (*prefix, 0), (*prefix, "missing", "deeper")]
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += paths(child, (*prefix, index))
        out += [(*prefix, len(value)), (*prefix, -1), (*prefix, "key")]
    else:
        out += [(*prefix, "below-a-scalar"), (*prefix, 0)]
    return out


def documents(name: str, text: str) -> list[tuple[Document, Node]]:
    parsed = parse(text, name)
    nodes = list(yaml.compose_all(text, Loader=_FastLoader))
    return [(doc, nodes[doc.index]) for doc in parsed.documents]


CASES = [*TEXTS.items(), *((str(p), p.read_text()) for p in EXAMPLES)]


@pytest.mark.parametrize(("name", "text"), CASES, ids=[name for name, _ in CASES])
def test_every_path_is_placed_as_the_node_graph_places_it(name: str, text: str) -> None:
    pairs = documents(name, text)
    assert pairs, "the case must hold at least one document"
    checked = 0
    for doc, root in pairs:
        compact = doc.compact()  # data as canonical JSON, keys sorted: the same places
        assert compact.data == doc.data
        for path in paths(doc.data):
            for at_key in (False, True):
                expected = oracle(name, root, path, at_key)
                assert doc.location(path, at_key=at_key) == expected, (path, at_key)
                assert compact.location(path, at_key=at_key) == expected, (path, at_key, "compact")
                checked += 1
    assert checked >= 4


def test_a_merged_key_points_where_it_is_written() -> None:
    ((doc, _),) = documents("m.yaml", TEXTS["merges"])
    assert doc.location(("m", "x")) == Location("m.yaml", 3, 6)  # from *other
    assert doc.location(("m", "a")) == Location("m.yaml", 7, 6)  # written here, not merged
    assert doc.location(("deep", "x"), at_key=True) == Location("m.yaml", 3, 3)  # merged twice over
    assert doc.location(("m", "b", "d", 2, "e")) == Location("m.yaml", 1, 44)


def test_documents_keep_neither_the_node_graph_nor_the_text() -> None:
    text = Path("specs/models/breast-cancer-classifier.yaml").read_text()
    (doc,) = parse(text, "model.yaml").documents
    assert not any(isinstance(ref, (Node, str)) and ref == text for ref in gc.get_referents(doc))
    assert not any(isinstance(ref, Node) for ref in gc.get_referents(doc))
    # Small enough to ship from a worker process: a fraction of the text it came from.
    shipped = pickle.dumps(doc.positions)
    assert len(shipped) < len(text)
    again = pickle.loads(pickle.dumps(doc))
    for path in paths(doc.data):
        assert again.location(path) == doc.location(path)
