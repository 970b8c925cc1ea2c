"""The audit chain's anchor: its head (sequence number and hash), signed, kept outside the database.

After every commit the head is written to ``audit.head`` in the state directory;
with a key (``MODELPLANE_AUDIT_KEY``, or a key file named by
``MODELPLANE_AUDIT_KEY_FILE`` outside the state directory) it carries an
HMAC-SHA256, so rewriting the chain *and* the head together is detected by
whoever holds the key. ``modelplane audit anchor`` also exports the head to the
platform repo (``refs/modelplane/audit``), where the controller cannot quietly
rewrite it; a store that lost records the anchor proves existed is refused
(:class:`StateLost`), never silently recreated.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

from controller.state.db import StateError

KEY_ENV = "MODELPLANE_AUDIT_KEY"
KEY_FILE_ENV = "MODELPLANE_AUDIT_KEY_FILE"
MIN_KEY_BYTES = 16


class StateLost(StateError):
    """The state is empty, truncated or replaced while an anchor proves it held more."""


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str
    mac: str | None = None

    def text(self) -> str:
        return f"{self.seq} {self.hash}" + (f" {self.mac}" if self.mac else "") + "\n"

    @classmethod
    def parse(cls, text: str) -> Head:
        parts = text.split()
        if len(parts) not in (2, 3) or not parts[0].isdigit():
            raise StateError(f"not an audit head: {text[:80]!r}")
        return cls(int(parts[0]), parts[1], parts[2] if len(parts) == 3 else None)


def load_key(state_dir: Path) -> bytes | None:
    """The signing key, if one is configured; a key file inside the state directory is refused
    (whoever can rewrite the state could rewrite the key)."""
    if os.environ.get(KEY_ENV):
        key = os.environ[KEY_ENV].encode()
        if len(key) < MIN_KEY_BYTES:
            raise StateError(f"the audit key in {KEY_ENV} is too short: use at least {MIN_KEY_BYTES} bytes")
        return key
    path = os.environ.get(KEY_FILE_ENV)
    if not path:
        return None
    key_file = Path(path).resolve()
    if key_file.is_relative_to(state_dir.resolve()):
        raise StateError(f"{KEY_FILE_ENV}={path} is inside the state directory: keep the key elsewhere")
    try:
        key = key_file.read_bytes().strip()
    except OSError as exc:
        raise StateError(f"cannot read the audit key file {path}: {exc.strerror}") from None
    if len(key) < MIN_KEY_BYTES:
        raise StateError(f"the audit key in {path} is too short: use at least {MIN_KEY_BYTES} bytes")
    return key


def sign(key: bytes, seq: int, digest: str) -> str:
    return hmac.new(key, f"{seq} {digest}".encode(), hashlib.sha256).hexdigest()


def signed(key: bytes | None, seq: int, digest: str) -> Head:
    return Head(seq, digest, sign(key, seq, digest) if key else None)


def signature_problem(head: Head, key: bytes | None) -> str | None:
    if key is None:
        return None
    if head.mac is None:
        return "the recorded head is not signed although an audit key is set"
    if not hmac.compare_digest(head.mac, sign(key, head.seq, head.hash)):
        return "the recorded head's signature does not verify: it was rewritten (or the key changed)"
    return None
