"""Formatters: one module per output format, each ``render(report) -> str``.

Called by the CLI; they format, they decide nothing (the report owns the exit code).
"""

from collections.abc import Callable

from controller.api.findings import Report
from controller.output import github, json_format, junit, markdown, sarif, text

FORMATTERS: dict[str, Callable[[Report], str]] = {
    "text": text.render,
    "json": json_format.render,
    "sarif": sarif.render,
    "junit": junit.render,
    "github": github.render,
    "markdown": markdown.render,
}

__all__ = ["FORMATTERS"]
