"""What a pool's Model does to it: a Retired one drains and stops its replicas (and Active again
starts them), one being downloaded leaves it Pending with the progress."""

from __future__ import annotations

import yaml

from llorch.controllers.conditions import set_condition
from llorch.resources.errors import ErrorCode
from llorch.resources.status import ModelStatus
from llorch.store.db import ModelRuntime
from tests.controllers.pool.conftest import MODEL, Harness


def set_lifecycle(harness: Harness, lifecycle: str) -> None:
    doc = {**MODEL, "spec": {**MODEL["spec"], "lifecycle": lifecycle}}
    (harness.folder / "model.yaml").write_text(yaml.safe_dump(doc))
    harness.store.load()


def test_a_retired_model_drains_its_pools_to_the_deadline_then_stops_them(harness: Harness) -> None:
    harness.pool()
    worker = harness.bring_up()
    lease = harness.registry.acquire("p")
    assert lease is not None
    harness.db.save_model_runtime(ModelRuntime("m", retire_deadline=harness.clock() + 30))
    set_lifecycle(harness, "Retired")
    assert harness.reconcile().requeue_after == 0.2
    assert harness.replica().phase == "Terminating" and worker.alive
    assert harness.status().blocked_by == "ModelRetired"
    harness.clock.advance(29)
    harness.reconcile()
    assert worker.alive and harness.evicted == [], "the running task has until the deadline"
    harness.clock.advance(2)
    assert harness.reconcile().requeue_after is None, "nothing left to watch until the model changes"
    ((_, error),) = harness.evicted
    assert error.code is ErrorCode.POOL_DRAINED
    assert not worker.alive and harness.status().replica_statuses == []
    status, reason = harness.condition("Ready")
    assert (status, reason) == ("False", "ModelRetired")
    assert "ModelRetired" in harness.reasons()

    set_lifecycle(harness, "Active")
    harness.reconcile()
    assert len(harness.processes.spawned) == 2, "back to Active starts a replica again"
    assert harness.status().blocked_by is None


def test_an_idle_replica_of_a_retired_model_stops_at_once(harness: Harness) -> None:
    harness.pool()
    worker = harness.bring_up()
    set_lifecycle(harness, "Retired")
    harness.reconcile()
    assert not worker.alive and harness.evicted == []


def test_a_pool_on_a_model_being_downloaded_is_pending_with_its_progress(harness: Harness) -> None:
    downloading = set_condition([], "Ready", False, "Downloading", "downloading 42%")
    harness.db.put_status(
        "Model/m", ModelStatus(downloaded_bytes=42, total_bytes=100, conditions=downloading)
    )
    harness.pool()
    assert harness.reconcile().requeue_after == 1.0
    status = harness.status()
    assert status.blocked_by == "Pending"
    ready = next(c for c in status.conditions if c.type == "Ready")
    assert ready.message == "downloading 42% of Model 'm'"
    assert harness.processes.spawned == []
    assert harness.events()[-1].type == "Normal", "waiting for a download is no trouble"
