"""`llorchctl doctor` and `llorchctl version` against a real llorchd that wants a key."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from llorch.resources.version import package_version
from tests.e2e.conftest import BIN, TEST_CONFIG, Llorchd, start_llorchd, stop_llorchd

KEY = "llorch_e2e-doctor-key"


@pytest.fixture
def keyed(tmp_path: Path, llama_server_bin: Path) -> Iterator[Llorchd]:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    key = {"name": "laptop", "sha256": hashlib.sha256(KEY.encode()).hexdigest(), "scopes": ["read", "submit"]}
    daemon = start_llorchd(tmp_path, manifests, tmp_path / "state", {**TEST_CONFIG, "auth": {"keys": [key]}})
    yield daemon
    stop_llorchd(daemon)


def ctl(daemon: Llorchd, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLORCH_")}
    if token:
        env["LLORCH_TOKEN"] = token
    command = [str(BIN / "llorchctl"), "--server", daemon.url, *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)


def test_doctor_without_the_token_says_how_to_give_one(keyed: Llorchd) -> None:
    done = ctl(keyed, "doctor")
    assert done.returncode == 1, done.stdout
    lines = done.stdout.splitlines()
    assert lines[0].startswith("ok    server") and lines[1].startswith("ok    versions")
    token = next(i for i, line in enumerate(lines) if line.startswith("FAIL  token"))
    assert "needs a token and none was sent" in lines[token] and "--token-file" in lines[token + 1]
    assert [line.split()[:2] for line in lines[token + 2 :]] == [
        ["skip", "gpu"],
        ["skip", "engines"],
        ["skip", "disk"],
    ]


def test_doctor_with_the_token_checks_the_server_machine(keyed: Llorchd, llama_server_bin: Path) -> None:
    done = ctl(keyed, "doctor", "-o", "json", token=KEY)
    assert done.returncode == 0, done.stdout
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["token"]["detail"] == "token:laptop, scopes read, submit"
    assert checks["engine llamacpp"]["status"] == "ok"
    assert str(llama_server_bin) in checks["engine llamacpp"]["detail"]
    # This machine's own NVML: a GPU box reports its GPUs, one without says why none.
    assert checks["gpu"]["status"] in ("ok", "warn")
    assert checks["disk"]["status"] == "ok", "the last disk: the cache"


def test_version_shows_both_sides_without_a_token(keyed: Llorchd) -> None:
    done = ctl(keyed, "version")
    assert done.returncode == 0, done.stderr
    client, server = done.stdout.splitlines()
    assert client == f"Client Version: {package_version()} (API llorch.dev/v1)"
    assert server.startswith(f"Server Version: {package_version()} (API llorch.dev/v1, ")
