"""What one locally served InferenceService runs: its variants, callers and access data.

Written by :mod:`.local` (the deployer) as ``config.json`` in the service's serving
directory, read by its supervisor (:mod:`.supervisor`) and, through standard input,
by each model server replica (:mod:`.modelserver`). It holds no secret: callers are
kept as the SHA-256 digests of their tokens.

A service has one ``stable`` variant, at most one ``canary`` (which takes ``weight``
percent of the calls; stable takes the rest) and at most one ``shadow`` (which sees a
copy of ``weight`` percent of the calls; its answers are dropped).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_CONFIG_BYTES = 4 << 20
ROLES = ("stable", "canary", "shadow")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class ConfigError(ValueError):
    """A serving configuration that is not one: the message says what is wrong."""


@dataclass(frozen=True)
class Variant:
    role: str  # stable, canary or shadow
    model: str
    version: int
    digest: str  # the artifact's: verified before it is loaded
    weight: float = 100.0  # canary: share of calls; shadow: share mirrored; stable: the rest

    def internal_name(self, service: str) -> str:
        """The name KServe knows it by: the service's own for stable (so KServe's metadata
        and readiness answers name the service), ``SERVICE--ROLE`` for the others, which
        callers cannot use (the gateway refuses every name but the service's)."""
        return service if self.role == "stable" else f"{service}--{self.role}"


@dataclass(frozen=True)
class Caller:
    name: str
    token_sha256: str  # hex
    groups: tuple[str, ...]


@dataclass(frozen=True)
class ServiceConfig:
    service: str
    environment: str
    artifacts: str  # the artifact store's absolute path
    variants: tuple[Variant, ...]
    callers: tuple[Caller, ...] = ()
    # data.modelplane for the access policy: the service, its model and the model's dataset
    access_data: dict[str, Any] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 0
    replicas: int = 1
    idle_seconds: float | None = None  # scale to zero: a replica idle this long stops
    generation: int = 1  # raised by every change: the supervisor reports the one it runs

    def variant(self, role: str) -> Variant | None:
        return next((v for v in self.variants if v.role == role), None)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=1) + "\n"


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _variant(raw: Any) -> Variant:
    _require(isinstance(raw, dict), "every variant must be an object")
    role, model, version, digest, weight = (raw.get(k) for k in ("role", "model", "version", "digest", "weight"))
    _require(role in ROLES, f"a variant's 'role' must be one of {', '.join(ROLES)}, not {role!r}")
    _require(isinstance(model, str) and bool(_NAME.match(model)), f"the {role} variant needs a model name")
    _require(
        _integer(version) and version >= 1,
        f"the {role} variant needs a version number",
    )
    _require(isinstance(digest, str) and bool(_DIGEST.match(digest)), f"the {role} variant needs a sha256 digest")
    _require(_number(weight) and 0 <= weight <= 100, f"the {role} variant's weight must be a percentage")
    return Variant(role, model, version, digest, float(weight))


def _caller(raw: Any) -> Caller:
    _require(isinstance(raw, dict), "every caller must be an object")
    name, digest, groups = raw.get("name"), raw.get("token_sha256"), raw.get("groups")
    _require(isinstance(name, str) and bool(name), "every caller needs a name")
    _require(isinstance(digest, str) and bool(_HEX64.match(digest)), f"caller {name} needs a token digest")
    _require(
        isinstance(groups, list) and all(isinstance(g, str) and g for g in groups),
        f"caller {name}'s groups must be a list of names",
    )
    return Caller(name, digest, tuple(groups))


def parse(text: str) -> ServiceConfig:
    """The configuration in ``text``, checked; :class:`ConfigError` says what is wrong."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"the serving configuration is not JSON: {exc}") from None
    _require(isinstance(raw, dict), "the serving configuration must be a JSON object")
    service, environment, artifacts = raw.get("service"), raw.get("environment"), raw.get("artifacts")
    _require(isinstance(service, str) and bool(_NAME.match(service)), "'service' must be a service name")
    _require(isinstance(environment, str) and bool(environment), "'environment' must be named")
    _require(isinstance(artifacts, str) and os.path.isabs(artifacts), "'artifacts' must be an absolute path")
    host, port, replicas, idle, generation = (
        raw.get(k, d)
        for k, d in (("host", "127.0.0.1"), ("port", 0), ("replicas", 1), ("idle_seconds", None), ("generation", 1))
    )
    _require(isinstance(host, str) and bool(host), "'host' must be a host name or address")
    _require(isinstance(port, int) and not isinstance(port, bool) and 0 <= port <= 65535, "'port' must be a port")
    _require(
        isinstance(replicas, int) and not isinstance(replicas, bool) and 1 <= replicas <= 64,
        "'replicas' must be 1 to 64",
    )
    _require(idle is None or (_number(idle) and idle > 0), "'idle_seconds' must be a positive number or null")
    _require(_integer(generation), "'generation' must be a number")
    raw_variants = raw.get("variants")
    _require(isinstance(raw_variants, list) and bool(raw_variants), "'variants' must list at least the stable one")
    variants = tuple(_variant(v) for v in raw_variants)
    roles = [v.role for v in variants]
    _require(roles.count("stable") == 1, "exactly one variant must be 'stable'")
    _require(len(set(roles)) == len(roles), "each role may appear once")
    callers = tuple(_caller(c) for c in raw.get("callers", []) or [])
    _require(len({c.name for c in callers}) == len(callers), "caller names must be unique")
    access_data = raw.get("access_data", {})
    _require(isinstance(access_data, dict), "'access_data' must be an object")
    return ServiceConfig(
        service, environment, artifacts, variants, callers, access_data, host, port, replicas,
        float(idle) if idle is not None else None, generation,
    )  # fmt: skip


def read(path: os.PathLike[str] | str) -> ServiceConfig:
    with open(path, encoding="utf-8") as handle:
        return parse(handle.read(MAX_CONFIG_BYTES))
