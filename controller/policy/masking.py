"""Keep secrets out of decision logs and messages.

Values under secret-looking keys, and strings shaped like well-known
credentials, are replaced by ``***`` before anything is written or shown.
Called by :mod:`controller.policy.evaluate` for the messages of rules that fire.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

MASK = "***"
_SECRET_KEY = re.compile(
    r"(pass(word|wd)?|secret|token|api[-_]?key|access[-_]?key|private[-_]?key|credential|auth|signature)", re.I
)
_SECRET_VALUE = re.compile(
    r"(AKIA[0-9A-Z]{16}"  # AWS access key id
    r"|gh[pousr]_[A-Za-z0-9]{36,}"  # GitHub tokens
    r"|glpat-[A-Za-z0-9_-]{20,}"  # GitLab personal access tokens
    r"|xox[abpr]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})"  # JWTs
)


def mask(value: Any) -> Any:
    """A copy of ``value`` with secrets replaced."""
    if isinstance(value, dict):
        return {k: MASK if _SECRET_KEY.search(str(k)) and v not in (None, "") else mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    if isinstance(value, str):
        return _SECRET_VALUE.sub(MASK, value)
    return value


def secret_values(value: Any) -> set[str]:
    """Every string that :func:`mask` would hide, to scrub them from free text."""
    found: set[str] = set()
    search = _SECRET_VALUE.search
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:  # iterative: called for every resource a rule fires on
        node, secret = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                stack.append((v, secret or _secret_key(str(k))))
        elif isinstance(node, list):
            stack.extend((v, secret) for v in node)
        elif isinstance(node, str):
            if secret and len(node) >= 4:
                found.add(node)
            if search(node):
                found.update(m.group(0) for m in _SECRET_VALUE.finditer(node))
    return found


@lru_cache(maxsize=4096)
def _secret_key(key: str) -> bool:
    """Whether values under ``key`` are secret (keys repeat across resources)."""
    return bool(_SECRET_KEY.search(key))


def scrub(text: str, secrets: set[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _SECRET_VALUE.sub(MASK, text)
