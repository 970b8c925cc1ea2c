"""The Data API's engine in a process of its own: a runaway rule is stopped at the time
limit or the memory limit, the engine comes back with what was kept, a written policy
that cannot evaluate is refused before it is served, and the child holds none of the
server's secrets."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.policy.engine import EngineError
from controller.policy.sources import PolicyFile, PolicyLoadError
from controller.policy.worker import EngineWorker, PolicyTimeout

# Slow only when asked, in little memory: n * n pairs are tried, none matches. With
# no input it is undefined at once.
RUNAWAY = PolicyFile(
    "runaway.rego",
    "package runaway\n\nimport rego.v1\n\ncount_to := count(numbers.range(1, input.n))\n\n"
    "negative_pair if {\n\tsome i in numbers.range(1, input.n)\n\tsome j in numbers.range(1, input.n)\n"
    "\ti * j < 0\n}\n",
)
# Grows without end when asked: every pair, kept.
HOARDER = PolicyFile(
    "hoarder.rego",
    "package hoarder\n\nimport rego.v1\n\n"
    "pairs := [[i, j] | some i in numbers.range(1, input.n); some j in numbers.range(1, input.n)]\n",
)
SLOW = {"n": 100_000}  # 10^10 pairs
ACCESS = PolicyFile("access.rego", "package access\n\nimport rego.v1\n\nallow if input.user == data.owner\n")
DATA = json.dumps({"owner": "alice"})


@pytest.fixture
def worker() -> Iterator[EngineWorker]:
    w = EngineWorker([RUNAWAY, HOARDER, ACCESS], DATA, timeout=1.0, memory_mb=512)
    yield w
    w.close()


def test_a_runaway_query_is_stopped_and_the_engine_comes_back(worker: EngineWorker) -> None:
    assert worker.query("runaway.count_to", {"n": 10}) == 10
    started = time.monotonic()
    with pytest.raises(PolicyTimeout, match=r"policy-timeout: data\.runaway\.negative_pair did not finish within 1 s"):
        worker.query("runaway.negative_pair", SLOW)
    assert time.monotonic() - started < 5  # stopped at the limit, plus a restart
    assert worker.restarts == 1
    # The new engine has the same policies and data.
    assert worker.query("access.allow", {"user": "alice"}) is True
    assert worker.query("access.allow", {"user": "mallory"}) is None


def test_a_rule_that_allocates_without_end_dies_in_its_process(worker: EngineWorker) -> None:
    worker.timeout = 60.0  # the memory limit, not the clock, must stop it
    with pytest.raises(EngineError, match="memory limit of 512 MB") as raised:
        worker.query("hoarder.pairs", SLOW)
    assert not isinstance(raised.value, PolicyTimeout)
    assert worker.restarts == 1
    assert worker.query("access.allow", {"user": "alice"}) is True


def test_a_child_killed_while_idle_is_replaced_before_the_next_query(worker: EngineWorker) -> None:
    """Killed from outside between queries: the next query is answered, not blamed."""
    assert worker._process is not None
    worker._process.kill()
    worker._process.wait()
    assert worker.query("access.allow", {"user": "alice"}) is True
    assert worker.restarts == 1


def test_a_data_document_over_the_memory_limit_is_refused_and_the_old_one_kept(worker: EngineWorker) -> None:
    big = json.dumps({"owner": "alice", "blob": ["x" * 1024] * (300 * 1024)})  # 300 MB of JSON, more once parsed
    with pytest.raises(EngineError, match=r"stopped on the data document .* if it is too large"):
        worker.set_data(big)
    assert worker.query("access.allow", {"user": "alice"}) is True


def test_policies_that_conflict_in_their_values_are_refused_before_they_answer(worker: EngineWorker) -> None:
    other = PolicyFile("other.rego", 'package access\n\nowner := data.owner\n\nowner := "bob"\n')
    with pytest.raises(PolicyLoadError) as raised:
        worker.replace([RUNAWAY, ACCESS, other], DATA, check=["access"])
    assert (raised.value.file, raised.value.line) == ("other.rego", 5)
    assert "conflicts" in raised.value.message
    assert worker.query("access.allow", {"user": "alice"}) is True  # nothing changed


def test_a_package_that_does_not_evaluate_in_time_is_refused(worker: EngineWorker) -> None:
    slow = PolicyFile(
        "slow.rego",
        "package slow\n\nimport rego.v1\n\n"
        "x := count([1 | some i in numbers.range(1, 100000); some j in numbers.range(1, 100000); i * j < 0])\n",
    )
    with pytest.raises(PolicyLoadError, match=r"package slow did not finish within 1 s"):
        worker.replace([ACCESS, slow], DATA, check=["slow"])
    assert worker.query("access.allow", {"user": "alice"}) is True
    assert worker.query("slow.x", {}) is None  # never served


def test_a_failed_commit_changes_nothing(worker: EngineWorker) -> None:
    def commit() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        worker.replace([ACCESS], json.dumps({"owner": "bob"}), commit=commit)
    assert worker.query("access.allow", {"user": "alice"}) is True
    assert worker.query("runaway.count_to", {"n": 3}) == 3


def test_data_can_be_replaced_without_recompiling(worker: EngineWorker) -> None:
    worker.set_data(json.dumps({"owner": "bob"}))
    assert worker.query("access.allow", {"user": "bob"}) is True
    # A restart keeps the data set last.
    with pytest.raises(PolicyTimeout):
        worker.query("runaway.negative_pair", SLOW)
    assert worker.query("access.allow", {"user": "bob"}) is True


def test_the_engine_process_holds_none_of_the_servers_secrets(
    worker: EngineWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELPLANE_API_TOKEN", "secret-token-0123456789")
    worker.close()
    fresh = EngineWorker([ACCESS], DATA, timeout=1.0)
    try:
        assert fresh._process is not None
        environ = Path(f"/proc/{fresh._process.pid}/environ").read_bytes()
        assert b"secret-token" not in environ
        assert b"MODELPLANE_API_TOKEN" not in environ
    finally:
        fresh.close()


def test_the_engine_process_dies_with_its_parent(tmp_path: Path) -> None:
    """A server killed mid-evaluation leaves no runaway behind."""
    import subprocess
    import sys

    script = (
        "import json, sys\n"
        "from controller.policy.sources import PolicyFile\n"
        "from controller.policy.worker import EngineWorker\n"
        f"w = EngineWorker([PolicyFile('runaway.rego', {RUNAWAY.text!r})], '{{}}', timeout=600)\n"
        "print(w._process.pid, flush=True)\n"
        f"w.query('runaway.negative_pair', {SLOW!r})\n"
    )
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as parent:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        time.sleep(0.3)  # the child is evaluating
        parent.kill()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has died (its parent is gone too; init reaps it)


def test_a_closed_worker_refuses(worker: EngineWorker) -> None:
    worker.close()
    worker.close()  # once is enough; twice does nothing
    with pytest.raises(EngineError, match="closed"):
        worker.query("access.allow", {"user": "alice"})


def test_the_time_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        EngineWorker([ACCESS], DATA, timeout=0)


def test_a_module_in_the_working_directory_cannot_run_in_the_engine_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``policy serve`` runs from the platform repo: a pushed 'select.py' must not shadow
    the module the engine's process imports."""
    marker = tmp_path / "PWNED"
    for module in ("select.py", "json.py", "struct.py"):
        (tmp_path / module).write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    (tmp_path / "controller").mkdir()
    (tmp_path / "controller" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    fresh = EngineWorker([ACCESS], DATA, timeout=5.0)
    try:
        assert fresh.query("access.allow", {"user": "alice"}) is True
    finally:
        fresh.close()
    assert not marker.exists()


def test_a_check_that_runs_out_of_memory_refuses_the_policy(worker: EngineWorker) -> None:
    hog = PolicyFile(
        "hog.rego",
        "package hog\n\nimport rego.v1\n\n"
        "pairs := [[i, j] | some i in numbers.range(1, 100000); some j in numbers.range(1, 100000)]\n",
    )
    worker.timeout = 60.0
    with pytest.raises(PolicyLoadError, match=r"stopped on package hog \(killed by SIGABRT\)"):
        worker.replace([ACCESS, hog], DATA, check=["hog"])
    assert worker.query("access.allow", {"user": "alice"}) is True


def test_an_answer_too_large_to_hold_is_refused(worker: EngineWorker, monkeypatch: pytest.MonkeyPatch) -> None:
    from controller.policy import worker as module

    monkeypatch.setattr(module, "MAX_ANSWER_BYTES", 1000)
    with pytest.raises(EngineError, match="over the limit of 1000 bytes"):
        worker.query("hoarder.pairs", {"n": 100})
    assert worker.query("access.allow", {"user": "alice"}) is True
