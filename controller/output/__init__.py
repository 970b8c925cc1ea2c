"""Formatters: one module per output format, each ``render(report) -> str``.

Called by the CLI; they format, they decide nothing (the report owns the exit code).
A formatter's module is imported when it is first used, so a command pays only for
the format it prints (JUnit's XML library, say, only for ``--format junit``).
"""

from __future__ import annotations

from collections.abc import Callable

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: keep start-up light
if TYPE_CHECKING:
    from controller.api.findings import Report

_MODULES = {
    "text": "text",
    "json": "json_format",
    "sarif": "sarif",
    "junit": "junit",
    "github": "github",
    "markdown": "markdown",
}


def _formatter(module: str) -> Callable[[Report], str]:
    def render(report: Report) -> str:
        return str(__import__(f"{__name__}.{module}", fromlist=["render"]).render(report))

    render.__name__ = render.__qualname__ = f"render_{module}"
    return render


FORMATTERS: dict[str, Callable[[Report], str]] = {name: _formatter(module) for name, module in _MODULES.items()}

__all__ = ["FORMATTERS"]
