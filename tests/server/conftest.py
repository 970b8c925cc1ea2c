"""Fixtures for server tests: the policy library, and the Data API served by uvicorn
on 127.0.0.1 (a free port), stopped after use, to the client ``tester`` holding
:data:`serverhttp.TOKEN`.

``server`` is one server for the whole session, for tests that change nothing (a
refused write changes nothing); it allows no writes. A test that writes policies or
data takes ``fresh_server``, its own, which allows both and records them in a store
of its own (``fresh_store``). Starting and stopping one costs ~0.4 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serverhttp import TOKEN

from controller.loading import load
from controller.policy.data_api import DataApi
from controller.policy.evaluate import Context, data_for
from controller.policy.sources import BUILTIN, PolicyFile, discover
from controller.server.app import create_app
from controller.server.auth import Tokens
from controller.server.data_api import routes
from controller.server.run import TLSFiles, serving
from controller.state.store import Store

TESTER = Tokens({"tester": TOKEN})


@pytest.fixture(scope="session")
def library() -> list[PolicyFile]:
    """The built-in library, with the ids ``policy serve`` gives them (``builtin/access.rego``)."""
    return discover(BUILTIN)


@pytest.fixture(scope="session")
def example_data() -> dict[str, Any]:
    return {"modelplane": data_for(load(["specs", "chaos"]).resources, Context())}


@pytest.fixture(scope="session")
def server(library: list[PolicyFile], example_data: dict[str, Any]) -> Iterator[tuple[str, int]]:
    """The Data API over the library and the example, shared: never write to it (it refuses)."""
    with DataApi(library, example_data) as api, serving(create_app(routes(api), tokens=TESTER)) as address:
        yield address


@pytest.fixture
def fresh_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "state")
    yield store
    store.close()


@pytest.fixture
def fresh_server(
    library: list[PolicyFile], example_data: dict[str, Any], fresh_store: Store
) -> Iterator[tuple[str, int]]:
    """The Data API over the library and the example, for this test alone, allowing
    policy and data writes (recorded in ``fresh_store``)."""
    group = routes(
        api := DataApi(library, example_data),
        fresh_store.policy_writes,
        allow_policy_writes=True,
        allow_data_writes=True,
    )
    with api, serving(create_app(group, tokens=TESTER)) as address:
        yield address


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A self-signed certificate for localhost and 127.0.0.1, with its key (chmod 600)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_file.chmod(0o600)
    return TLSFiles(cert_file, key_file)
