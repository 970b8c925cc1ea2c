"""The seam between modelplane and a Rego engine.

Two implementations: :class:`~controller.policy.embedded.EmbeddedEngine`
(regorus, in-process, the default) and :class:`~controller.policy.opa.OpaServerEngine`
(an OPA server over its REST API). Evaluation code only sees this protocol.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from controller.policy.sources import RuleInfo

# Seconds one decision (or one Data API query) may take before it is stopped and
# fails closed with policy-timeout.
DEFAULT_TIMEOUT = 5.0
# Megabytes one decision (or the Data API's engine process) may allocate before it is
# stopped and fails closed with policy-memory.
DEFAULT_MEMORY_MB = 4096


class EngineError(Exception):
    """The engine failed (crashed, unreachable, bad answer). Callers fail closed."""


class PolicyEngine(Protocol):
    name: str

    def rules(self) -> list[RuleInfo]:
        """Every rule the loaded policies define."""

    def set_data(self, data: dict[str, Any]) -> None:
        """Replace ``data.modelplane`` (the revision's resources and context)."""

    def decide(self, input_doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Every package's finding rules (``deny*``, ``warn*``, ``violation*``) and
        ``exception`` for ``input_doc``: package -> rule name -> JSON value (sets
        come back as lists, as in OPA's JSON)."""

    def query(self, path: str, input_doc: Any) -> Any:
        """The value at ``data.<path>`` for ``input_doc`` (None when undefined)."""


_BACKTRACE = re.compile(r"\n+Stack backtrace:.*", re.S)


def clean_error(exc: BaseException) -> str:
    """An engine's error text without the native stack trace regorus appends."""
    return _BACKTRACE.sub("", str(exc)).strip()
