"""Writes over the Data API, over real HTTP: refused (403, naming the flag) unless the
server allows them; when allowed, made by a named client, recorded in the hash-chained
audit log with the digest of what was written (never the token, never the data), kept
across a restart (policies), and never by an id that climbs out of its place."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest
from serverhttp import TOKEN, cli_env, cli_server, request, run_cli

from controller.policy.data_api import DataApi, InvalidRequest
from controller.policy.sources import PolicyFile
from controller.state.store import Store

EXTRA = b'package extra\n\ngreeting := sprintf("hello %s", [data.who])\n'


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def audit(store: Store) -> list[tuple[str, str, str, dict]]:
    return [(r.event, r.actor, r.subject, r.payload) for r in store.audit.records()]


@pytest.mark.parametrize(
    ("method", "path", "body", "flag", "what"),
    [
        (
            "PUT",
            "/v1/policies/extra.rego",
            EXTRA,
            "--allow-policy-writes",
            "policy writes (PUT and DELETE /v1/policies)",
        ),
        (
            "DELETE",
            "/v1/policies/builtin/access.rego",
            None,
            "--allow-policy-writes",
            "policy writes (PUT and DELETE /v1/policies)",
        ),
        ("PUT", "/v1/data/who", b'"world"', "--allow-data-writes", "data writes (PUT /v1/data)"),
        ("PUT", "/v1/data", b"{}", "--allow-data-writes", "data writes (PUT /v1/data)"),
    ],
    ids=["put-policy", "delete-policy", "put-data", "put-root-data"],
)
def test_writes_are_refused_unless_allowed(
    server: tuple[str, int], method: str, path: str, body: bytes | None, flag: str, what: str
) -> None:
    status, doc = request(server, method, path, body)
    assert (status, doc) == (
        403,
        {
            "code": "unauthorized",
            "message": f"{what} are disabled on this server: start it with {flag} (and a token) to allow them",
        },
    )
    # nothing changed
    assert request(server, "GET", "/v1/policies/extra.rego")[0] == 404
    assert request(server, "GET", "/v1/policies/builtin/access.rego")[0] == 200
    assert request(server, "POST", "/v1/data/access/allow", b'{"input": {}}') == (200, {"result": False})


def test_an_allowed_policy_write_is_audited_with_the_client_and_digest(
    fresh_server: tuple[str, int], fresh_store: Store
) -> None:
    assert request(fresh_server, "PUT", "/v1/policies/extra.rego", EXTRA) == (200, {})
    assert request(fresh_server, "PUT", "/v1/data/who", b'"world"')[0] == 204
    assert request(fresh_server, "POST", "/v1/data/extra/greeting", b"{}") == (200, {"result": "hello world"})
    assert request(fresh_server, "GET", "/v1/policies/extra.rego") == (
        200,
        {"result": {"id": "extra.rego", "raw": EXTRA.decode()}},
    )
    assert audit(fresh_store) == [
        (
            "policy-written",
            "tester",
            "policy/extra.rego",
            {"id": "extra.rego", "sha256": sha256(EXTRA), "bytes": len(EXTRA)},
        ),
        ("data-written", "tester", "data/who", {"path": "who", "sha256": sha256(b'"world"'), "bytes": 7}),
    ]
    assert fresh_store.audit.verify().ok
    assert fresh_store.artifacts.get(sha256(EXTRA)) == EXTRA  # the text, kept by its digest for a restart


def test_written_data_and_tokens_stay_out_of_the_state(fresh_server: tuple[str, int], fresh_store: Store) -> None:
    secret_value = b'{"apiKey": "value-that-must-not-be-stored-7c1e"}'
    assert request(fresh_server, "PUT", "/v1/data/config", secret_value)[0] == 204
    assert request(fresh_server, "GET", "/v1/data/config") == (
        200,
        {"result": {"apiKey": "value-that-must-not-be-stored-7c1e"}},
    )
    state = fresh_store.state_dir
    fresh_store.close()
    stored = b"".join(p.read_bytes() for p in state.rglob("*") if p.is_file())
    assert b"value-that-must-not-be-stored" not in stored
    assert TOKEN.encode() not in stored


def test_a_policy_that_does_not_compile_changes_nothing_and_records_nothing(
    fresh_server: tuple[str, int], fresh_store: Store
) -> None:
    assert request(fresh_server, "PUT", "/v1/policies/extra.rego", EXTRA) == (200, {})
    status, doc = request(fresh_server, "PUT", "/v1/policies/extra.rego", b"package extra\n\nallow if {")
    assert (status, doc["code"]) == (400, "invalid_parameter")
    assert request(fresh_server, "GET", "/v1/policies/extra.rego")[1]["result"]["raw"] == EXTRA.decode()
    assert [event for event, *_ in audit(fresh_store)] == ["policy-written"]


def test_a_policy_can_be_deleted_and_the_deletion_is_audited(fresh_server: tuple[str, int], fresh_store: Store) -> None:
    assert request(fresh_server, "PUT", "/v1/policies/team/limits.rego", b"package team_limits\n\nmax := 3\n") == (
        200,
        {},
    )
    assert request(fresh_server, "POST", "/v1/data/team_limits/max", b"{}") == (200, {"result": 3})
    assert request(fresh_server, "DELETE", "/v1/policies/team/limits.rego") == (200, {})
    assert request(fresh_server, "POST", "/v1/data/team_limits/max", b"{}") == (200, {})  # undefined now
    assert request(fresh_server, "GET", "/v1/policies/team/limits.rego")[0] == 404
    assert request(fresh_server, "DELETE", "/v1/policies/team/limits.rego")[0] == 404
    assert audit(fresh_store)[1] == ("policy-deleted", "tester", "policy/team/limits.rego", {"id": "team/limits.rego"})


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        ("PUT", "/v1/policies/builtin/models.rego", b"package models\n", "is the built-in library's: it cannot be"),
        ("DELETE", "/v1/policies/builtin/access.rego", None, "is the built-in library's: it cannot be"),
        ("PUT", "/v1/policies/evil.rego", b"package models\n\nhas_strong_auc_gate if true\n", "package models is"),
        ("PUT", "/v1/policies/evil.rego", b"  package access.sub\n\nx := 1\n", "package access.sub is"),
        (
            "PUT",
            "/v1/policies/evil.rego",
            b'package modelplane.config.storage\n\nallowed_prefixes := {"production": ["http://"]}\n',
            "is inside data.modelplane",
        ),
        ("PUT", "/v1/policies/team.rego", b'package team["ml-ops"]\n\nx := 1\n', "not a Rego identifier"),
    ],
    ids=[
        "replace-library-file",
        "delete-library-file",
        "join-library-package",
        "inside-library-namespace",
        "into-the-data-modelplane-writes",
        "non-identifier-key",
    ],
)
def test_written_policies_cannot_change_the_library(
    fresh_server: tuple[str, int], fresh_store: Store, method: str, path: str, body: bytes | None, message: str
) -> None:
    """The library decides who may call a model (access) and what a medical model needs
    (models): a token holder may not switch its rules off by writing over or beside it."""
    status, doc = request(fresh_server, method, path, body)
    assert (status, doc["code"]) == (400, "invalid_parameter") and message in doc["message"]
    assert audit(fresh_store) == []


@pytest.mark.parametrize(
    "path",
    [
        "/v1/policies/../../etc/cron.d/x.rego",
        "/v1/policies/%2e%2e/%2e%2e/x.rego",
        "/v1/policies/policies/../x.rego",
        "/v1/policies/./x.rego",
        "/v1/policies/.hidden.rego",
        "/v1/policies/a//b.rego",
        "/v1/policies/a%5c..%5cb.rego",
        "/v1/policies/a%00b.rego",
        "/v1/policies/" + "a" * 300,
        "/v1/policies/%2fetc%2fx.rego",
        "/v1/policies//abs.rego",
        "/v1/policies/a/",
    ],
    ids=[
        "dotdot",
        "encoded-dotdot",
        "inner-dotdot",
        "dot",
        "hidden",
        "empty-segment",
        "backslash",
        "nul",
        "too-long",
        "encoded-absolute",
        "leading-slash",
        "trailing-slash",
    ],
)
def test_policy_ids_cannot_climb_out(fresh_server: tuple[str, int], fresh_store: Store, path: str) -> None:
    before = request(fresh_server, "GET", "/v1/policies")[1]
    for method, body in (("PUT", b"package x\n"), ("DELETE", None)):
        status, doc = request(fresh_server, method, path, body)
        assert (status, doc["code"]) == (400, "invalid_parameter"), doc
        assert doc["message"].startswith("policy id ") and "is not a relative path of plain names" in doc["message"]
    assert request(fresh_server, "GET", "/v1/policies")[1] == before
    assert audit(fresh_store) == []


def test_a_failed_commit_changes_nothing(library: list[PolicyFile]) -> None:
    """The record is made after the change compiles and before it is served: if recording
    fails, the change is not served (DataApi alone, no HTTP)."""
    import asyncio

    def broken() -> None:
        raise OSError("disk full")

    async def attempt(api: DataApi) -> None:
        with pytest.raises(OSError, match="disk full"):
            await api.put_policy("extra.rego", EXTRA.decode(), commit=broken)
        with pytest.raises(OSError, match="disk full"):
            await api.put_data("who", "world", commit=broken)
        with pytest.raises(OSError, match="disk full"):
            await api.delete_policy("team.rego", commit=broken)
        assert api.policy("extra.rego") is None and api.policy("team.rego") is not None
        assert await api.query("team/x") == 1
        assert await api.query("who") is None
        with pytest.raises(InvalidRequest):
            await api.put_policy("../x.rego", "package x\n")

    with DataApi([*library, PolicyFile("team.rego", "package team\n\nx := 1\n")]) as api:
        asyncio.run(attempt(api))


def test_written_policies_survive_a_restart_and_are_announced(tmp_path: Path) -> None:
    state, tokens = tmp_path / "state", tmp_path / "tokens"
    tokens.write_text(f"alice {TOKEN}\nbob bob-token-0123456789abcdef\n")
    tokens.chmod(0o600)
    env = cli_env(token=None)
    writes = ["--state-dir", str(state), "policy", "serve", "--token-file", str(tokens), "--allow-policy-writes"]
    with cli_server(*writes, env=env) as served:
        assert served.readline() == "clients with a token: alice, bob\n"
        assert served.readline() == f"--allow-policy-writes: writes are audited in {state}\n"
        assert request(served.addr, "PUT", "/v1/policies/extra.rego", EXTRA) == (200, {})
        assert request(
            served.addr, "DELETE", "/v1/policies/policies/platform_test.rego", token="bob-token-0123456789abcdef"
        ) == (200, {})
        served.stop()
    # restarted without --allow-policy-writes: what was written is served, and said
    with cli_server("--state-dir", str(state), "policy", "serve", "--token-file", str(tokens), env=env) as served:
        assert request(served.addr, "POST", "/v1/data/extra/greeting", b"{}") == (200, {})  # data.who is unset
        assert request(served.addr, "GET", "/v1/policies/extra.rego")[1]["result"]["raw"] == EXTRA.decode()
        assert request(served.addr, "GET", "/v1/policies/policies/platform_test.rego")[0] == 404
        assert request(served.addr, "PUT", "/v1/policies/more.rego", b"package more\n")[0] == 403
        out, _ = served.stop()
    lines = out.splitlines()
    assert lines[0] == "clients with a token: alice, bob"
    assert lines[1].startswith("policy extra.rego: written over HTTP by alice at ")
    assert lines[1].endswith(f", not in the repo (from the audit log in {state})")
    assert lines[2].startswith("policy policies/platform_test.rego: deleted over HTTP by bob at ")
    assert lines[2].endswith(f", removing the repo's (from the audit log in {state})")
    assert served.banner.endswith("(16 policy files)\n")  # library and repo: 16, +extra.rego, -platform_test.rego
    check = run_cli("--state-dir", str(state), "audit", "verify", env=env)
    assert (check.returncode, check.stdout) == (0, "audit log intact: 2 records, hash chain verified\n")

    # A written text altered in the state: the restart refuses, rather than serve it.
    stored = next((state / "artifacts").rglob(hashlib.sha256(EXTRA).hexdigest()))
    stored.chmod(0o644)
    stored.write_bytes(EXTRA.replace(b"hello", b"pwned"))
    out = run_cli("--state-dir", str(state), "policy", "serve", "--token-file", str(tokens), "--port", "0", env=env)
    assert (out.returncode, out.stdout) == (2, "")
    assert out.stderr == (
        f"modelplane: a policy written over HTTP cannot be replayed: artifact {sha256(EXTRA)} is corrupt: its "
        f"content hashes to {sha256(EXTRA.replace(b'hello', b'pwned'))}\n"
    )
    stored.write_bytes(EXTRA)
    # An audit record rewritten (the id of the write): the restart refuses too.
    with sqlite3.connect(state / "state.db") as db:
        db.execute("UPDATE audit_log SET payload = replace(payload, 'extra.rego', 'other.rego') WHERE seq = 1")
    db.close()
    out = run_cli("--state-dir", str(state), "policy", "serve", "--token-file", str(tokens), "--port", "0", env=env)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "does not verify (record 1 was edited: its content does not match its hash)" in out.stderr


def test_a_policy_conflicting_with_its_package_is_refused_at_the_write(
    fresh_server: tuple[str, int], fresh_store: Store
) -> None:
    """regorus accepts two rules of one name and fails only when they are queried; the
    write is refused instead, at the place of the conflict, and nothing is recorded."""
    team = b'package team\n\nimport rego.v1\n\nallow if input.user == "alice"\n'
    assert request(fresh_server, "PUT", "/v1/policies/team.rego", team) == (200, {})
    clash = b'package team\n\nimport rego.v1\n\nallow contains "everyone"\n'
    status, doc = request(fresh_server, "PUT", "/v1/policies/clash.rego", clash)
    assert status == 400
    assert "clash.rego:5:1" in doc["message"] and "conflicting rules for data.team.allow" in doc["message"]
    valued = b'package team\n\nimport rego.v1\n\ngroup := "x"\n\ngroup := "y"\n'
    status, doc = request(fresh_server, "PUT", "/v1/policies/valued.rego", valued)
    assert status == 400 and "valued.rego:7:1" in doc["message"], doc
    ids = {p["id"] for p in request(fresh_server, "GET", "/v1/policies")[1]["result"]}
    assert "team.rego" in ids and not ids & {"clash.rego", "valued.rego"}
    assert request(fresh_server, "POST", "/v1/data/team/allow", b'{"input": {"user": "alice"}}') == (
        200,
        {"result": True},
    )
    assert [event for event, *_ in audit(fresh_store)] == ["policy-written"]


def test_a_written_policy_the_repo_now_conflicts_with_is_named_and_can_be_forgotten(tmp_path: Path) -> None:
    """The repo moved on and no longer loads with a policy written over HTTP: the start
    says which write, by whom, and how to drop it; dropping it is audited."""
    platform = tmp_path / "platform"
    shutil.copytree("specs", platform / "specs")
    shutil.copytree("policies", platform / "policies")
    state = platform / ".modelplane"
    env = cli_env()
    with cli_server("policy", "serve", "--allow-policy-writes", cwd=platform, env=env) as served:
        written = b'package platform\n\ndefault resource_name := "x"\n'
        assert request(served.addr, "PUT", "/v1/policies/c2.rego", written) == (200, {})
        served.stop()
    with (platform / "policies" / "platform.rego").open("a") as repo_policy:
        repo_policy.write('\ndefault resource_name := "z"\n')
    refused = run_cli("policy", "serve", "--port", "0", cwd=platform, env=env)
    assert refused.returncode == 2
    assert "multiple default rules for data.platform.resource_name" in refused.stderr
    assert "c2.rego was written over HTTP by default at " in refused.stderr
    assert "run 'modelplane policy forget c2.rego --as YOU'" in refused.stderr
    listed = run_cli("policy", "written", cwd=platform, env=env)
    assert listed.stdout.startswith("c2.rego: written over HTTP by default at ")
    assert run_cli("policy", "forget", "c2.rego", "--as", "Alice", cwd=platform, env=env).returncode == 0
    assert run_cli("policy", "written", cwd=platform, env=env).stdout == "No policies written over HTTP are in force.\n"
    with cli_server("policy", "serve", cwd=platform, env=env) as served:
        assert request(served.addr, "GET", "/v1/policies/c2.rego")[0] == 404
        served.stop()
    opened = Store(state)
    assert [(r.event, r.actor) for r in opened.audit.records()][-1] == ("policy-forgotten", "alice")
    opened.close()
    assert run_cli("policy", "forget", "c2.rego", "--as", "alice", cwd=platform, env=env).returncode == 2


def test_a_wiped_state_does_not_start_a_server_afresh(tmp_path: Path) -> None:
    """Written policies live in the state: a state the repo's anchor proves was there,
    and is gone, refuses the start instead of quietly serving without them."""
    import subprocess

    platform = tmp_path / "platform"
    shutil.copytree("specs", platform / "specs")
    ident = ["-c", "user.name=a", "-c", "user.email=a@example.org"]
    subprocess.run(["git", "init", "-q"], cwd=platform, check=True)
    subprocess.run(["git", *ident, "add", "-A"], cwd=platform, check=True)
    subprocess.run(["git", *ident, "commit", "-qm", "init"], cwd=platform, check=True)
    with cli_server("policy", "serve", "--allow-policy-writes", cwd=platform) as served:
        assert request(served.addr, "PUT", "/v1/policies/extra.rego", EXTRA) == (200, {})
        served.stop()
    assert run_cli("audit", "anchor", cwd=platform).returncode == 0
    shutil.rmtree(platform / ".modelplane")
    for flags in ([], ["--allow-policy-writes"]):
        out = run_cli("policy", "serve", "--port", "0", *flags, cwd=platform)
        assert out.returncode == 3 and "proves the state held record 1" in out.stderr, out.stderr
    assert not (platform / ".modelplane" / "state.db").exists()


def test_a_deeply_nested_policy_is_refused_at_once(fresh_server: tuple[str, int], fresh_store: Store) -> None:
    """regorus would take hours to parse it (time doubles per level), holding the server."""
    import time

    deep = b"package deep\n\nx := " + b"[" * 100_000 + b"1" + b"]" * 100_000 + b"\n"
    started = time.monotonic()
    status, doc = request(fresh_server, "PUT", "/v1/policies/deep.rego", deep)
    assert status == 400 and "deep.rego:3:18: brackets nested more than 12 deep" in doc["message"]
    assert time.monotonic() - started < 2
    assert request(fresh_server, "GET", "/health", token=None) == (200, {})
    assert audit(fresh_store) == []


def test_a_write_the_audit_log_refuses_is_not_made(fresh_server: tuple[str, int], fresh_store: Store) -> None:
    """The log was rewritten under the running server: the next write is refused, said
    so, and not served."""
    assert request(fresh_server, "PUT", "/v1/policies/extra.rego", EXTRA) == (200, {})
    (fresh_store.state_dir / "audit.head").write_text("1 " + "0" * 64 + "\n")
    status, doc = request(fresh_server, "PUT", "/v1/policies/more.rego", b"package more\n\nx := 1\n")
    assert status == 500 and doc["message"].startswith("the write was not recorded, so it was not made: ")
    assert "the log was rewritten" in doc["message"]
    assert request(fresh_server, "GET", "/v1/policies/more.rego")[0] == 404
