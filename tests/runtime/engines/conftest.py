"""Fixtures for the engine wire tests: a replay server and an httpx client per test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.runtime.engines.replay import ReplayServer


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with ReplayServer() as replay:
        yield replay


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as http:
        yield http
