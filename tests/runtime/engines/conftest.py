"""Fixtures for the engine wire tests: a replay server, an httpx client, and each engine's wire in turn."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.runtime.engines.replay import ReplayServer
from tests.runtime.engines.wires import WIRES, Wire


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with ReplayServer() as replay:
        yield replay


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as http:
        yield http


@pytest.fixture(params=WIRES, ids=lambda w: w.engine)
def wire(request: pytest.FixtureRequest) -> Wire:
    """Each engine in turn, for a test every engine passes the same way."""
    assert isinstance(request.param, Wire)
    return request.param
