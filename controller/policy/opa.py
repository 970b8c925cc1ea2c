"""An OPA server as the policy engine, through ``opa-python-client``.

For users who run OPA (or ``modelplane policy serve``): the revision's resources
are written to ``data.modelplane`` with the Data API, and each package is
queried with ``POST /v1/data/<package>``. The rule names come from the
policies the server reports (``GET /v1/policies``). Any failure raises
:class:`EngineError`, and the caller denies.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse

import regorus
import requests
from opa_client import OpaClient

from controller.policy.engine import EngineError, clean_error
from controller.policy.sources import RuleInfo, rules_from_ast


class OpaServerEngine:
    name = "opa"

    def __init__(self, url: str, *, timeout: float = 5.0, token: str | None = None) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise EngineError(f"invalid OPA URL '{url}': expected http(s)://host:port")
        self.url = url
        self._client = OpaClient(
            host=parsed.hostname,
            port=parsed.port or (443 if parsed.scheme == "https" else 8181),
            ssl=parsed.scheme == "https",
            timeout=timeout,
            token=token,
            retries=0,
        )
        self._rules: list[RuleInfo] | None = None

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except requests.RequestException as exc:
            raise EngineError(f"OPA at {self.url}: {what} failed: {exc}") from None
        except Exception as exc:  # opa_client raises its own exception types
            raise EngineError(f"OPA at {self.url}: {what} failed: {clean_error(exc)}") from None

    def rules(self) -> list[RuleInfo]:
        if self._rules is None:
            parser = regorus.Engine()
            for policy_id in self._call("listing policies", self._client.get_policies_list):
                answer = self._call(f"reading policy {policy_id}", self._client.get_policy, policy_id)
                raw = (answer.get("result") or {}).get("raw") if isinstance(answer, dict) else None
                if raw:
                    try:
                        parser.add_policy(policy_id, raw)
                    except RuntimeError as exc:
                        raise EngineError(f"OPA at {self.url}: policy {policy_id}: {clean_error(exc)}") from None
            self._rules = rules_from_ast(json.loads(parser.get_ast_as_json()))
            if not [r for r in self._rules if r.is_finding]:
                raise EngineError(f"OPA at {self.url} has no policies with deny/warn/violation rules")
        return list(self._rules)

    def set_data(self, data: dict[str, Any]) -> None:
        self._call("writing data.modelplane", self._client.update_or_create_data, data, "modelplane")

    def decide(self, input_doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """One ``POST /v1/data/<package>`` per package with finding rules."""
        by_package: dict[str, set[str]] = {}
        for r in self.rules():
            if r.is_finding or r.name == "exception":
                by_package.setdefault(r.package, set()).add(r.name)
        out = {}
        for package, names in sorted(by_package.items()):
            value = self.query(package.replace(".", "/"), input_doc)
            out[package] = {k: v for k, v in value.items() if k in names} if isinstance(value, dict) else {}
        return out

    def query(self, path: str, input_doc: Any) -> Any:
        answer = self._call(f"querying {path}", self._client.query_rule, input_doc, path.strip("/").replace("/", "."))
        if not isinstance(answer, dict):
            raise EngineError(f"OPA at {self.url}: unexpected answer for {path}")
        return answer.get("result")
