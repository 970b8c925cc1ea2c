"""The layer contract of DESIGN.md section 3, enforced by import-linter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_imports_only_point_down() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--no-cache"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Contracts: 1 kept, 0 broken." in out.stdout
