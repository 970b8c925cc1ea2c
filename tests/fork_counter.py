"""Count ``os.fork`` calls during a test (the library must fork only when asked)."""

from __future__ import annotations

import os

import pytest


def count_forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that gains an item per ``os.fork``; the real fork still happens."""
    forks: list[int] = []
    real_fork = os.fork

    def fork() -> int:
        forks.append(1)
        return real_fork()

    monkeypatch.setattr(os, "fork", fork)
    return forks
