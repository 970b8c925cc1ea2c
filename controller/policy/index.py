"""The built-in library's facts, generated once: what loading it would read from its AST.

Compiling policies is cheap; listing their rules is not: regorus gives the rules only
as the JSON of the whole AST (megabytes for the library), and parsing that took a
tenth of a one-file ``validate``. The library is part of the package, so its facts
(each module's package, rules and rule definitions, see
:class:`~controller.policy.conflicts.ModuleFacts`) are generated into ``index.json``
beside it, each under the SHA-256 of the file's text. A file whose text does not
match its entry (an edited library not yet indexed again) is read from its AST, as
every repo file is: the index can make loading faster, never different.

Regenerate after editing the library: ``python -m controller.policy.index``
(``tests/policy/test_index.py`` fails while it is stale).
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

from controller.policy.conflicts import ModuleFacts, facts_of
from controller.policy.sources import BUILTIN, LIBRARY, PolicyFile, library

INDEX = LIBRARY / "index.json"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def generate() -> str:
    """The index of the installed library, as JSON text."""
    import regorus

    engine = regorus.Engine()
    files = library()
    for policy in files:
        engine.add_policy(policy.path, policy.text)
    facts = {f.file: f for f in facts_of(json.loads(engine.get_ast_as_json()))}
    entries = {Path(p.path).name: {"sha256": _digest(p.text), **facts[p.path].to_json()} for p in files}
    return json.dumps(entries, indent=1, sort_keys=True) + "\n"


@cache
def _entries() -> dict[str, Any]:
    try:
        value = json.loads(INDEX.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def known(policy: PolicyFile) -> ModuleFacts | None:
    """The indexed facts of a library file whose text is the one indexed; else None."""
    if not policy.path.startswith(f"{BUILTIN}/"):
        return None
    entry = _entries().get(Path(policy.path).name)
    if not isinstance(entry, dict) or entry.get("sha256") != _digest(policy.text):
        return None
    try:
        return ModuleFacts.from_json(policy.path, entry)
    except (KeyError, TypeError, ValueError):
        return None


if __name__ == "__main__":
    INDEX.write_text(generate(), encoding="utf-8")
    print(f"wrote {INDEX}")
