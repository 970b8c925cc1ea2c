"""Fixtures for server tests: the policy library, and the Data API served by uvicorn
on 127.0.0.1 (a free port), stopped after use.

``server`` is one server for the whole session, for tests that change nothing (a
refused write changes nothing); a test that writes policies or data takes
``fresh_server``, its own. Starting and stopping one costs ~0.4 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from controller.loading import load
from controller.policy.data_api import DataApi
from controller.policy.evaluate import Context, data_for
from controller.policy.sources import BUILTIN, PolicyFile, discover
from controller.server.app import create_app
from controller.server.data_api import routes
from controller.server.run import serving


@pytest.fixture(scope="session")
def library() -> list[PolicyFile]:
    return discover(BUILTIN)


@pytest.fixture(scope="session")
def example_data() -> dict[str, Any]:
    return {"modelplane": data_for(load(["specs", "chaos"]).resources, Context())}


def _serve(library: list[PolicyFile], data: dict[str, Any]) -> Iterator[tuple[str, int]]:
    with DataApi(library, data) as api, serving(create_app(routes(api))) as address:
        yield address


@pytest.fixture(scope="session")
def server(library: list[PolicyFile], example_data: dict[str, Any]) -> Iterator[tuple[str, int]]:
    """The Data API over the library and the example, shared: never write to it."""
    yield from _serve(library, example_data)


@pytest.fixture
def fresh_server(library: list[PolicyFile], example_data: dict[str, Any]) -> Iterator[tuple[str, int]]:
    """The Data API over the library and the example, for this test alone."""
    yield from _serve(library, example_data)
