"""Data values never reach the evidence in clear: GX's unexpected samples are masked."""

from __future__ import annotations

import json

import pandas as pd

from controller.api import Dataset
from controller.loading import load
from reconcilers import datagate


def test_unexpected_values_are_masked_in_the_evidence() -> None:
    dataset = next(r.resource for r in load(["specs"]).resources if isinstance(r.resource, Dataset))
    frame = pd.read_csv("data/breast-cancer.csv")
    frame.loc[:2, "mean radius"] = 987.654321  # out of the contract's range: a recognisable value
    gate = datagate.run_contract(dataset, frame)
    assert not gate.success
    failed = next(r for r in gate.evidence["results"] if not r["success"])
    assert failed["observed"]["unexpected_count"] == 3
    assert failed["observed"]["unexpected_samples"] == ["<number>"] * 3
    assert "987.65" not in json.dumps(gate.evidence)
    assert [datagate.mask(v) for v in ("123-45-6789", None, True)] == ["<text, 11 chars>", "<null>", "<boolean>"]
