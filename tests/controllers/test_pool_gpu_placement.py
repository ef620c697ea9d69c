"""The Pool controller placing real llama-server replicas on a SIMULATED 3090 + 3060 (no GPU here).

NVML cannot exist on this machine, so the inventory is `simulated_home_box()`, the named test
double. The llama-server processes are real: a CPU build ignores the GPU layers it is given, so
the launch (CUDA_VISIBLE_DEVICES, --tensor-split) is exercised end to end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from llorch.controllers.model import ModelController
from llorch.controllers.pool import PoolController
from llorch.resources import ServerConfig
from llorch.runtime.gpus import SimulatedInventory, simulated_home_box
from llorch.runtime.registry import ReplicaRegistry
from llorch.store.db import StateDB
from llorch.store.manifests import ManifestStore

pytestmark = [pytest.mark.engine, pytest.mark.slow]

GIB = 1024**3
MODEL = """\
apiVersion: llorch.dev/v1
kind: Model
metadata: {name: tiny-llama}
spec: {source: {builtin: tiny-llama}}
"""


def pool_yaml(name: str, *, vram_mib: int, count: int = 1, devices: str = "[]") -> str:
    return f"""\
apiVersion: llorch.dev/v1
kind: Pool
metadata: {{name: {name}}}
spec:
  model: tiny-llama
  slots: 1
  context: 256
  gpus: {{count: {count}, vramMiB: {vram_mib}, devices: {devices}}}
"""


@dataclass
class Box:
    folder: Path
    store: ManifestStore
    db: StateDB
    models: ModelController
    pools: PoolController
    inventory: SimulatedInventory

    def apply(self, filename: str, text: str) -> None:
        (self.folder / filename).write_text(text)
        self.store.load()

    def settle(self, *names: str, rounds: int = 60) -> None:
        """Reconcile until every named pool stops asking to be looked at again soon."""
        self.models.reconcile("tiny-llama")
        for _ in range(rounds):
            waits = [self.pools.reconcile(n).requeue_after for n in names]
            if all(w is None or w >= 1.0 for w in waits):
                return
            time.sleep(0.2)

    def status(self, name: str) -> dict[str, Any]:
        status = self.db.pool_status(name)
        assert status is not None
        return status.to_wire()


@pytest.fixture
def box(tmp_path: Path, llama_server_bin: Path, demo_model: Path) -> Iterator[Box]:
    folder = tmp_path / "manifests"
    folder.mkdir()
    store = ManifestStore(folder)
    db = StateDB(tmp_path / "state.sqlite")
    inventory = simulated_home_box()
    pools = PoolController(
        store=store,
        db=db,
        registry=ReplicaRegistry(),
        config=ServerConfig(),
        engine_binary=lambda engine: llama_server_bin,
        inventory=inventory,
        logs_dir=tmp_path / "logs",
        enqueue=lambda key: None,
    )
    result = Box(folder, store, db, ModelController(store, db, tmp_path / "cache"), pools, inventory)
    result.apply("model.yaml", MODEL)
    yield result
    pools.shutdown()


def env_of(pid: int) -> dict[str, str]:
    return dict(psutil.Process(pid).environ())


def test_pools_compete_for_the_3090_and_the_3060(box: Box) -> None:
    box.apply("big.yaml", pool_yaml("big", vram_mib=14 * 1024 + 512))
    box.settle("big")
    (big,) = box.status("big")["replicaStatuses"]
    assert big["phase"] == "Ready" and [g["index"] for g in big["gpus"]] == [0], (
        "the 3090 has the most free VRAM"
    )
    assert env_of(big["pid"])["CUDA_VISIBLE_DEVICES"] == "0"

    box.apply("second.yaml", pool_yaml("second", vram_mib=14 * 1024 + 512))
    box.settle("second")
    (second,) = box.status("second")["replicaStatuses"]
    assert second["phase"] == "Pending" and second["pid"] is None
    assert "GPU1 NVIDIA GeForce RTX 3060: 12.0 GiB free < 14.5 GiB needed" in second["reason"]
    assert "GPU0" in second["reason"], "every GPU is named with why it was rejected"
    degraded = next(c for c in box.status("second")["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "Unschedulable"
    assert "FailedScheduling" in [e.reason for e in box.db.events("Pool/second")]

    box.apply("small.yaml", pool_yaml("small", vram_mib=4096))
    box.settle("small")
    (small,) = box.status("small")["replicaStatuses"]
    assert [g["index"] for g in small["gpus"]] == [1], "9.5 GiB left on the 3090 < 12 GiB free on the 3060"

    (box.folder / "big.yaml").unlink()
    box.store.load()
    box.settle("big", "second")
    (second,) = box.status("second")["replicaStatuses"]
    assert second["phase"] == "Ready" and [g["index"] for g in second["gpus"]] == [0], (
        "it fits once capacity frees"
    )


def test_a_replica_split_across_both_gpus_gets_a_tensor_split(box: Box) -> None:
    box.apply("huge.yaml", pool_yaml("huge", vram_mib=30 * 1024, count=2))
    box.settle("huge")
    (huge,) = box.status("huge")["replicaStatuses"]
    assert huge["phase"] == "Ready" and [g["index"] for g in huge["gpus"]] == [0, 1]
    argv = psutil.Process(huge["pid"]).cmdline()
    assert argv[argv.index("--tensor-split") + 1] == "0.67,0.33"
    assert env_of(huge["pid"])["CUDA_VISIBLE_DEVICES"] == "0,1"


def test_pins_are_respected_and_an_unknown_pin_is_named(box: Box) -> None:
    box.apply("pinned.yaml", pool_yaml("pinned", vram_mib=2048, devices="[1]"))
    box.apply("ghost.yaml", pool_yaml("ghost", vram_mib=2048, devices="[7]"))
    box.settle("pinned", "ghost")
    (pinned,) = box.status("pinned")["replicaStatuses"]
    assert [g["index"] for g in pinned["gpus"]] == [1]
    (ghost,) = box.status("ghost")["replicaStatuses"]
    assert ghost["phase"] == "Pending" and "7" in ghost["reason"]


def test_another_program_taking_vram_is_seen(box: Box) -> None:
    box.inventory.set_used(0, 20 * GIB)
    box.apply("mid.yaml", pool_yaml("mid", vram_mib=8 * 1024))
    box.settle("mid")
    (mid,) = box.status("mid")["replicaStatuses"]
    assert [g["index"] for g in mid["gpus"]] == [1], "the 3090 has only 4 GiB free now"
    assert "GiB" in box.status("mid")["vramEstimate"]
