"""`llorchd provision`: the build the config names (or the flags), found in or built into the cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from llorch.daemon.main import main
from llorch.runtime import provision
from llorch.runtime.provision import LLAMA_CPP_PYTHON_VERSION


def test_the_default_build_is_found_in_the_cache(llama_server_bin: Path, demo_model: Path) -> None:
    result = CliRunner().invoke(main, ["provision", "--cache", str(llama_server_bin.parents[3])])
    assert result.exit_code == 0, result.output
    assert f"llama-server: {llama_server_bin} (" in result.output
    assert f"demo model: {demo_model}" in result.output


def test_cuda_without_nvcc_fails_with_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.delenv("CUDACXX", raising=False)
    monkeypatch.setattr(provision, "TOOLKIT_NVCC", tmp_path / "no-toolkit" / "nvcc")
    config = tmp_path / "llorch.yaml"
    config.write_text("engines: {llamacpp: {backend: cuda}}\n")
    result = CliRunner().invoke(main, ["provision", "--config", str(config), "--cache", str(tmp_path / "c")])
    assert result.exit_code == 1
    assert "the CUDA build of llama-server needs nvcc" in result.output
    assert not (tmp_path / "c" / "engines" / f"llama-server-{LLAMA_CPP_PYTHON_VERSION}-cuda").exists()
