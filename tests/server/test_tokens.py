"""Token files and MODELPLANE_API_TOKEN: named clients, refused files and tokens, and no
token ever quoted back in an error (tokens are only matched over HTTP in
test_auth_http.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.server.auth import MIN_TOKEN_CHARS, TOKEN_ENV, TokenError, Tokens, load_tokens, read_token_file

ALICE = "alice-token-5f2b9c1d7e3a"
CI = "ci-token-0a9d8e7f6b5c4d3e"


def token_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "tokens"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_token_file_names_its_clients(tmp_path: Path) -> None:
    path = token_file(tmp_path, f"# who may call the server\n\nalice {ALICE}\n  CI   {CI}  # the runner\n")
    with pytest.raises(TokenError, match=r"tokens:4: expected 'NAME TOKEN' \(two fields\), found 5"):
        read_token_file(path)  # comments are whole lines
    path = token_file(tmp_path, f"# who may call the server\n\nalice {ALICE}\n  CI   {CI}\n")
    tokens = read_token_file(path)
    assert tokens.names == ["alice", "ci"]  # names are identities: trimmed and case-folded
    assert (tokens.client(ALICE), tokens.client(CI)) == ("alice", "ci")
    for wrong in ("", ALICE[:-1], ALICE + "x", ALICE.upper(), f" {ALICE}", CI + ALICE):
        assert tokens.client(wrong) is None
    assert ALICE not in repr(tokens) and CI not in repr(tokens)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "holds no 'NAME TOKEN' lines"),
        ("# only a comment\n", "holds no 'NAME TOKEN' lines"),
        (f"{ALICE}\n", r":1: expected 'NAME TOKEN' \(two fields\), found 1"),
        (f"alice {ALICE} extra\n", r":1: expected 'NAME TOKEN' \(two fields\), found 3"),
        ("alice short-token\n", rf":1: the token is 11 characters; use at least {MIN_TOKEN_CHARS}"),
        (f"alice {ALICE}\nbob {ALICE}\n", ":2: the same token as line 1: give every client its own"),
        (f"alice {ALICE}\nAlice {CI}\n", ":2: the client name repeats line 1"),
        (f"-alice- {ALICE}\n", ":1: the client name must be letters, digits"),
        (f"alice {ALICE}é\n", ":1: the token must be printable ASCII without spaces"),
    ],
    ids=[
        "empty",
        "comments-only",
        "one-field",
        "three-fields",
        "short",
        "shared-token",
        "repeated-name",
        "bad-name",
        "non-ascii",
    ],
)
def test_bad_token_files_are_refused_without_quoting_a_token(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(TokenError, match=message) as caught:
        read_token_file(token_file(tmp_path, text))
    assert "\n" not in str(caught.value)
    for secret in (ALICE, CI, "short-token"):
        assert secret not in str(caught.value)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o660], ids=oct)
def test_token_file_open_to_others_is_refused_like_an_ssh_key(tmp_path: Path, mode: int) -> None:
    path = token_file(tmp_path, f"alice {ALICE}\n", mode)
    with pytest.raises(TokenError) as caught:
        read_token_file(path)
    assert str(caught.value) == (
        f"token file {path} has permissions {mode:04o}: it holds secrets and must not be open to group or "
        f"others (like an ssh key); run: chmod 600 {path}"
    )
    path.chmod(0o400)
    assert read_token_file(path).names == ["alice"]


def test_missing_token_file_and_directories_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(TokenError, match=r"^cannot read token file .*nope: No such file or directory$"):
        read_token_file(tmp_path / "nope")
    with pytest.raises(TokenError, match="is not a regular file"):
        read_token_file(tmp_path)


def test_token_from_the_environment(tmp_path: Path) -> None:
    tokens = load_tokens(None, {TOKEN_ENV: f"{ALICE}\n"})  # as from $(cat file): the newline is dropped
    assert tokens is not None and tokens.names == ["default"] and tokens.client(ALICE) == "default"
    assert load_tokens(None, {}) is None
    with pytest.raises(TokenError, match=f"^{TOKEN_ENV}: it is empty$"):
        load_tokens(None, {TOKEN_ENV: " "})
    with pytest.raises(TokenError, match=f"^{TOKEN_ENV}: the token is 6 characters") as caught:
        load_tokens(None, {TOKEN_ENV: "hunter"})
    assert "hunter" not in str(caught.value)
    path = token_file(tmp_path, f"alice {ALICE}\n")
    with pytest.raises(TokenError, match=f"^{TOKEN_ENV} is set and --token-file is given: use one of them$"):
        load_tokens(path, {TOKEN_ENV: CI})
    tokens = load_tokens(path, {})
    assert tokens is not None and tokens.names == ["alice"]


def test_no_clients_is_not_a_token_set() -> None:
    with pytest.raises(TokenError):
        Tokens({})
