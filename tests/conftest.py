"""Fixtures shared by the whole suite: the real engine binary and demo model, built once and cached."""

from __future__ import annotations

from pathlib import Path

import pytest

from llorch.runtime.demo_model import ensure_demo_model
from llorch.runtime.provision import ensure_llama_server

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def llama_server_bin() -> Path:
    """The real llama-server (first use builds it from the llama-cpp-python sdist, ~5 min on 2 cores)."""
    return ensure_llama_server()


@pytest.fixture(scope="session")
def demo_model() -> Path:
    return ensure_demo_model()
