"""Safe YAML -> plain data, remembering where every value came from.

Called by :mod:`controller.loading.loader`. Uses libyaml's composer (fast, and
every node keeps its line and column) and builds the Python values itself, so
that it can refuse duplicate keys, unknown tags, deep nesting and alias bombs,
and record a position for every path in the document.

The node graph is dropped as soon as a document is built (it is about four
times the size of the values); what stays is a table of positions, a few bytes
per value, from which :meth:`Document.location` places a finding on any path
without parsing the YAML again.
"""

from __future__ import annotations

import json
import sys
from array import array
from dataclasses import dataclass, field
from typing import Any, ClassVar

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from controller.api.findings import Finding, Location

try:  # libyaml is an order of magnitude faster; fall back for odd builds.
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Loader = yaml.SafeLoader

MAX_DEPTH = 32
MAX_ALIAS_EXPANSION = 10_000

Path = tuple[str | int, ...]

_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
# Scalars are built by PyYAML's own safe constructors, except timestamps and
# binary, which stay text (JSON has no such types; pydantic parses dates).
_TEXT_TAGS = {_STR, "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary"}
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_CONSTRUCTOR = SafeConstructor()
_SCALARS = {
    "tag:yaml.org,2002:bool": _CONSTRUCTOR.construct_yaml_bool,
    "tag:yaml.org,2002:int": _CONSTRUCTOR.construct_yaml_int,
    "tag:yaml.org,2002:float": _CONSTRUCTOR.construct_yaml_float,
}
_intern = sys.intern  # mapping keys repeat in every document: keep one copy of each
# Numbers and booleans by (tag, text): the same few ("true", "42", "0.25") again and again,
# and PyYAML's constructors for them are Python code. The values are immutable, so shared.
_CONSTRUCTED: dict[tuple[str, str], Any] = {}


class _FastLoader(_Loader):
    """libyaml's composer with a memoised tag resolver: resolving plain scalars
    (the same keys and values again and again) is otherwise the costliest part.

    Equivalent to PyYAML's resolver here, where no path resolvers are registered:
    a plain scalar's tag depends on its text alone, a quoted one is a string, and
    collections get the default tags."""

    _cache: ClassVar[dict[str, str]] = {}

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is ScalarNode:
            if not implicit[0]:
                return _STR
            tag = self._cache.get(value)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(self._cache) > 100_000:
                    self._cache.clear()
                self._cache[value] = tag
            return tag
        return _SEQ if kind is SequenceNode else _MAP

    # No path resolvers are registered: skip the per-node bookkeeping.
    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None


# A position is a node's 0-based line and column packed in one integer.
_NO_POSITION = -1
_COLUMN = (1 << 32) - 1


def canonical_json(value: Any) -> str:
    """``value`` as canonical JSON: sorted keys, no spaces (what digests are taken of)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(slots=True)
class Document:
    """One YAML document: its plain data, and where each of its values is written.

    ``positions`` holds one block per mapping or sequence of the document (see
    :class:`_Builder`); ``root`` is 1 + the start of the root's block (0 when the
    document is a scalar). Documents pickle: worker processes ship them back.
    A compact document (:meth:`compact`) holds its data as canonical JSON text
    instead, a fifth of the memory, and decodes it when :attr:`data` is read.
    """

    file: str
    index: int  # 0-based position in the stream
    _data: Any
    line: int = 1  # where the document starts (1-based)
    column: int = 1
    positions: array[int] = field(default_factory=lambda: array("Q"), repr=False)
    root: int = 0
    _json: str | None = field(default=None, repr=False)

    @property
    def data(self) -> Any:
        """The document's values (decoded again on every read of a compact document)."""
        return self._data if self._json is None else json.loads(self._json)

    def canonical_json(self) -> str:
        """The data as canonical JSON (kept by a compact document, encoded otherwise)."""
        return self._json if self._json is not None else canonical_json(self._data)

    def compact(self) -> Document:
        """This document with its data as canonical JSON text instead of values."""
        return Document(
            self.file, self.index, None, self.line, self.column, self.positions, self.root, self.canonical_json()
        )

    def location(self, path: Path, *, at_key: bool = False) -> Location:
        """Where ``path`` is written. For a path that does not exist, its closest
        parent's key; with ``at_key``, the key of a mapping entry rather than its value."""
        positions = self.positions
        node = key = _NO_POSITION
        value, block = (self.data, self.root) if path else (None, 0)
        for part in path:
            if block and isinstance(value, dict) and isinstance(part, str) and part in value:
                # A mapping's entries are in the order of their keys.
                entry = block - 1 + 3 * sum(1 for other in value if other < part)
                key, node, block = positions[entry], positions[entry + 1], positions[entry + 2]
                value = value[part]
            elif block and isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
                entry = block - 1 + 2 * part
                node, block = positions[entry], positions[entry + 1]
                key = node
                value = value[part]
            else:
                at_key = True  # point at the parent that lacks it
                break
        mark = key if at_key and key != _NO_POSITION else node
        if mark == _NO_POSITION:
            return Location(self.file, self.line, self.column)
        return Location(self.file, (mark >> 32) + 1, (mark & _COLUMN) + 1)


