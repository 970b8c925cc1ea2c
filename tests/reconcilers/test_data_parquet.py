"""Parquet datasets: written here from scikit-learn's bundled data, loaded and hashed by the
data layer; a broken file is a DataError with a one-line message, never a traceback."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.datasets import load_breast_cancer

from controller.api import Dataset
from reconcilers import data, datagate


def _dataset(example: dict[str, dict[str, Any]], source: dict[str, Any]) -> Dataset:
    raw = {**example["breast-cancer"], "spec": {**example["breast-cancer"]["spec"], "source": source}}
    return Dataset.model_validate(raw)


@pytest.fixture
def parquet(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "breast-cancer.parquet"
    load_breast_cancer(as_frame=True).frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("fmt", [None, "parquet"], ids=["format-from-extension", "format-declared"])
def test_a_parquet_dataset_loads_and_hashes(fmt: str | None, parquet: Path, example, tmp_path: Path) -> None:
    source = {"path": "data/breast-cancer.parquet", **({"format": fmt} if fmt else {})}
    dataset = _dataset(example, source)
    loaded = data.load(dataset, {"breast-cancer": dataset}, tmp_path)
    pd.testing.assert_frame_equal(loaded.frame, load_breast_cancer(as_frame=True).frame)
    expected = "sha256:" + hashlib.sha256(parquet.read_bytes()).hexdigest()
    assert loaded.content_hash == expected
    assert data.content_hash(dataset, {"breast-cancer": dataset}, tmp_path) == expected


def test_parquet_keeps_the_declared_column_types(parquet: Path, example, tmp_path: Path) -> None:
    """The example's exact schema (30 floats and an integer target) holds for the Parquet copy."""
    dataset = _dataset(example, {"path": "data/breast-cancer.parquet"})
    frame = data.load(dataset, {"breast-cancer": dataset}, tmp_path).frame
    schema = datagate.check_schema(dataset, frame)
    assert schema == {"mode": "exact", "missing": [], "extra": [], "mismatched": [], "success": True}


def test_a_parquet_file_uri_is_refused(parquet: Path, example) -> None:
    """file:// would read outside the repo: the schema refuses it (use a path)."""
    with pytest.raises(ValidationError, match="reads a local file outside the repo"):
        _dataset(example, {"uri": f"file://{parquet}"})


def test_the_hash_follows_the_parquet_bytes(parquet: Path, example, tmp_path: Path) -> None:
    dataset = _dataset(example, {"path": "data/breast-cancer.parquet"})
    before = data.content_hash(dataset, {}, tmp_path)
    frame = load_breast_cancer(as_frame=True).frame
    frame.loc[0, "mean radius"] = 18.0
    frame.to_parquet(parquet, index=False)
    assert data.content_hash(dataset, {}, tmp_path) != before


def _corrupt(good: bytes) -> dict[str, bytes]:
    middle = len(good) // 2
    return {
        "empty": b"",
        "truncated": good[:middle],
        "csv-named-parquet": b"mean radius,target\n17.99,0\n",
        "bad-footer-length": good[:-8] + b"\xff\xff\xff\x7fPAR1",
        "garbled-page-header": good[:4] + b"\xff" * 16 + good[20:],
    }


CORRUPTIONS = ["empty", "truncated", "csv-named-parquet", "bad-footer-length", "garbled-page-header"]


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_a_broken_parquet_file_is_a_clear_data_error(kind: str, parquet: Path, example, tmp_path: Path) -> None:
    parquet.write_bytes(_corrupt(parquet.read_bytes())[kind])
    dataset = _dataset(example, {"path": "data/breast-cancer.parquet"})
    with pytest.raises(data.DataError) as info:
        data.load(dataset, {"breast-cancer": dataset}, tmp_path)
    message = str(info.value)
    prefix = "cannot read 'data/breast-cancer.parquet' as parquet: "  # named as the spec names it
    assert message.startswith(prefix)
    assert len(message) > len(prefix) + 10  # says what is wrong
    assert "\n" not in message and "Traceback" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__  # `from None`: no chained traceback
