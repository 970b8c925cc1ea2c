"""Content-addressed artifact store: files named by their sha256.

Writes are atomic (temporary file, fsync, rename), so a crash never leaves a
half-written artifact under its digest. Every read verifies the digest before
the bytes are used; models are saved with skops and loaded with only trusted
types, never with plain pickle.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any


class ArtifactError(Exception):
    pass


class ArtifactMissing(ArtifactError):
    """No file under the digest."""


class ArtifactCorrupt(ArtifactError):
    """The file's content does not hash to its digest (or the digest is not one)."""


# Types a model artifact may contain: estimators and what they are made of. Not builtins:
# skops would name callables such as builtins.eval there.
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "xgboost.", "lightgbm.")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        algo, _, hexdigest = digest.partition(":")
        if algo != "sha256" or len(hexdigest) != 64 or not all(c in "0123456789abcdef" for c in hexdigest):
            raise ArtifactCorrupt(f"not a sha256 digest: {digest!r}")
        return self.root / "sha256" / hexdigest[:2] / hexdigest

    def put(self, data: bytes) -> str:
        digest = sha256(data)
        target = self.path(digest)
        if target.exists() and sha256(target.read_bytes()) == digest:
            return digest  # already stored: content addressing makes writes idempotent
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def get(self, digest: str) -> bytes:
        target = self.path(digest)
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            raise ArtifactMissing(f"artifact {digest} is missing from {self.root}") from None
        actual = sha256(data)
        if actual != digest:
            raise ArtifactCorrupt(f"artifact {digest} is corrupt: its content hashes to {actual}")
        return data

    def verify(self, digest: str) -> None:
        """Raise :class:`ArtifactMissing` or :class:`ArtifactCorrupt` unless the file under
        ``digest`` hashes to it (read in chunks: models can be large)."""
        target = self.path(digest)
        hasher = hashlib.sha256()
        try:
            with open(target, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    hasher.update(chunk)
        except FileNotFoundError:
            raise ArtifactMissing(f"artifact {digest} is missing from {self.root}") from None
        actual = "sha256:" + hasher.hexdigest()
        if actual != digest:
            raise ArtifactCorrupt(f"artifact {digest} is corrupt: its content hashes to {actual}")

    def put_model(self, model: Any) -> str:
        import skops.io

        return self.put(skops.io.dumps(model))

    def load_model(self, digest: str) -> Any:
        """Load a model after verifying its digest, trusting only estimator types."""
        import skops.io

        data = self.get(digest)
        try:
            untrusted = skops.io.get_untrusted_types(data=data)
        except Exception as exc:  # not a skops file at all: say so, not the unzip error
            raise ArtifactError(f"artifact {digest} is not a model (skops) file: {type(exc).__name__}") from None
        refused = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
        if refused:
            raise ArtifactError(f"artifact {digest} holds types that are not trusted: {', '.join(refused)}")
        return skops.io.loads(data, trusted=untrusted)
