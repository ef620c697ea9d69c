"""Workers an earlier llorchd left running, with no process: adopted when they run exactly what
their pool's spec would launch, stopped otherwise."""

from __future__ import annotations

from pathlib import Path

from llorch.runtime.process import command_hash
from llorch.store.db import WorkerRecord
from tests.controllers.pool.conftest import Harness


def record(harness: Harness, replica_id: str, pid: int, port: int, argv: list[str]) -> WorkerRecord:
    return WorkerRecord(
        replica_id=replica_id,
        pool="p",
        index=0,
        pid=pid,
        create_time=harness.clock() - 60,
        port=port,
        command_hash=command_hash(argv, {"CUDA_VISIBLE_DEVICES": ""}),
        log_path=str(Path(harness.folder.parent / "logs" / f"{replica_id}.log")),
        started_at=harness.clock() - 60,
    )


def test_a_matching_worker_is_adopted_without_a_restart(harness: Harness) -> None:
    harness.pool()
    # What the controller itself would launch on port 40123.
    argv = ["/opt/llama-server", "--model", str(harness.folder / "m.gguf"), "--port", "40123"]
    argv += ["--ctx-size", "512", "--parallel", "2"]
    kept = record(harness, "p-0-abcde", pid=777, port=40123, argv=argv)
    harness.db.save_worker(kept)
    harness.processes.running[777] = kept.create_time
    harness.controller.adopt_workers()
    assert harness.reasons() == ["Adopted"]
    harness.adapter.healthy_ports.add(40123)
    harness.reconcile()
    assert harness.processes.spawned == [], "adopted, not restarted"
    replica = harness.replica()
    assert (replica.id, replica.pid, replica.phase, replica.adopted) == ("p-0-abcde", 777, "Ready", True)
    assert [r.id for r in harness.registry.replicas("p")] == ["p-0-abcde"]


def test_a_worker_running_another_command_is_stopped_and_replaced(harness: Harness) -> None:
    harness.pool()
    stale = record(harness, "p-0-old00", pid=778, port=40124, argv=["/opt/llama-server", "--an-older-flag"])
    harness.db.save_worker(stale)
    harness.processes.running[778] = stale.create_time
    harness.controller.adopt_workers()
    assert harness.processes.orphans_stopped == [778]
    assert harness.db.workers() == []
    harness.reconcile()
    assert len(harness.processes.spawned) == 1, "its pool starts a replica of its own"


def test_a_recorded_worker_that_is_gone_is_forgotten(harness: Harness) -> None:
    harness.pool()
    harness.db.save_worker(record(harness, "p-0-gone0", pid=779, port=40125, argv=["x"]))
    harness.controller.adopt_workers()
    assert harness.db.workers() == [] and harness.processes.orphans_stopped == []
