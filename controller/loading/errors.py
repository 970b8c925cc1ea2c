"""Turn pydantic validation errors into findings a person can act on.

Called by :mod:`controller.loading.loader` for each document that fails its
kind's model. Maps each error's location back to the YAML line and column,
names the field in ``spec.gates[0].operator`` form, and says what to write.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from controller.api.common import DNS_LABEL_PATTERN, DURATION_PATTERN
from controller.api.findings import Finding
from controller.api.located import LOCATED
from controller.loading.yaml_reader import Document, Path

_TYPE_WORDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "string": "a string",
    "str": "a string",
    "dict": "a mapping",
    "model": "a mapping",
    "model_attributes": "a mapping",
    "list": "a list",
    "tuple": "a list",
    "date": "a date (YYYY-MM-DD)",
    "datetime": "a timestamp (RFC 3339)",
}
_PATTERN_HINTS = {
    DNS_LABEL_PATTERN: "is not a valid name: use lower-case letters, digits and '-', "
    "starting and ending with a letter or digit (a DNS label)",
    DURATION_PATTERN: "is not a duration: write e.g. 30s, 5m, 1h30m, 250ms or 365d",
}
_MAX_LISTED = 8


def field_path(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _unwrap(tp: Any) -> Any:
    """Strip Annotated[...] and Optional[...] wrappers."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(members) == 1:
                tp = members[0]
                continue
        return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _tag_member(tp: Any, tag: str) -> Any | None:
    """The member of a discriminated union whose ``type`` literal is ``tag``."""
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return None
    for member in typing.get_args(tp):
        member = _unwrap(member)
        if (
            _is_model(member)
            and "type" in member.model_fields
            and tag in typing.get_args(member.model_fields["type"].annotation)
        ):
            return member
    return None


def _field(model: type[BaseModel], key: str) -> Any | None:
    for name, info in model.model_fields.items():
        if key in (info.alias, name):
            return info.annotation
    return None


def resolve(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[Path, list[Any]]:
    """The YAML path for a pydantic ``loc`` and the type found at each step.

    pydantic puts discriminator tags and ``[key]`` markers into ``loc``; they are
    not part of the document, so they are dropped from the path.
    """
    path: list[str | int] = []
    types_seen: list[Any] = [model]
    tp: Any = model
    for part in loc:
        tp = _unwrap(tp)
        if part == "[key]":
            continue
        if isinstance(part, str) and (member := _tag_member(tp, part)) is not None:
            tp = member
            types_seen[-1] = member
            continue
        path.append(part)
        if _is_model(tp) and isinstance(part, str):
            tp = _field(tp, part)
        elif typing.get_origin(tp) in (list, tuple) and isinstance(part, int):
            tp = typing.get_args(tp)[0]
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        else:
            tp = None
        types_seen.append(tp)
    return tuple(path), types_seen


def _closest(word: str, choices: list[str]) -> str | None:
    for choice in choices:  # swapped characters ('=>' for '>=') first
        if sorted(choice) == sorted(word) and choice != word:
            return choice
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return match[0] if match else None


def _listing(choices: list[str]) -> str:
    quoted = [f"'{c}'" for c in choices]
    if len(quoted) > _MAX_LISTED:
        return ", ".join(quoted[:_MAX_LISTED]) + f" and {len(quoted) - _MAX_LISTED} more (see docs/spec-reference.md)"
    return ", ".join(quoted)


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    if isinstance(value, dict):
        text = "a mapping"
    elif isinstance(value, list):
        text = "a list"
    return text if len(text) <= 60 else text[:57] + "..."


def _expected_values(err: dict[str, Any]) -> list[str]:
    expected = (err.get("ctx") or {}).get("expected", "")
    return [part.strip().strip("'") for part in expected.replace(" or ", ", ").split(", ") if part.strip()]


def translate(error: dict[str, Any], model: type[BaseModel], doc: Document, resource: str | None) -> Finding:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    loc = tuple(error["loc"])
    if kind == LOCATED:  # a cross-field check that names the field at fault, below ``loc``
        loc += tuple(ctx.get("path", ()))
    path, seen = resolve(model, loc)
    where = field_path(path)
    value = error.get("input")
    at_key = False

    if kind == LOCATED:
        rule, message, at_key = "invalid-value", str(ctx.get("message", error["msg"])), bool(ctx.get("at_key"))
    elif kind == "extra_forbidden":
        parent = _unwrap(seen[-2]) if len(seen) > 1 else None
        known = (
            [info.alias or name for name, info in parent.model_fields.items()]
            if parent is not None and _is_model(parent)
            else []
        )
        name = str(path[-1])
        close = _closest(name, known)
        hint = f"; did you mean '{close}'?" if close else (f"; known fields: {', '.join(known)}" if known else "")
        rule, message, at_key = "unknown-field", f"unknown field '{name}'{hint}", True
    elif kind == "missing":
        parent = field_path(path[:-1]) or "the resource"
        rule, message, at_key = "missing-field", f"missing required field '{path[-1]}' in {parent}", True
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        tags = ctx.get("expected_tags", "")
        if kind == "union_tag_invalid":
            path = (*path, "type")
            where = field_path(path)
            message = f"unknown type '{ctx.get('tag')}'; use one of {tags}"
        else:
            message = f"missing 'type'; use one of {tags}"
            at_key = True
        rule = "invalid-value" if kind == "union_tag_invalid" else "missing-field"
    elif kind in ("literal_error", "enum"):
        options = _expected_values(error)
        close = _closest(str(value), options)
        hint = f"; did you mean '{close}'?" if close else ""
        rule = "invalid-value"
        message = f"{_show(value)} is not allowed here{hint} Allowed: {_listing(options)}"
        if path[-1:] == ("class",):
            message = (
                f"estimator {_show(value)} is not on the allow-list{hint} "
                "Only listed scikit-learn, XGBoost and LightGBM estimators can be used (see docs/spec-reference.md)"
            )
    elif kind == "string_pattern_mismatch":
        pattern = (error.get("ctx") or {}).get("pattern", "")
        hint = _PATTERN_HINTS.get(pattern, f"does not match the pattern {pattern}")
        if error["loc"][-1:] == ("[key]",):
            hint = "is not a valid key: " + hint if pattern in _PATTERN_HINTS else f"is not a valid key ({pattern})"
            at_key = True
        rule, message = "invalid-value", f"{_show(value)} {hint}"
    elif kind.endswith("_type") or kind.endswith("_parsing"):
        base = kind.rsplit("_", 1)[0].replace("_from_datetime", "")
        rule = "wrong-type"
        message = f"expected {_TYPE_WORDS.get(base, base)}, got {_show(value)}"
    elif kind == "value_error":
        rule, message = "invalid-value", error["msg"].removeprefix("Value error, ")
    else:
        rule, message = "invalid-value", f"{error['msg']} (got {_show(value)})"

    return Finding(
        rule,
        f"{where}: {message}" if where else message,
        doc.location(path, at_key=at_key),
        resource=resource,
        field=where or None,
    )


def translate_all(exc: ValidationError, model: type[BaseModel], doc: Document, resource: str | None) -> list[Finding]:
    return [translate(dict(err), model, doc, resource) for err in exc.errors(include_url=False)]
