"""The GitOps loop through ``modelplane controller``: a commit pushed to the example
platform (a real git repository), a signed GitHub push webhook for it (GitHub's real
body, re-addressed), and the worker reconciles that commit end to end: data gate,
training, metric gate, registration. Replaying the delivery 100 times changes nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
from conftest import make_repo
from loop_helpers import EXE, MODEL, git

from controller.state.store import Store

upstream = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "upstream"  # ../shared/upstream, copied
SECRET = "a-webhook-secret-of-the-loop-test"
ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "MODELPLANE_API_TOKEN": "an-api-token-of-the-loop-test",
       "MODELPLANE_GITHUB_WEBHOOK_SECRET": SECRET}  # fmt: skip


def push_payload(sha: str, changed: str) -> bytes:
    """GitHub's push body, for this repository's main branch and commit."""
    payload = json.loads((upstream / "github-webhooks" / "push.payload.json").read_text())
    payload.update(ref="refs/heads/main", after=sha, deleted=False, created=False)
    payload["commits"] = [{"id": sha, "added": [], "removed": [], "modified": [changed]}]
    payload["repository"]["default_branch"] = "main"
    return json.dumps(payload).encode()


def test_a_pushed_commit_is_reconciled_by_the_controllers_worker(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, served=False)
    model = repo / MODEL
    model.write_text(model.read_text().replace("n_estimators: 40", "n_estimators: 41"))
    git(repo, "commit", "-qam", "more trees")
    sha = git(repo, "rev-parse", "HEAD").strip()
    body = push_payload(sha, str(MODEL))
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "loop-1",
        "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
    }
    proc = subprocess.Popen(
        [str(EXE), "controller", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=repo
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline().decode()
        assert "a worker reconciles them" in banner, banner
        url = re.search(r"http://127\.0\.0\.1:\d+", banner).group(0)  # type: ignore[union-attr]
        answer = httpx.post(url + "/webhooks/github", content=body, headers=headers, timeout=10)
        assert (answer.status_code, answer.json()["status"]) == (202, "queued")
        for _ in range(100):
            assert httpx.post(url + "/webhooks/github", content=body, headers=headers, timeout=10).status_code == 200
        store = Store(repo / ".modelplane")
        try:
            deadline = time.monotonic() + 240
            while (item := store.queue.items()[0]).state in ("pending", "leased") and time.monotonic() < deadline:
                time.sleep(0.5)
            assert (item.sha, item.state, item.attempts) == (sha, "done", 1), item
            assert re.match(r"[1-9]\d* step\(s\) run", item.detail or ""), item.detail
            assert len(store.queue.items()) == 1 and len(store.queue.deliveries()) == 1
            trained = [r for r in store.audit.records() if r.revision == sha and r.event == "train"]
            assert trained, sorted({r.event for r in store.audit.records()})
        finally:
            store.close()
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()[-2000:]
    listed = subprocess.run([str(EXE), "queue", "list"], cwd=repo, capture_output=True, text=True, timeout=60)
    (line,) = listed.stdout.splitlines()
    assert re.match(rf"\s+1  done\s+Codertocat/Hello-World@main  {sha[:12]}  \(attempts 1\): [1-9]", line), line
    as_json = subprocess.run([str(EXE), "queue", "list", "-o", "json"], cwd=repo, capture_output=True, text=True)
    assert [(i["sha"], i["state"]) for i in json.loads(as_json.stdout)] == [(sha, "done")]
