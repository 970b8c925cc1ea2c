"""People, as modelplane records them: approvers, waiver approvers, actors.

An identity is trimmed, NFKC-normalised and case-folded, and must then match a
plain pattern (letters, digits and ``. _ @ + -``), so that ``""``, ``" "``,
``ALICE`` and ``alice `` are not extra people. Used by the approvals (engine)
and the project file's approver list.
"""

from __future__ import annotations

import re
import unicodedata

PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9._@+-]{0,126}[a-z0-9])?")
# The controller's own name in the audit log, and names of no person: no one acts under them.
RESERVED = frozenset({"modelplane", "system", "root"})


class IdentityError(ValueError):
    pass


def normalise(raw: str) -> str:
    text = unicodedata.normalize("NFKC", raw).strip().casefold()
    if not text:
        raise IdentityError("an identity cannot be empty")
    if not PATTERN.fullmatch(text):
        raise IdentityError(
            f"{raw!r} is not an identity: use letters, digits and . _ @ + - "
            "(at most 128, starting and ending with a letter or digit), e.g. alice or alice@example.org"
        )
    if text in RESERVED:
        raise IdentityError(f"{raw!r} is the controller's own name in the audit log, or no person's: name the person")
    return text
