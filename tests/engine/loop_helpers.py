"""Helpers for the reconcile-loop tests: run git and modelplane in a scratch repo."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXE = Path(sys.executable).with_name("modelplane")
MODEL = Path("specs/models/breast-cancer-classifier.yaml")
DATA = Path("data/breast-cancer.csv")


def git(cwd: Path, *args: str) -> str:
    ident = ["-c", "user.name=Ada Lovelace", "-c", "user.email=ada@example.org"]
    return subprocess.run(["git", *ident, *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def modelplane(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EXE), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
