"""Content-addressed artifacts: verified by digest before use; models via skops only."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from controller.state.artifacts import ArtifactError, ArtifactStore


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "artifacts")


def test_put_is_idempotent_and_content_addressed(store: ArtifactStore) -> None:
    digest = store.put(b"hello")
    assert digest == "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert store.put(b"hello") == digest
    assert store.get(digest) == b"hello"


def test_tampered_artifact_is_refused(store: ArtifactStore) -> None:
    digest = store.put(b"model bytes")
    store.path(digest).write_bytes(b"evil bytes")
    with pytest.raises(ArtifactError, match="is corrupt: its content hashes to sha256:"):
        store.get(digest)


def test_bad_digest_and_missing_artifact(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactError, match="not a sha256 digest"):
        store.get("md5:abc")
    with pytest.raises(ArtifactError, match="is missing"):
        store.get("sha256:" + "a" * 64)


def test_model_round_trip_predicts_the_same(store: ArtifactStore) -> None:
    x, y = load_breast_cancer(return_X_y=True)
    model = LogisticRegression(max_iter=5000).fit(x, y)
    digest = store.put_model(model)
    loaded = store.load_model(digest)
    assert (loaded.predict(x) == model.predict(x)).all()


def test_model_with_untrusted_types_is_refused(store: ArtifactStore) -> None:
    import skops.io

    digest = store.put(skops.io.dumps({"payload": Path("/etc/passwd")}))
    with pytest.raises(ArtifactError, match="not trusted"):
        store.load_model(digest)
    # A callable from builtins would run code on load: never trusted.
    digest = store.put(skops.io.dumps({"hook": eval}))
    with pytest.raises(ArtifactError, match=r"not trusted: builtins\.eval"):
        store.load_model(digest)
