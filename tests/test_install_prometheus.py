"""scripts/install-prometheus.sh, which ``make test`` and ``make demo`` run: nothing to
do when the binary is there, and a one-line reason (never a half install) when it
cannot install. The install itself is what ``make test`` does on a fresh machine."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "install-prometheus.sh"


def _path_with(tmp_path: Path, *tools: str) -> str:
    """A PATH holding only these tools (no prometheus among them)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in tools:
        found = shutil.which(tool)
        assert found is not None, tool
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def _run(path: str, *prefix: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, "/bin/sh", str(SCRIPT)], capture_output=True, text=True, env={"PATH": path}, timeout=30
    )


def test_nothing_to_do_when_prometheus_is_on_path() -> None:
    done = _run(os.environ["PATH"])
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_no_apt_get_is_a_clear_error(tmp_path: Path) -> None:
    done = _run(_path_with(tmp_path, "id"))
    assert done.returncode == 1
    assert done.stderr == (
        "error: prometheus is not installed and apt-get is not available; install Debian's 'prometheus' "
        "package (or put a Prometheus 2.x binary on PATH) and run make again\n"
    )


def test_not_root_and_no_sudo_is_a_clear_error() -> None:
    with tempfile.TemporaryDirectory() as public:  # 0755 up to /tmp, unlike pytest's tmp_path
        Path(public).chmod(0o755)
        path = _path_with(Path(public), "id", "apt-get")
        as_nobody = [shutil.which("setpriv") or "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        done = _run(path, *(as_nobody if os.geteuid() == 0 else []))
    assert done.returncode == 1
    assert done.stderr == (
        "error: prometheus is not installed and this user is not root and has no sudo; install Debian's "
        "'prometheus' package (or put a Prometheus 2.x binary on PATH) and run make again\n"
    )
