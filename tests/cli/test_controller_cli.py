"""``modelplane controller`` as a user runs it: refused without a webhook secret, and,
with one, a signed GitHub push (GitHub's real body) is queued in the state directory."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from controller.state.store import Store

MODELPLANE = Path(sys.executable).with_name("modelplane")
upstream = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "upstream"  # ../shared/upstream, copied
PUSH = (upstream / "github-webhooks" / "push.with-new-branch.payload.json").read_bytes()
SECRET = "a-webhook-secret-of-the-cli-tests"
ENV = {"PATH": "/usr/bin:/bin", "MODELPLANE_API_TOKEN": "an-api-token-of-the-cli-tests"}


def test_the_controller_will_not_start_without_a_webhook_secret(tmp_path: Path) -> None:
    out = subprocess.run(
        [str(MODELPLANE), "controller", "--port", "0"],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=tmp_path,
        timeout=30,
    )
    assert out.returncode == 2
    assert "no webhook secret: set MODELPLANE_GITHUB_WEBHOOK_SECRET or MODELPLANE_GITLAB_WEBHOOK_SECRET" in out.stderr


def test_a_signed_push_reaches_the_queue_of_the_state_directory(tmp_path: Path) -> None:
    branch = json.loads(PUSH)["ref"].removeprefix("refs/heads/")
    proc = subprocess.Popen(
        [
            str(MODELPLANE),
            "--state-dir",
            "state",
            "controller",
            "--port",
            "0",
            "--branch",
            branch,
            "--watch-path",
            "*",
            "--no-worker",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**ENV, "MODELPLANE_GITHUB_WEBHOOK_SECRET": SECRET},
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline().decode()
        assert banner.startswith("controller on http://127.0.0.1:") and "POST /webhooks/github;" in banner, banner
        assert banner.rstrip().endswith("no worker (--no-worker)"), banner
        assert proc.stdout.readline().decode() == "clients with a token: default\n"  # named, never shown
        url = re.search(r"http://127\.0\.0\.1:\d+", banner).group(0)  # type: ignore[union-attr]
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": "cli-1",
            "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), PUSH, hashlib.sha256).hexdigest(),
        }
        answer = httpx.post(url + "/webhooks/github", content=PUSH, headers=headers, timeout=10)
        assert (answer.status_code, answer.json()["status"]) == (202, "queued")
        # No GitLab secret, no GitLab route: to anyone without the API token it is like any other path (401).
        assert httpx.post(url + "/webhooks/gitlab", content=b"{}", timeout=10).status_code == 401
        bearer = {"Authorization": f"Bearer {ENV['MODELPLANE_API_TOKEN']}"}
        assert httpx.post(url + "/webhooks/gitlab", content=b"{}", headers=bearer, timeout=10).status_code == 404
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=15)
    assert proc.returncode == 0
    store = Store(tmp_path / "state")
    try:
        (item,) = store.queue.items()
        assert (item.branch, item.sha, item.state) == (branch, json.loads(PUSH)["after"], "pending")
    finally:
        store.close()


def test_a_webhook_secret_too_short_to_be_one_is_refused(tmp_path: Path) -> None:
    env = {**ENV, "MODELPLANE_GITLAB_WEBHOOK_SECRET": "short"}
    out = subprocess.run(
        [str(MODELPLANE), "controller", "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=30,
    )
    assert out.returncode == 2
    assert "MODELPLANE_GITLAB_WEBHOOK_SECRET is 5 characters; use at least 16" in out.stderr
    assert "short" not in out.stderr.replace("MODELPLANE", "")  # the secret itself is never printed
