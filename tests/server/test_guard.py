"""Whether ``modelplane policy serve`` starts: without a token it refuses (unless
--insecure-no-auth, on loopback only); on an address that is not loopback it needs TLS
(served over real HTTPS here, with a certificate made in the test) or --behind-tls-proxy,
which warns; and a port in use or out of range is a one-line error. Every refusal is one
line on stderr and exit code 2, before the port is opened."""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from serverhttp import TOKEN, cli_env, cli_server, exchange, request, run_cli

from controller.policy.data_api import DataApi
from controller.policy.sources import PolicyFile
from controller.server.app import create_app
from controller.server.auth import Tokens
from controller.server.data_api import routes
from controller.server.guard import Guard, check, is_loopback
from controller.server.run import Address, ServerError, TLSFiles, resolve, serving

NO_TOKEN = (
    "modelplane: no API token: set MODELPLANE_API_TOKEN, or give --token-file FILE ('NAME TOKEN' lines, chmod 600); "
    "--insecure-no-auth serves without one, on a loopback address only"
)

NOT_PEM = "not a PEM certificate (chain) and the private key that matches it"


def refused(*args: str, token: str | None = TOKEN) -> str:
    """The one line a refused ``policy serve ARGS`` prints (checking the exit code and that nothing else shows)."""
    out = run_cli("policy", "serve", *args, env=cli_env(token))
    assert (out.returncode, out.stdout) == (2, ""), out
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    return out.stderr.rstrip("\n")


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port held by another socket, on every address: whoever binds it next fails."""
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_no_token_no_start() -> None:
    assert refused(token=None) == NO_TOKEN
    # refused before listening: on a port in use the token is still what is reported
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        assert refused("--port", str(holder.getsockname()[1]), token=None) == NO_TOKEN


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--host", "0.0.0.0"],
            "--insecure-no-auth is only accepted on a loopback address (127.0.0.1, ::1), not 0.0.0.0",
        ),
        (["--host", "::"], "--insecure-no-auth is only accepted on a loopback address (127.0.0.1, ::1), not ::"),
        (
            ["--allow-policy-writes"],
            "--allow-policy-writes needs a token: writes are never open to anyone "
            "(drop --insecure-no-auth; set MODELPLANE_API_TOKEN or give --token-file FILE)",
        ),
        (
            ["--allow-data-writes"],
            "--allow-data-writes needs a token: writes are never open to anyone "
            "(drop --insecure-no-auth; set MODELPLANE_API_TOKEN or give --token-file FILE)",
        ),
    ],
    ids=["any-ipv4", "any-ipv6", "policy-writes", "data-writes"],
)
def test_insecure_no_auth_is_loopback_only_and_never_writes(args: list[str], message: str) -> None:
    assert refused("--insecure-no-auth", *args, token=None) == f"modelplane: {message}"


def test_insecure_no_auth_with_a_token_is_a_contradiction() -> None:
    assert refused("--insecure-no-auth") == (
        "modelplane: --insecure-no-auth and a token (MODELPLANE_API_TOKEN) contradict each other: drop one"
    )


def test_insecure_no_auth_on_loopback_serves_anyone_and_says_so() -> None:
    with cli_server("--insecure-no-auth", env=cli_env(token=None)) as served:
        assert request(served.addr, "POST", "/v1/data/access/allow", b'{"input": {}}', token=None) == (
            200,
            {"result": False},
        )
        status, doc = request(served.addr, "PUT", "/v1/data/who", b'"me"', token=None)
        assert (status, doc["code"]) == (403, "unauthorized")
        out, err = served.stop()
    assert out == ""  # no clients to list
    assert err == (
        "WARNING: no authentication (--insecure-no-auth): every user and process on this host can query 127.0.0.1\n"
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "::"], ids=["any-ipv4", "any-ipv6"])
def test_a_non_loopback_address_needs_tls(host: str, taken_port: int) -> None:
    """Refused before listening: the port is taken, yet the refusal is about TLS, not the port."""
    assert refused("--host", host, "--port", str(taken_port)) == (
        f"modelplane: {host} is not a loopback address: serving it needs TLS (--tls-cert FILE --tls-key FILE), "
        "or --behind-tls-proxy when a TLS proxy in front is the only way in"
    )
    assert refused("--host", host, "--port", str(taken_port), token=None) == NO_TOKEN


@pytest.mark.parametrize(
    ("ip", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("10.0.0.7", False),
        ("fe80::1", False),
        ("::ffff:127.0.0.1", False),  # a mapped address is not taken for loopback
    ],
)
def test_which_addresses_are_loopback(ip: str, loopback: bool) -> None:
    """LAN addresses cannot be bound on every machine: the guard is checked on the resolved address."""
    address = Address(ip, 8181, socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, (ip, 8181))
    assert is_loopback(address) is loopback
    tokens = {"MODELPLANE_API_TOKEN": TOKEN}
    if loopback:
        assert check(Guard(), address, tokens).warnings == []
    else:
        with pytest.raises(ServerError, match=f"^{ip} is not a loopback address: serving it needs TLS"):
            check(Guard(), address, tokens)
        assert (
            check(Guard(behind_tls_proxy=True), address, tokens).warnings[0].startswith("WARNING: serving plain HTTP")
        )
        with pytest.raises(ServerError, match="--insecure-no-auth is only accepted on a loopback address"):
            check(Guard(insecure_no_auth=True), address, {})


def test_localhost_resolves_to_loopback() -> None:
    assert is_loopback(resolve("localhost", 0))


def test_behind_a_tls_proxy_it_starts_with_a_loud_warning() -> None:
    with cli_server("--host", "0.0.0.0", "--behind-tls-proxy") as served:
        assert served.url.startswith("http://0.0.0.0:")
        assert request(served.addr, "GET", "/v1/policies", token=None)[0] == 401  # still guarded
        _, err = served.stop()
    assert err == (
        "WARNING: serving plain HTTP on 0.0.0.0 (--behind-tls-proxy): bearer tokens and decisions "
        "cross the network in clear unless the TLS proxy in front is the only way to reach this port\n"
    )


def _https(tls: TLSFiles, port: int) -> http.client.HTTPSConnection:
    context = ssl.create_default_context(cafile=str(tls.cert))
    return http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=context)


def test_a_non_loopback_address_with_tls_and_a_token_serves_https(tls_files: TLSFiles) -> None:
    with cli_server("--host", "0.0.0.0", "--tls-cert", str(tls_files.cert), "--tls-key", str(tls_files.key)) as served:
        assert served.url == f"https://0.0.0.0:{served.port}"
        conn = _https(tls_files, served.port)
        status, _, doc = exchange(served.addr, "POST", "/v1/data/access/allow", b"{}", connection=conn)
        assert (status, doc) == (200, {"result": False})
        status, _, doc = exchange(
            served.addr, "GET", "/v1/policies", token=None, connection=_https(tls_files, served.port)
        )
        assert (status, doc["code"]) == (401, "unauthorized")
        _, err = served.stop()
    assert err == ""


def test_tls_on_loopback_refuses_plain_http(tls_files: TLSFiles, library: list[PolicyFile]) -> None:
    with DataApi(library) as api, serving(create_app(routes(api), tokens=Tokens({"t": TOKEN})), tls=tls_files) as addr:
        assert exchange(addr, "GET", "/health", token=None, connection=_https(tls_files, addr[1]))[0] == 200
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            request(addr, "GET", "/health", token=None)  # plain HTTP to a TLS port
        with pytest.raises(ssl.SSLCertVerificationError):  # and a client that does not trust the certificate
            exchange(addr, "GET", "/health", connection=http.client.HTTPSConnection(*addr, timeout=5))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-cert", "cert.pem"], "--tls-cert and --tls-key go together: give both, or neither"),
        (["--tls-key", "key.pem"], "--tls-cert and --tls-key go together: give both, or neither"),
        (
            ["--tls-cert", "{missing}", "--tls-key", "{key}"],
            "cannot use the TLS certificate {missing} with the key {key}: No such file or directory",
        ),
        (
            ["--tls-cert", "{key}", "--tls-key", "{key}"],
            "cannot use the TLS certificate {key} with the key {key}: " + NOT_PEM,
        ),
        (
            ["--tls-cert", "{cert}", "--tls-key", "{cert}"],
            "cannot use the TLS certificate {cert} with the key {cert}: " + NOT_PEM,
        ),
    ],
    ids=["cert-alone", "key-alone", "missing-cert", "key-as-cert", "cert-as-key"],
)
def test_wrong_tls_files_are_one_line_errors(
    tls_files: TLSFiles, tmp_path: Path, args: list[str], message: str
) -> None:
    names = {"cert": str(tls_files.cert), "key": str(tls_files.key), "missing": str(tmp_path / "missing.pem")}
    given = [a.format(**names) for a in args]
    assert refused("--host", "0.0.0.0", *given) == "modelplane: " + message.format(**names)


def test_port_in_use_and_out_of_range_are_one_line_errors(taken_port: int) -> None:
    assert (
        refused("--port", str(taken_port))
        == f"modelplane: cannot listen on 127.0.0.1:{taken_port}: Address already in use"
    )
    assert refused("--port", "65536") == "modelplane: port 65536 is out of range (0-65535)"
    assert refused("--port", "-1") == "modelplane: port -1 is out of range (0-65535)"


def test_a_token_file_names_the_clients(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# clients\nalice {TOKEN}\nci ci-token-0123456789abcdef\n")
    tokens.chmod(0o644)
    assert refused("--token-file", str(tokens), token=None) == (
        f"modelplane: token file {tokens} has permissions 0644: it holds secrets and must not be open to group or "
        f"others (like an ssh key); run: chmod 600 {tokens}"
    )
    tokens.chmod(0o600)
    with cli_server("--token-file", str(tokens), env=cli_env(token=None)) as served:
        assert request(served.addr, "GET", "/v1/data/access/allow")[0] == 200
        assert request(served.addr, "GET", "/v1/data/access/allow", token="ci-token-0123456789abcdef")[0] == 200
        out, _ = served.stop()
    assert out == "clients with a token: alice, ci\n"
