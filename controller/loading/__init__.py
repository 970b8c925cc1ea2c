"""YAML -> typed resources with source positions; schema and reference checks."""

from controller.loading.loader import (
    DEFAULT_PATHS,
    LoadedResource,
    LoadResult,
    UsageError,
    load,
    load_blobs,
    load_text,
)

__all__ = ["DEFAULT_PATHS", "LoadResult", "LoadedResource", "UsageError", "load", "load_blobs", "load_text"]
