"""Safe YAML -> plain data, remembering where every value came from.

Called by :mod:`controller.loading.loader`. Uses libyaml's composer (fast, and
every node keeps its line and column) and builds the Python values itself, so
that it can refuse duplicate keys, unknown tags, deep nesting and alias bombs,
and record a position for every path in the document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
_SCALAR_TAGS = {
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
}
_TEXT_TAGS = {_STR, "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary"}
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_CONSTRUCTOR = SafeConstructor()


@dataclass(frozen=True)
class Pos:
    """Where a value sits: the key's position (for mapping entries) and the value's."""

    key_line: int
    key_column: int
    line: int
    column: int


@dataclass
class Document:
    file: str
    index: int  # 0-based position in the stream
    data: Any
    positions: dict[Path, Pos]
    line: int
    column: int

    def location(self, path: Path, *, at_key: bool = False) -> Location:
        """The closest known position for ``path`` (walking up to the document)."""
        probe = tuple(path)
        while probe not in self.positions and probe:
            probe = probe[:-1]
            at_key = True  # the path does not exist: point at its parent's key
        pos = self.positions.get(probe)
        if pos is None:
            return Location(self.file, self.line, self.column)
        if at_key:
            return Location(self.file, pos.key_line, pos.key_column)
        return Location(self.file, pos.line, pos.column)


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


def _mark(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    """Builds one document's values from its node graph."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.positions: dict[Path, Pos] = {}
        self.findings: list[Finding] = []
        self._built: dict[int, tuple[Any, int]] = {}  # id(node) -> (value, number of nodes in it)
        self._in_progress: set[int] = set()
        self._expanded = 0

    def build(self, node: Node) -> Any:
        line, col = _mark(node)
        self.positions[()] = Pos(line, col, line, col)
        value, _ = self._value(node, (), 0, node)
        return value

    def _value(self, node: Node, path: Path, depth: int, parent: Node) -> tuple[Any, int]:
        """Build ``node``; ``parent`` is the collection holding it (where an alias is used)."""
        if depth > MAX_DEPTH:
            raise _Refused("too-deep", f"nesting is deeper than {MAX_DEPTH} levels", node)
        key = id(node)
        if key in self._in_progress:
            raise _Refused("alias-bomb", "an alias refers to the value that contains it", parent)
        if key in self._built:  # an alias: reuse the value, but count what it expands to
            value, size = self._built[key]
            self._expanded += size
            if self._expanded > MAX_ALIAS_EXPANSION:
                raise _Refused("alias-bomb", f"aliases expand to more than {MAX_ALIAS_EXPANSION} values", parent)
            return value, size
        self._in_progress.add(key)
        try:
            if isinstance(node, ScalarNode):
                value, size = self._scalar(node), 1
            elif isinstance(node, SequenceNode):
                value, size = self._sequence(node, path, depth)
            else:
                value, size = self._mapping(node, path, depth)
        finally:
            self._in_progress.discard(key)
        self._built[key] = (value, size)
        return value, size

    def _check_tag(self, node: Node, allowed: set[str]) -> None:
        if node.tag not in allowed:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise _Refused("unsupported-tag", f"YAML tag '{tag}' is not allowed; write a plain value", node)

    def _scalar(self, node: ScalarNode) -> Any:
        tag = node.tag
        if tag in _TEXT_TAGS:
            return node.value
        if tag == _NULL:
            return None
        self._check_tag(node, _SCALAR_TAGS)
        return _CONSTRUCTOR.construct_object(node)

    def _sequence(self, node: SequenceNode, path: Path, depth: int) -> tuple[list[Any], int]:
        self._check_tag(node, {_SEQ})
        out: list[Any] = []
        size = 1
        for i, item in enumerate(node.value):
            item_path = (*path, i)
            line, col = _mark(item)
            self.positions.setdefault(item_path, Pos(line, col, line, col))
            value, n = self._value(item, item_path, depth + 1, node)
            out.append(value)
            size += n
        return out, size

    def _mapping(self, node: MappingNode, path: Path, depth: int) -> tuple[dict[str, Any], int]:
        self._check_tag(node, {_MAP})
        out: dict[str, Any] = {}
        first_seen: dict[str, int] = {}
        merges: list[Node] = []
        size = 1
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merges.append(value_node)
                continue
            if not isinstance(key_node, ScalarNode):
                raise _Refused("yaml-syntax", "mapping keys must be plain strings", key_node)
            key = str(key_node.value)
            key_line, key_col = _mark(key_node)
            if key in first_seen:
                self.findings.append(
                    Finding(
                        "duplicate-key",
                        f"duplicate key '{key}' (first defined on line {first_seen[key]}); YAML keeps only one of them",
                        Location(self.file, key_line, key_col),
                    )
                )
                continue
            first_seen[key] = key_line
            value_path = (*path, key)
            line, col = _mark(value_node)
            self.positions.setdefault(value_path, Pos(key_line, key_col, line, col))
            value, n = self._value(value_node, value_path, depth + 1, node)
            out[key] = value
            size += n
        for merge in merges:  # '<<: *defaults' fills in keys not written here
            sources = merge.value if isinstance(merge, SequenceNode) else [merge]
            for source in sources:
                if not isinstance(source, MappingNode):
                    raise _Refused("yaml-syntax", "'<<' must merge a mapping", source)
                merged, n = self._value(source, path, depth + 1, merge)
                size += n
                for k, v in merged.items():
                    out.setdefault(k, v)
        return out, size


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
        for node in yaml.compose_all(text, Loader=_Loader):
            nodes.append(node)
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
            line, col = _mark(node) if node is not None else (1, 1)
            result.findings.append(
                Finding(
                    "empty-document",
                    f"document {index + 1} is empty; remove the extra '---' or add a resource",
                    Location(file, line, col),
                )
            )
            continue
        builder = _Builder(file)
        try:
            data = builder.build(node)
        except _Refused as refused:
            line, col = _mark(refused.node)
            result.findings.append(Finding(refused.rule, refused.message, Location(file, line, col)))
            continue
        result.findings.extend(builder.findings)
        line, col = _mark(node)
        result.documents.append(Document(file, index, data, builder.positions, line, col))
    return result


def _is_empty(node: Node | None) -> bool:
    return node is None or (isinstance(node, ScalarNode) and node.tag == _NULL and node.value in ("", "~", "null"))
