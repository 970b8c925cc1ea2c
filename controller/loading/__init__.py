"""YAML -> resources with source positions; schema and reference validation.

Called by the CLI (validate, audit, plan, policy), the engine (a revision's
resources) and the policy layer (the loaded resources it judges).
"""

from controller.loading.loader import (
    DEFAULT_PATHS,
    DataNotKept,
    Keep,
    LoadedResource,
    LoadResult,
    UsageError,
    load,
    load_blobs,
    load_text,
)

__all__ = [
    "DEFAULT_PATHS",
    "DataNotKept",
    "Keep",
    "LoadResult",
    "LoadedResource",
    "UsageError",
    "load",
    "load_blobs",
    "load_text",
]