@dataclass
class ParseResult:
    documents: list[Document] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


class _Refused(Exception):
    def __init__(self, rule: str, message: str, node: Node) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.node = node


def _location(file: str, node: Node) -> Location:
    return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    """Builds one document's values from its node graph (the hot path of loading),
    and the table of positions that outlives the graph.

    Every mapping and sequence gets a block in ``positions``, written when it is
    finished (so children come first): a mapping has three slots per key, in the
    order of the keys (sorted, so that the block does not depend on the order the
    data is held in): the key's position, the value's, and 1 + the start of the
    value's block (0 for a scalar); a sequence has two per item: the item's
    position and its block. An alias shares the block of its anchor; a merged key
    copies its entry from the mapping it was merged from.
    """

    def __init__(self, file: str) -> None:
        self.file = file
        self.findings: list[Finding] = []
        self.positions: array[int] = array("Q")
        self._built: dict[int, Any] = {}  # id(collection node) -> value, to spot aliases
        self._blocks: dict[int, int] = {}  # id(collection node) -> 1 + start of its block
        self._in_progress: set[int] = set()
        self._sizes: dict[int, int] = {}
        self._expanded = 0

    def build(self, node: Node) -> Any:
        if node.__class__ is ScalarNode:
            return self._scalar(node)
        return self._collection(node, 0, node)

    def block(self, node: Node) -> int:
        """1 + the start of ``node``'s block; 0 for a scalar."""
        return 0 if node.__class__ is ScalarNode else self._blocks[id(node)]

    @staticmethod
    def _scalar(node: Node) -> Any:
        tag = node.tag
        if tag in _TEXT_TAGS:
            return node.value
        if tag == _NULL:
            return None
        key = (tag, node.value)
        value = _CONSTRUCTED.get(key, _CONSTRUCTED)
        if value is _CONSTRUCTED:
            construct = _SCALARS.get(tag)
            if construct is None:
                raise _Refused("unsupported-tag", _tag_message(tag), node)
            value = construct(node)  # type: ignore[arg-type]  # a scalar: its tag says so
            if len(_CONSTRUCTED) > 10_000:
                _CONSTRUCTED.clear()
            _CONSTRUCTED[key] = value
        return value

    def _collection(self, node: Node, depth: int, parent: Node) -> Any:
        """Build a mapping or sequence; ``parent`` is the collection holding it (where an alias is used)."""
        if depth >= MAX_DEPTH:
            raise _Refused("too-deep", f"nesting is deeper than {MAX_DEPTH} levels", node)
        key = id(node)
        if key in self._built:  # an alias: reuse the value, but count what it expands to
            self._expanded += self._size(node)
            if self._expanded > MAX_ALIAS_EXPANSION:
                raise _Refused("alias-bomb", f"aliases expand to more than {MAX_ALIAS_EXPANSION} values", parent)
            return self._built[key]
        if key in self._in_progress:
            raise _Refused("alias-bomb", "an alias refers to the value that contains it", parent)
        self._in_progress.add(key)
        if node.__class__ is SequenceNode:
            value: Any = self._sequence(node, depth)
        else:
            value = self._mapping(node, depth)  # type: ignore[arg-type]  # a mapping, by elimination
        self._in_progress.discard(key)
        self._built[key] = value
        return value

    def _sequence(self, node: SequenceNode, depth: int) -> list[Any]:
        if node.tag != _SEQ:
            raise _Refused("unsupported-tag", _tag_message(node.tag), node)
        out: list[Any] = []
        entries: list[int] = []
        for item in node.value:
            if item.__class__ is ScalarNode:
                tag = item.tag
                out.append(item.value if tag in _TEXT_TAGS else self._scalar(item))
                block = 0
            else:
                out.append(self._collection(item, depth + 1, node))
                block = self._blocks[id(item)]
            mark = item.start_mark
            entries.append((mark.line << 32) | mark.column)
            entries.append(block)
        self._blocks[id(node)] = len(self.positions) + 1
        self.positions.extend(entries)
        return out

    def _mapping(self, node: MappingNode, depth: int) -> dict[str, Any]:
        if node.tag != _MAP:
            raise _Refused("unsupported-tag", _tag_message(node.tag), node)
        out: dict[str, Any] = {}
        keys: list[str] = []  # in the order of ``out``
        entries: list[int] = []  # three per key, in the same order
        merges: list[Node] = []
        scalar_node, text_tags, intern, blocks = ScalarNode, _TEXT_TAGS, _intern, self._blocks  # locals: a hot loop
        add_key, add = keys.append, entries.append
        ordered, last = True, ""  # whether the keys come in sorted order, as specs' keys mostly do
        for key_node, value_node in node.value:
            if key_node.__class__ is not scalar_node:
                raise _Refused("yaml-syntax", "mapping keys must be plain strings", key_node)
            if key_node.tag == _MERGE:
                merges.append(value_node)
                continue
            key = key_node.value
            if key in out:
                first = next(k for k, _ in node.value if k.value == key)
                self.findings.append(
                    Finding(
                        "duplicate-key",
                        f"duplicate key '{key}' (first defined on line {first.start_mark.line + 1}); "
                        "YAML keeps only one of them",
                        _location(self.file, key_node),
                    )
                )
                continue
            if value_node.__class__ is scalar_node:
                value = value_node.value if value_node.tag in text_tags else self._scalar(value_node)
                block = 0
            else:
                value = self._collection(value_node, depth + 1, node)
                block = blocks[id(value_node)]
            key = intern(key)
            out[key] = value
            add_key(key)
            if key < last:
                ordered = False
            last = key
            mark = key_node.start_mark
            add((mark.line << 32) | mark.column)
            mark = value_node.start_mark
            add((mark.line << 32) | mark.column)
            add(block)
        for merge in merges:  # '<<: *defaults' fills in keys not written here
            sources = merge.value if isinstance(merge, SequenceNode) else [merge]
            for source in sources:
                if not isinstance(source, MappingNode):
                    raise _Refused("yaml-syntax", "'<<' must merge a mapping", source)
                merged = self._collection(source, depth + 1, merge)
                start = blocks[id(source)] - 1
                for index, k in enumerate(sorted(merged)):  # the source's block is in key order
                    if k not in out:
                        out[k] = merged[k]
                        keys.append(k)
                        ordered = ordered and last < k
                        last = k
                        entries += self.positions[start + 3 * index : start + 3 * index + 3]
        blocks[id(node)] = len(self.positions) + 1
        if ordered:
            self.positions.extend(entries)
        else:
            for index in sorted(range(len(keys)), key=keys.__getitem__):
                self.positions.extend(entries[3 * index : 3 * index + 3])
        return out

    def _size(self, node: Node) -> int:
        """Number of values ``node`` expands to (memoised; aliases count in full)."""
        key = id(node)
        size = self._sizes.get(key)
        if size is None:
            if isinstance(node, MappingNode):
                size = 1 + sum(self._size(v) for _, v in node.value)
            elif isinstance(node, SequenceNode):
                size = 1 + sum(self._size(v) for v in node.value)
            else:
                size = 1
            self._sizes[key] = size
        return size


