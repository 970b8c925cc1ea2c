"""Fixtures for the reconciler tests: the example specs as loaded by the CLI, and
variants of them built from their YAML (so a variant is validated like a spec)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from controller.api import Dataset, Model
from controller.loading import load
from reconcilers import data

ROOT = Path(__file__).resolve().parents[2]

ModelFactory = Callable[..., Model]


@pytest.fixture(scope="session")
def example() -> dict[str, dict[str, Any]]:
    """The raw documents of specs/, by name (``breast-cancer``, ``breast-cancer-classifier``, ...)."""
    result = load([str(ROOT / "specs")])
    assert result.findings == []
    return {item.resource.name: item.raw for item in result.resources}


@pytest.fixture(scope="session")
def datasets(example: dict[str, dict[str, Any]]) -> dict[str, Dataset]:
    """The example Dataset plus the scikit-learn datasets the tests train on."""
    out = {"breast-cancer": Dataset.model_validate(example["breast-cancer"])}
    for name in ("iris", "wine", "diabetes"):
        out[name] = Dataset.model_validate(
            {
                "apiVersion": "modelplane.io/v1alpha1",
                "kind": "Dataset",
                "metadata": {"name": name},
                "spec": {"source": {"sklearn": name}, "target": "target"},
            }
        )
    return out


@pytest.fixture(scope="session")
def frames(datasets: dict[str, Dataset]) -> dict[str, pd.DataFrame]:
    return {name: data.load(ds, datasets, ROOT).frame for name, ds in datasets.items()}


@pytest.fixture(scope="session")
def model_variant(example: dict[str, dict[str, Any]]) -> ModelFactory:
    """``model_variant(estimator=..., search=None, ...)``: the example Model with its spec
    keys replaced (a value of ``None`` removes the key), validated as a spec would be."""

    def make(**spec: Any) -> Model:
        raw = copy.deepcopy(example["breast-cancer-classifier"])
        for key, value in spec.items():
            if value is None:
                raw["spec"].pop(key, None)
            else:
                raw["spec"][key] = value
        return Model.model_validate(raw)

    return make
