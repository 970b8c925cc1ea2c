"""Whether a server may start as asked: tokens, TLS, the address it exposes, writes.

Called by :mod:`controller.server.serve` between resolving the address and listening
on it, so a refusal comes before a socket is open. The rules:

- a token is required (``MODELPLANE_API_TOKEN`` or ``--token-file``), unless
  ``--insecure-no-auth`` is given, which is accepted only on a loopback address, never
  together with a token, and never with writes (policy or data writes need a named
  client for the audit log);
- an address that is not loopback (``0.0.0.0``, a LAN address) also needs TLS
  (``--tls-cert`` and ``--tls-key``), or ``--behind-tls-proxy``, which starts with a
  loud warning: the tokens cross the network in clear up to the proxy.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from controller.server.auth import TOKEN_ENV, Tokens, load_tokens
from controller.server.run import Address, ServerError, TLSFiles


def is_loopback(address: Address) -> bool:
    try:
        return ipaddress.ip_address(address.ip).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Guard:
    """The serve command's security flags, as given."""

    token_file: Path | None = None
    insecure_no_auth: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    behind_tls_proxy: bool = False
    allow_policy_writes: bool = False
    allow_data_writes: bool = False

    @property
    def write_flags(self) -> list[str]:
        """The write flags given, as typed."""
        given = (("--allow-policy-writes", self.allow_policy_writes), ("--allow-data-writes", self.allow_data_writes))
        return [flag for flag, on in given if on]


@dataclass(frozen=True)
class Cleared:
    """What a server that may start runs with, and what to warn its operator of."""

    tokens: Tokens | None
    tls: TLSFiles | None
    warnings: list[str] = field(default_factory=list)


def check(guard: Guard, address: Address, environ: Mapping[str, str] = os.environ) -> Cleared:
    """Clear ``guard`` for ``address``, or raise :class:`ServerError` saying what to change."""
    if (guard.tls_cert is None) != (guard.tls_key is None):
        raise ServerError("--tls-cert and --tls-key go together: give both, or neither")
    tls = None if guard.tls_cert is None or guard.tls_key is None else TLSFiles(guard.tls_cert, guard.tls_key)
    tokens = load_tokens(guard.token_file, environ)
    loopback = is_loopback(address)
    writes = guard.write_flags
    warnings: list[str] = []
    if guard.insecure_no_auth:
        if tokens is not None:
            source = "--token-file" if guard.token_file is not None else TOKEN_ENV
            raise ServerError(f"--insecure-no-auth and a token ({source}) contradict each other: drop one")
        if not loopback:
            raise ServerError(
                f"--insecure-no-auth is only accepted on a loopback address (127.0.0.1, ::1), not {address.host}"
            )
        if writes:
            raise ServerError(
                f"{writes[0]} needs a token: writes are never open to anyone "
                f"(drop --insecure-no-auth; set {TOKEN_ENV} or give --token-file FILE)"
            )
        warnings.append(
            f"WARNING: no authentication (--insecure-no-auth): every user and process on this host can "
            f"query {address.host}"
        )
    elif tokens is None:
        raise ServerError(
            f"no API token: set {TOKEN_ENV}, or give --token-file FILE ('NAME TOKEN' lines, chmod 600); "
            "--insecure-no-auth serves without one, on a loopback address only"
        )
    if not loopback and tls is None:
        if not guard.behind_tls_proxy:
            raise ServerError(
                f"{address.host} is not a loopback address: serving it needs TLS (--tls-cert FILE --tls-key FILE), "
                "or --behind-tls-proxy when a TLS proxy in front is the only way in"
            )
        warnings.append(
            f"WARNING: serving plain HTTP on {address.host} (--behind-tls-proxy): bearer tokens and decisions "
            "cross the network in clear unless the TLS proxy in front is the only way to reach this port"
        )
    if tls is not None:
        tls.check()
    return Cleared(tokens, tls, warnings)
