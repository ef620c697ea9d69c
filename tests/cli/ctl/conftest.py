"""The llorchctl tests run against fake_llorchd, with no LLORCH_* settings from the environment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cli.ctl.fake_llorchd import FakeLlorchd, serve


@pytest.fixture
def fake_llorchd() -> Iterator[FakeLlorchd]:
    yield from serve()


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLORCH_URL", raising=False)
    monkeypatch.delenv("LLORCH_TOKEN", raising=False)
