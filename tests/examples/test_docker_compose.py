"""examples/docker-compose: no Docker daemon runs here, so the compose file is validated by
docker-compose itself (its `config` reads and checks the file without a daemon) and the files are
checked for what they must say."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from llorch.resources import ServerConfig

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "docker-compose"


def service() -> dict[str, Any]:
    compose = yaml.safe_load((EXAMPLE / "compose.yaml").read_text())
    assert set(compose["services"]) == {"llorchd"} and set(compose["volumes"]) == {"state", "cache"}
    found: dict[str, Any] = compose["services"]["llorchd"]
    return found


def test_it_publishes_loopback_only_and_needs_a_token() -> None:
    llorchd = service()
    assert llorchd["ports"] == ["127.0.0.1:8080:8080"]
    assert llorchd["environment"]["LLORCH_TOKENS"].startswith("${LLORCH_TOKEN:?")
    config = ServerConfig.model_validate(yaml.safe_load((EXAMPLE / "llorch.yaml").read_text()))
    assert config.bind == "0.0.0.0:8080" and config.auth.token_env == "LLORCH_TOKENS"
    assert config.engines.llamacpp.backend == "cuda"


def test_the_mounts_are_where_the_settings_point() -> None:
    llorchd = service()
    config = ServerConfig.model_validate(yaml.safe_load((EXAMPLE / "llorch.yaml").read_text()))
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in llorchd["volumes"]}
    assert mounts["/etc/llorch/llorch.yaml"] == "./llorch.yaml"
    assert mounts[config.manifests_dir] == "./manifests" and (EXAMPLE / "manifests").is_dir()
    assert mounts[str(config.state_dir)] == "state" and mounts[str(config.cache_dir)] == "cache"
    entrypoint = next(
        line for line in (EXAMPLE / "Dockerfile").read_text().splitlines() if line.startswith("ENTRYPOINT")
    )
    assert '"--config", "/etc/llorch/llorch.yaml"' in entrypoint


def test_it_reserves_the_gpus_and_stops_gracefully() -> None:
    llorchd = service()
    devices = llorchd["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert llorchd["init"] is True and llorchd["stop_signal"] == "SIGTERM"
    assert "provision --cuda" in (EXAMPLE / "Dockerfile").read_text()


def test_docker_compose_validates_it_and_wants_the_token() -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose is not installed here (Debian: docker-compose)")
    command = [tool, "-f", str(EXAMPLE / "compose.yaml"), "config", "--quiet"]
    env = {k: v for k, v in os.environ.items() if k != "LLORCH_TOKEN"}
    valid = subprocess.run(
        command, capture_output=True, text=True, env={**env, "LLORCH_TOKEN": "t"}, timeout=60
    )
    assert (valid.returncode, valid.stderr) == (0, "")
    refused = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert refused.returncode != 0 and "set LLORCH_TOKEN" in refused.stderr
