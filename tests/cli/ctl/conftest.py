"""The llorchctl tests run against fake_llorchd, with no LLORCH_* settings from the environment
and a contexts file of their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.ctl.fake_llorchd import FakeLlorchd, serve


@pytest.fixture
def fake_llorchd() -> Iterator[FakeLlorchd]:
    yield from serve()


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LLORCH_URL", raising=False)
    monkeypatch.delenv("LLORCH_TOKEN", raising=False)
    monkeypatch.delenv("LLORCH_CONTEXT", raising=False)
    # Not the contexts of whoever runs the tests.
    monkeypatch.setenv("LLORCH_CONFIG", str(tmp_path / "llorch-contexts"))
