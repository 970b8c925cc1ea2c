"""The spec reference (``docs/spec-reference.md``), generated from the schemas.

Called by ``modelplane schemas generate``; a test fails when the committed page
is stale, so the docs cannot drift from the models.
"""

from __future__ import annotations

import json
from typing import Any

from controller.api import API_VERSION, KINDS
from controller.api.estimators import ALLOWED_ESTIMATORS, accepted_params, proba_summary
from controller.api.findings import RULES
from controller.api.schemas import kind_schema, schema_file

_ORDER = ["Dataset", "Model", "InferenceService", "ChaosExperiment", "PolicyException"]

# What `apply` does with each kind today. Keep in step with the planner (controller/engine/plan.py).
_RECONCILED = {
    "Dataset": "Reconciled: `apply` runs its data contract whenever its content or contract changes.",
    "Model": "Reconciled: `apply` trains it, runs its gates, promotes it and writes its model card.",
    "InferenceService": (
        "Reconciled with `target: local`: `apply` serves the version its `spec.model` names in the registry on "
        "127.0.0.1 (KServe's ModelServer behind modelplane's gateway), and a new version through the canary "
        "steps, judged by Prometheus (see docs/serving.md). With `target: kubernetes` it is validated and "
        "judged by the policies only. `replicas.max` and `autoscaling` are not acted on yet."
    ),
    "ChaosExperiment": (
        "**Not yet reconciled.** It is validated (schema, references) and judged by the policies, "
        "but `apply` runs no experiment: no faults, no probes, no rollbacks, until chaos runs land."
    ),
    "PolicyException": (
        "Counted wherever policies judge (`validate`, `audit`, the policy step of `plan` and `apply`): "
        "it waives the named rules for the named resources until it expires."
    ),
}


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _type(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in schema:
        target = _resolve(schema, defs)
        if "enum" in target:
            return " \\| ".join(f"`{v}`" for v in target["enum"])
        return "object"
    if "const" in schema:
        return f"`{schema['const']}`"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"]) if len(schema["enum"]) <= 8 else "string (allow-list)"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(_type(s, defs) for s in schema[key])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {_type(schema.get('items', {}), defs)}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"map of {_type(schema['additionalProperties'], defs)}"
    if "pattern" in schema and kind == "string":
        return "duration" if "ms|s|m|h|d" in schema["pattern"] else "string"
    if kind == "string" and schema.get("format") == "date":
        return "date"
    return str(kind)


def _constraints(schema: dict[str, Any]) -> str:
    parts = []
    for key, word in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<")):
        if key in schema:
            parts.append(f"{word} {schema[key]}")
    if "minItems" in schema:
        parts.append(f"at least {schema['minItems']} item(s)")
    return ", ".join(parts)


def _rows(schema: dict[str, Any], defs: dict[str, Any], prefix: str, seen: tuple[str, ...]) -> list[str]:
    rows: list[str] = []
    schema = _resolve(schema, defs)
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        desc = prop.get("description") or _resolve(prop, defs).get("description", "")
        desc = " ".join(str(desc).split())
        extra = _constraints(
            prop if "$ref" in prop else prop.get("items", prop) if prop.get("type") == "array" else prop
        )
        default = (
            f"`{json.dumps(prop['default'])}`" if "default" in prop and prop["default"] not in (None, [], {}) else ""
        )
        cells = [
            f"`{path}`",
            _type(prop, defs),
            "yes" if name in required else "",
            default,
            desc + (f" ({extra})" if extra else ""),
        ]
        rows.append("| " + " | ".join(c.replace("\n", " ") for c in cells) + " |")
        # Recurse into nested objects (and lists / unions of objects).
        for child in _children(prop, defs):
            ref = child.get("$ref", "")
            if ref and ref in seen:
                continue
            suffix = "[]" if prop.get("type") == "array" else ""
            rows.extend(_rows(child, defs, path + suffix, (*seen, ref)))
    return rows


def _children(prop: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    if prop.get("type") == "array":
        prop = prop.get("items", {})
    if isinstance(prop.get("additionalProperties"), dict):
        prop = prop["additionalProperties"]
    options = prop.get("oneOf") or prop.get("anyOf") or [prop]
    out = []
    for option in options:
        target = _resolve(option, defs) if "$ref" in option else option
        if target.get("properties"):
            out.append(option)
    return out


def render() -> str:
    lines = [
        "# Spec reference",
        "",
        "<!-- Generated by `modelplane schemas generate` from controller/api; do not edit by hand. -->",
        "",
        f"Every resource is a YAML document with `apiVersion: {API_VERSION}`, a `kind`, `metadata` "
        "(`name`: a DNS label, unique per kind; optional `labels` and `annotations`) and a `spec`. "
        "Unknown fields are errors. Each kind's JSON Schema is in `schemas/`; add "
        "`# yaml-language-server: $schema=<path to schema>` to a file for editor completion.",
        "",
    ]
    for kind in _ORDER:
        schema = kind_schema(kind)
        defs = schema.get("$defs", {})
        lines += [
            f"## {kind}",
            "",
            (KINDS[kind].__doc__ or kind).strip().splitlines()[0],
            "",
            _RECONCILED[kind],
            "",
            f"Schema: [`schemas/{schema_file(kind)}`](../schemas/{schema_file(kind)})",
            "",
            "| field | type | required | default | description |",
            "|---|---|---|---|---|",
            *_rows(schema["properties"]["spec"], defs, "spec", ()),
            "",
        ]
    lines += [
        "## Estimator allow-list",
        "",
        "`predict_proba` is what `roc_auc` and `log_loss` are computed from: a Model that names either "
        "with an estimator without it is refused at validation. Params checked: whether "
        "`spec.estimator.params` and `spec.search.space` names are checked against the class's parameters.",
        "",
        "| class | framework | task | `predict_proba` | params checked |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| `{path}` | {fw.value} | {task.value} | {proba_summary(path)} | "
        f"{'yes' if accepted_params(path) is not None else 'no'} |"
        for path, (fw, task) in sorted(ALLOWED_ESTIMATORS.items())
    ]
    lines += ["", "## Validation findings", "", "| rule | meaning | what to do |", "|---|---|---|"]
    lines += [f"| `{r.id}` | {r.summary} | {r.help} |" for r in RULES.values()]
    return "\n".join(lines) + "\n"
