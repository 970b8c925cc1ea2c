"""Errors that name the field at fault.

A check that spans fields (a ``model_validator``) is reported by pydantic at the
model it runs on: ``spec`` for a check on the whole spec. Raising
:func:`field_error` instead names the field below that model, e.g.
``field_error("gates", 1, "metric", message=...)`` in the spec's validator is
reported at ``spec.gates[1].metric``. :mod:`controller.loading.errors` turns
the path into the line and column where that field is written.
"""

from __future__ import annotations

from pydantic_core import PydanticCustomError

# The pydantic error type of a located error; its context carries the path.
LOCATED = "located_value_error"


def field_error(*path: str | int, message: str, at_key: bool = False) -> PydanticCustomError:
    """An error about the field at ``path`` (relative to the model whose validator
    raises it). ``at_key`` points at the field's key rather than its value (for a
    key that is itself the mistake, such as an unknown parameter name)."""
    return PydanticCustomError(LOCATED, "{message}", {"message": message, "path": path, "at_key": at_key})