def _tag_message(tag: str) -> str:
    return f"YAML tag '{tag.replace('tag:yaml.org,2002:', '!!')}' is not allowed; write a plain value"


def _syntax_finding(file: str, exc: yaml.MarkedYAMLError, text: str) -> Finding:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = exc.problem or str(exc)
    if mark is not None:
        lines = text.splitlines()
        offending = lines[mark.line] if mark.line < len(lines) else ""
        if "\t" in offending[: max(mark.column, 0) + 1]:
            col = offending.index("\t") + 1
            return Finding(
                "tab-indent",
                "tab character in indentation; YAML indents with spaces only",
                Location(file, line, col),
            )
    context = f" ({exc.context})" if exc.context else ""
    return Finding("yaml-syntax", f"{problem}{context}", Location(file, line, col))


def parse(text: str, file: str) -> ParseResult:
    """Parse a multi-document YAML text. Never raises on bad input: it reports."""
    result = ParseResult()
    nodes: list[Node | None] = []
    try:
        nodes.extend(yaml.compose_all(text, Loader=_FastLoader))
    except yaml.MarkedYAMLError as exc:
        result.findings.append(_syntax_finding(file, exc, text))
    except yaml.YAMLError as exc:  # pragma: no cover - libyaml reports marks
        result.findings.append(Finding("yaml-syntax", str(exc), Location(file, 1, 1)))

    # A trailing '---' yields an empty last document: that is fine.
    while nodes and _is_empty(nodes[-1]) and len(nodes) > 1:
        nodes.pop()
    if not nodes and not result.findings:
        result.findings.append(Finding("empty-document", "file holds no YAML documents", Location(file, 1, 1)))
    for index, node in enumerate(nodes):
        if node is None or _is_empty(node):
            result.findings.append(
                Finding(
                    "empty-document",
                    f"document {index + 1} is empty; remove the extra '---' or add a resource",
                    _location(file, node) if node is not None else Location(file, 1, 1),
                )
            )
            continue
        builder = _Builder(file)
        try:
            data = builder.build(node)
        except _Refused as refused:
            result.findings.append(Finding(refused.rule, refused.message, _location(file, refused.node)))
            continue
        except RecursionError:  # pragma: no cover - MAX_DEPTH keeps well below the limit
            result.findings.append(Finding("too-deep", "nesting is too deep", _location(file, node)))
            continue
        result.findings.extend(builder.findings)
        mark = node.start_mark
        result.documents.append(
            Document(file, index, data, mark.line + 1, mark.column + 1, builder.positions, builder.block(node))
        )
    return result


def _is_empty(node: Node | None) -> bool:
    return node is None or (isinstance(node, ScalarNode) and node.tag == _NULL and node.value in ("", "~", "null"))
