"""A plan (as ``Plan.to_dict()``) in text, markdown or JSON."""

from __future__ import annotations

import json
from typing import Any


def _line(action: dict[str, Any]) -> str:
    name = action["resource"].split("/", 1)[1]
    stage = f" -> {action['stage']}" if "stage" in action else ""
    return f"{action['action']} {name}{stage}: {action['reason']}"


def _state(ref: str, note: dict[str, Any]) -> str:
    status = note["condition"] if note["status"] else f"Not{note['condition']}"
    return f"{ref}: {status} ({note['reason']}) {note['message']}"


def render(plan: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(plan, indent=2) + "\n"
    actions, notes = plan["actions"], plan["resources"]
    revision = (plan["revision"] or "work tree")[:12]
    if fmt == "markdown":
        lines = [f"### modelplane plan for `{revision}`", ""]
        if actions:
            lines += ["| # | action | resource | why |", "|---|---|---|---|"]
            for i, a in enumerate(actions, 1):
                what = a["action"] + (f" → {a['stage']}" if "stage" in a else "")
                lines.append(f"| {i} | {what} | `{a['resource']}` | {a['reason']} |")
        else:
            lines.append("No changes: everything is up to date.")
        if notes:
            lines += ["", "| resource | state | why |", "|---|---|---|"]
            lines += [f"| `{ref}` | {n['reason']} | {n['message']} |" for ref, n in notes.items()]
        return "\n".join(lines) + "\n"
    lines = [f"Plan for {revision}:"]
    if actions:
        lines += [f"  {i}. {_line(a)}" for i, a in enumerate(actions, 1)]
        touched = len({a["resource"] for a in actions})
        lines.append(f"{len(actions)} action(s) on {touched} resource(s).")
    else:
        lines.append(f"  No changes: {len(notes)} resource(s) up to date or waiting.")
    for ref, note in notes.items():
        if note["reason"] != "Succeeded":
            lines.append(f"  {_state(ref, note)}")
    return "\n".join(lines) + "\n"
