"""Helpers for the tests that serve the example: promote it, call it under live traffic."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import httpx
from loop_helpers import modelplane

SERVICE = Path("specs/services/breast-cancer-api.yaml")
PREDICT = "/v1/models/breast-cancer-api:predict"
ROWS = json.loads((Path(__file__).resolve().parents[2] / "docs/examples/predict-v1.json").read_text())


def promote_to_production(repo: Path) -> None:
    out = modelplane(repo, "apply")
    assert "promote breast-cancer-classifier -> Staging" in out.stdout, out.stdout + out.stderr
    for who in ("alice", "bob"):
        assert modelplane(repo, "approve", "breast-cancer-classifier", "Staging", "--as", who).returncode == 0


class Traffic:
    """Live calls to the service from another thread, counting the answers."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.codes: Counter[int] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "X-Consent": "true"}
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                try:
                    self.codes[client.post(self.url + PREDICT, json=ROWS, headers=headers).status_code] += 1
                except httpx.TransportError:
                    self.codes[0] += 1

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
