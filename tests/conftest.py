"""Fixtures shared by the whole suite: the real engine binary and demo model, built once and cached."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

from llorch.runtime.demo_model import ensure_demo_model
from llorch.runtime.provision import ensure_llama_server

REPO = Path(__file__).resolve().parent.parent

# Hypothesis fails an example that takes over 200 ms, a timing assertion in disguise: on a busy
# CI machine a pause in a pure function would fail the suite. Speed belongs in bench/.
settings.register_profile("llorch", deadline=None)
settings.load_profile("llorch")


@pytest.fixture(scope="session")
def llama_server_bin() -> Path:
    """The real llama-server (first use builds it from the llama-cpp-python sdist, ~5 min on 2 cores)."""
    return ensure_llama_server()


@pytest.fixture(scope="session")
def demo_model() -> Path:
    return ensure_demo_model()
