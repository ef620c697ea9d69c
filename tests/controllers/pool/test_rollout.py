"""Rolling updates with no process: the new revision next to the old, the old drained once the new
one is Ready, a new revision that never gets Ready abandoned with the old still serving."""

from __future__ import annotations

from tests.controllers.pool.conftest import Harness


def test_a_changed_spec_rolls_one_replica_next_to_the_old(harness: Harness) -> None:
    harness.pool()
    old = harness.bring_up()
    old_revision, old_id = harness.status().revision, harness.replica().id
    harness.pool(context=512)
    harness.reconcile()
    assert len(harness.processes.spawned) == 2 and old.alive, "surge: the new one starts next to the old"
    new = harness.processes.spawned[1]
    assert "--ctx-size" in new.argv and "1024" in new.argv
    assert harness.condition("Progressing") == ("True", "ReplicasChanging")
    assert [r.id for r in harness.registry.replicas("p")] == [old_id], "only the old one takes work yet"

    harness.make_healthy(new)
    harness.reconcile()
    assert not old.alive, "the old one drains once its successor is Ready"
    (replica,) = harness.status().replica_statuses
    assert replica.revision == harness.status().revision != old_revision
    assert harness.condition("Progressing") == ("False", "Stable")


def test_a_new_revision_that_never_gets_ready_is_abandoned_and_the_old_keeps_serving(
    harness: Harness,
) -> None:
    harness.pool(startupTimeoutSeconds=60)
    old = harness.bring_up()
    harness.pool(startupTimeoutSeconds=60, context=512)
    harness.reconcile()
    surge = harness.processes.spawned[1]
    harness.clock.advance(61)
    harness.reconcile()
    assert not surge.alive and old.alive
    failed = [e for e in harness.events() if e.reason == "RolloutFailed"]
    assert (
        failed
        and failed[0].type == "Warning"
        and "not ready within its 60s startup deadline" in failed[0].message
    )
    status = harness.status()
    assert status.rollout is not None and status.rollout.failed_revision == status.revision
    assert harness.condition("Degraded") == ("True", "RolloutFailed")
    assert harness.condition("Progressing") == ("False", "Stable")
    assert len(harness.registry.replicas("p")) == 1, "the old replica still takes work"

    for _ in range(3):
        harness.clock.advance(30)
        harness.reconcile()
    assert len(harness.processes.spawned) == 2, "the failed revision is not tried again"

    harness.pool(startupTimeoutSeconds=60, context=1024)
    harness.reconcile()
    assert len(harness.processes.spawned) == 3, "a new spec is a new revision: it is tried"


def test_a_surge_replica_that_crashes_before_ready_fails_the_rollout_without_a_crash_loop(
    harness: Harness,
) -> None:
    harness.pool()
    old = harness.bring_up()
    harness.pool(context=512)
    harness.reconcile()
    harness.processes.spawned[1].crash(code=2)
    harness.reconcile()
    assert old.alive and len(harness.processes.spawned) == 2
    assert harness.status().rollout is not None
    assert "exited with code 2 before it was ready" in harness.status().rollout.message  # type: ignore[union-attr]
