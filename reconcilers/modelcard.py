"""Model cards, generated on every promotion, in three forms.

- JSON that validates against the Model Card Toolkit schema (v0.0.2);
- Markdown with YAML front matter in the Hugging Face model-card metadata
  format (``model-index`` with the evaluation results);
- a self-contained HTML page with an SVG chart of the metrics and the
  fairness slices (no scripts, no external assets).

Each carries the provenance: git revision, dataset hash, GX run id, policy
decisions and approvals; the performance and fairness; and the
considerations written in the spec.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.api import Model

SCHEMA_VERSION = "0.0.2"


@dataclass
class CardInput:
    model: Model
    version: int
    stage: str
    run: dict[str, Any]
    dataset: str
    data_check: dict[str, Any] | None
    approvals: list[str]
    policy: list[dict[str, str]] = field(default_factory=list)  # {rule, result}
    revision: str | None = None
    date: str = ""


def _provenance(card: CardInput) -> list[tuple[str, str]]:
    check = card.data_check or {}
    policy = ", ".join(f"{p['rule']}={p['result']}" for p in card.policy) or "no findings"
    return [
        ("git revision", card.revision or "unknown"),
        ("dataset", f"{card.dataset} @ {card.run['dataset_hash']}"),
        (
            "data contract",
            f"{'passed' if check.get('success') else 'not run'} (GX run {check.get('gx_run_id') or '-'})",
        ),
        ("training run", card.run["id"]),
        ("artifact", card.run.get("artifact_digest") or "-"),
        ("policy decisions", policy),
        ("approvals", ", ".join(card.approvals) or "none"),
        ("stage", card.stage),
    ]


def to_mct(card: CardInput) -> dict[str, Any]:
    spec = card.model.spec
    metrics = [{"type": k, "value": str(v)} for k, v in sorted(card.run["metrics"].items())]
    for s in card.run.get("fairness", {}).get("slices", []):
        for group, g in s["groups"].items():
            metrics.append(
                {"type": card.run["fairness"]["metric"], "value": str(g["value"]), "slice": f"{s['column']} in {group}"}
            )
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "model_details": {
            "name": card.model.name,
            "overview": spec.card.description or card.model.metadata.annotations.get("modelplane.io/description", ""),
            "documentation": "\n".join(f"{k}: {v}" for k, v in _provenance(card)),
            "owners": [{"name": o.name, **({"contact": o.contact} if o.contact else {})} for o in spec.card.owners],
            "version": {
                "name": f"v{card.version}",
                **({"date": card.date[:10]} if card.date else {}),  # the schema's 'date' format refuses ""
                "diff": f"trained at git revision {card.revision or 'unknown'}",
            },
            "licenses": [{"identifier": spec.card.license}] if spec.card.license else [],
            "path": card.run.get("artifact_digest") or "",
        },
        "model_parameters": {
            "model_architecture": spec.estimator.className,
            "data": [{"name": card.dataset, "description": f"content hash {card.run['dataset_hash']}"}],
            "input_format_map": [{"key": k, "value": json.dumps(v)} for k, v in sorted(card.run["params"].items())],
        },
        "quantitative_analysis": {"performance_metrics": metrics},
        "considerations": {
            "use_cases": [{"description": spec.card.intendedUse}] if spec.card.intendedUse else [],
            "limitations": [{"description": text} for text in spec.card.limitations],
            "ethical_considerations": [
                {"name": text, "mitigation_strategy": ""} for text in spec.card.ethicalConsiderations
            ],
        },
    }
    return doc


def _yaml_scalar(value: Any) -> str:
    return json.dumps(value)  # JSON scalars are valid YAML scalars


def to_markdown(card: CardInput) -> str:
    spec = card.model.spec
    results = [
        f"      - type: {_yaml_scalar(k)}\n        value: {v}\n        name: {_yaml_scalar(k)}"
        for k, v in sorted(card.run["metrics"].items())
    ]
    front = [
        "---",
        f"license: {_yaml_scalar((spec.card.license or 'other').lower())}",
        "library_name: sklearn",
        "tags:",
        "  - tabular-classification" if spec.estimator.task.value == "classification" else "  - tabular-regression",
        "  - modelplane",
        f"datasets:\n  - {_yaml_scalar(card.dataset)}",
        "model-index:",
        f"  - name: {_yaml_scalar(card.model.name)}",
        "    results:",
        "      - task:",
        f"          type: {_yaml_scalar('tabular-' + spec.estimator.task.value)}",
        "        dataset:",
        f"          name: {_yaml_scalar(card.dataset)}",
        f"          type: {_yaml_scalar(card.dataset)}",
        f"          revision: {_yaml_scalar(card.run['dataset_hash'])}",
        "        metrics:",
        *[line.replace("      - ", "          - ", 1).replace("\n        ", "\n            ") for line in results],
        "---",
    ]
    body = [
        f"# {card.model.name} v{card.version}",
        "",
        spec.card.description or "",
        "",
        "## Intended use",
        "",
        spec.card.intendedUse or "Not stated.",
        "",
        "## Performance",
        "",
        "| metric | value | gate |",
        "|---|---|---|",
    ]
    gates = {g["metric"]: g for g in card.run.get("gates", [])}
    for k, v in sorted(card.run["metrics"].items()):
        g = gates.get(k)
        gate = f"{g['operator']} {g['threshold']} {'✅' if g['passed'] else '❌'}" if g else ""
        body.append(f"| {k} | {v} | {gate} |")
    fairness = card.run.get("fairness") or {}
    if fairness:
        body += ["", "## Fairness", ""]
        for s in fairness.get("slices", []):
            bounds = f"{fairness['metric']}, gap {s['gap']}, max {fairness['maxGap']}"
            body.append(f"Slice `{s['name']}` by `{s['column']}` ({bounds}):")
            body += ["", "| group | value | rows |", "|---|---|---|"]
            body += [f"| {grp} | {g['value']} | {g['rows']} |" for grp, g in s["groups"].items()]
            body.append("")
    body += ["## Limitations", ""] + [f"- {t}" for t in spec.card.limitations or ["Not stated."]]
    body += ["", "## Ethical considerations", ""] + [
        f"- {t}" for t in spec.card.ethicalConsiderations or ["Not stated."]
    ]
    body += ["", "## Provenance", "", "| | |", "|---|---|"] + [f"| {k} | `{v}` |" for k, v in _provenance(card)]
    owners = ", ".join(o.name + (f" <{o.contact}>" if o.contact else "") for o in spec.card.owners)
    body += ["", f"Owners: {owners or 'not stated'}", ""]
    return "\n".join(front) + "\n\n" + "\n".join(body)


def _bars(title: str, values: list[tuple[str, float]], width: int = 640) -> str:
    row, label_w = 26, 220
    height = 40 + row * len(values)
    scale = (width - label_w - 80) / max([1.0, *[abs(v) for _, v in values]])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{html.escape(title)}">',
        f'<text x="0" y="18" font-weight="bold">{html.escape(title)}</text>',
    ]
    for i, (label, value) in enumerate(values):
        y = 34 + i * row
        parts.append(f'<text x="0" y="{y + 14}">{html.escape(label)}</text>')
        parts.append(
            f'<rect x="{label_w}" y="{y}" width="{max(abs(value) * scale, 1):.1f}" height="18" fill="#3b6ea8"/>'
        )
        parts.append(f'<text x="{label_w + abs(value) * scale + 6:.1f}" y="{y + 14}">{value:.4f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def to_html(card: CardInput) -> str:
    spec = card.model.spec
    e = html.escape
    metrics = sorted(card.run["metrics"].items())
    charts = [_bars("Held-out metrics", metrics)]
    for s in (card.run.get("fairness") or {}).get("slices", []):
        charts.append(
            _bars(
                f"{card.run['fairness']['metric']} by {s['column']} (gap {s['gap']})",
                [(grp, g["value"]) for grp, g in s["groups"].items()],
            )
        )
    rows = "".join(f"<tr><th>{e(k)}</th><td><code>{e(str(v))}</code></td></tr>" for k, v in _provenance(card))
    gates = "".join(
        f"<tr><th>{e(g['metric'])}</th><td>{g['observed']} {e(g['operator'])} {g['threshold']}</td>"
        f"<td>{'passed' if g['passed'] else 'FAILED'}</td></tr>"
        for g in card.run.get("gates", [])
    )
    items = lambda xs: "".join(f"<li>{e(x)}</li>" for x in xs) or "<li>Not stated.</li>"  # noqa: E731
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(card.model.name)} v{card.version} model card</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<style>body{{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}}
table{{border-collapse:collapse}}th,td{{text-align:left;padding:.25rem .6rem;border-bottom:1px solid #ddd}}
code{{word-break:break-all}}svg text{{font-size:13px}}</style></head><body>
<h1>{e(card.model.name)} <small>v{card.version} · {e(card.stage)}</small></h1>
<p>{e(spec.card.description or "")}</p>
<h2>Intended use</h2><p>{e(spec.card.intendedUse or "Not stated.")}</p>
<h2>Performance</h2>{"".join(charts)}
<h3>Gates</h3><table>{gates or "<tr><td>No gates declared.</td></tr>"}</table>
<h2>Limitations</h2><ul>{items(spec.card.limitations)}</ul>
<h2>Ethical considerations</h2><ul>{items(spec.card.ethicalConsiderations)}</ul>
<h2>Provenance</h2><table>{rows}</table>
<p>Owners: {e(", ".join(o.name for o in spec.card.owners) or "not stated")}</p>
</body></html>
"""


def write(card: CardInput, directory: Path) -> dict[str, str]:
    """Write the three files; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = directory / f"{card.model.name}-v{card.version}"
    paths = {"json": f"{stem}.json", "markdown": f"{stem}.md", "html": f"{stem}.html"}
    Path(paths["json"]).write_text(json.dumps(to_mct(card), indent=2) + "\n", encoding="utf-8")
    Path(paths["markdown"]).write_text(to_markdown(card), encoding="utf-8")
    Path(paths["html"]).write_text(to_html(card), encoding="utf-8")
    return paths
