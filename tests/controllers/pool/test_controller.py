"""The pool-level reconcile with no process: what blocks a pool never tears down what serves."""

from __future__ import annotations

from tests.controllers.pool.conftest import Harness


def test_a_pool_whose_model_disappears_keeps_its_replica_and_says_why(harness: Harness) -> None:
    harness.pool()
    worker = harness.bring_up()
    (harness.folder / "model.yaml").unlink()
    harness.store.load()
    assert harness.reconcile().requeue_after == 5.0
    assert worker.alive and len(harness.registry.replicas("p")) == 1
    status = harness.status()
    assert status.blocked_by == "ModelNotFound"
    assert harness.condition("Degraded") == ("True", "ModelNotFound")
    assert harness.events()[-1].type == "Warning"
    harness.reconcile()
    assert harness.reasons().count("ModelNotFound") == 1, "one event per cause, not per reconcile"


def test_a_spec_that_cannot_become_a_command_line_is_blocked_until_edited(harness: Harness) -> None:
    harness.pool(gpus={"count": 1}, engineArgs=["--cache-type-k", "q9_bogus"])
    assert harness.reconcile().requeue_after is None, "only an edit can help"
    assert harness.status().blocked_by == "InvalidSpec"
    assert "q9_bogus" in harness.events()[-1].message
    assert harness.processes.spawned == []


def test_status_times_are_rfc3339(harness: Harness) -> None:
    harness.pool()
    harness.bring_up()
    wire = harness.status().to_wire()
    assert wire["conditions"][0]["lastTransitionTime"].endswith("Z")
    assert wire["replicaStatuses"][0]["startedAt"].endswith("Z")
    assert wire["replicaStatuses"][0]["readyAt"].endswith("Z")


def test_reconciling_twice_changes_nothing_the_second_time(harness: Harness) -> None:
    harness.pool()
    harness.bring_up()
    before = (harness.status(), len(harness.events()), len(harness.processes.spawned))
    harness.reconcile()
    assert (harness.status(), len(harness.events()), len(harness.processes.spawned)) == before
