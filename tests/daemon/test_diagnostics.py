"""The server's side of `llorchctl doctor`, over a real manifest folder, this machine's NVML and
disks, and the engines as llorchd finds them."""

from __future__ import annotations

from pathlib import Path

import pytest

from llorch.daemon.diagnostics import Checkup
from llorch.resources import ServerConfig
from llorch.resources.diagnostics import Caller
from llorch.runtime.gpus import simulated_home_box
from llorch.store.manifests import ManifestStore
from tests.api.appctx import engine_binary

POOLS = """\
apiVersion: llorch.dev/v1
kind: Pool
metadata: {name: chat}
spec: {model: m, gpus: {count: 1}}
---
apiVersion: llorch.dev/v1
kind: Pool
metadata: {name: big}
spec: {model: m, engine: vllm}
---
apiVersion: llorch.dev/v1
kind: Pool
metadata: {name: elsewhere}
spec: {model: m, engine: tgi, gpus: {count: 1}, endpoint: {url: "http://127.0.0.1:9"}}
"""


@pytest.fixture
def checkup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Checkup:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no vllm here, whatever the machine has
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "pools.yaml").write_text(POOLS)
    store = ManifestStore(tmp_path / "manifests")
    store.load()
    return Checkup(
        config=ServerConfig,
        store=store,
        # The GPUs of the reference box, simulated: this machine may have none.
        inventory=simulated_home_box(),
        folders={"state": tmp_path / "state", "cache": tmp_path},
        engine_binary=engine_binary,
    )


def test_a_checkup_reports_engines_gpus_and_disks(checkup: Checkup, llama_server_bin: Path) -> None:
    found = checkup(Caller(identity="anonymous", scopes=["read"]))
    assert found.caller.identity == "anonymous"
    assert found.gpu_pools == ["chat"], "an endpoint pool runs elsewhere"
    assert [g.name for g in found.gpu.devices] == ["NVIDIA GeForce RTX 3090", "NVIDIA GeForce RTX 3060"]
    assert found.gpu.driver_version if found.gpu.nvml else found.gpu.error, "NVML's answer, or why none"
    engines = {e.engine: e for e in found.engines}
    llamacpp = engines["llamacpp"]
    assert llamacpp.pools == ["chat"] and llamacpp.backend == "cpu"
    assert llamacpp.binary == str(llama_server_bin) and llamacpp.version and llamacpp.error is None
    assert engines["vllm"].pools == ["big"] and "vllm is not installed here" in (engines["vllm"].error or "")
    assert engines["tgi"].pools == [] and engines["tgi"].error is None, "not needed here, not looked for"
    disks = {d.name: d for d in found.disks}
    assert disks["state"].path.endswith("state"), "a folder not made yet counts by its parent"
    assert 0 < disks["cache"].free_bytes <= disks["cache"].total_bytes
