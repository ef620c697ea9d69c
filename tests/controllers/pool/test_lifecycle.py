"""One replica's state machine, driven by reconciles with no process (FakeProcesses, FakeAdapter,
FakeClock: see conftest.py)."""

from __future__ import annotations

from prometheus_client import generate_latest

from llorch.resources.errors import ErrorCode
from llorch.store.db import PoolRuntime
from tests.controllers.pool.conftest import Harness


def test_a_replica_is_spawned_probed_and_registered_once_ready(harness: Harness) -> None:
    harness.pool(slots=3)
    assert harness.reconcile().requeue_after == 0.2
    (worker,) = harness.processes.spawned
    assert harness.replica().phase == "Starting" and harness.replica().pid == worker.pid
    assert harness.registry.replicas("p") == [], "not registered before its startup probe passes"
    assert harness.reconcile().requeue_after == 0.2, "still loading: probe again soon"

    harness.make_healthy(worker)
    assert harness.reconcile().requeue_after == 5.0, "Ready: the liveness period"
    (replica,) = harness.registry.replicas("p")
    assert (replica.slots, replica.pool) == (3, "p")
    status = harness.status()
    assert (status.ready_replicas, status.slots_total) == (1, 3)
    assert harness.condition("Ready") == ("True", "AllReplicasReady")
    assert harness.condition("Degraded") == ("False", "Healthy")
    assert harness.reasons() == ["Scheduled", "Started", "Ready"]
    assert harness.db.workers()[0].pid == worker.pid, "recorded for a later llorchd to adopt"


def test_restarts_back_off_0_10_20_up_to_300_seconds_and_reset_after_ten_healthy_minutes(
    harness: Harness,
) -> None:
    harness.pool()
    harness.bring_up()
    delays = []
    for _ in range(8):
        harness.processes.spawned[-1].crash()
        spawned = len(harness.processes.spawned)
        wait = harness.reconcile().requeue_after
        assert wait is not None
        if len(harness.processes.spawned) > spawned:
            delays.append(0.0)  # restarted in the same reconcile
        else:
            assert harness.replica().phase == "BackOff"
            delays.append(wait)
            harness.clock.advance(wait - 0.01)
            harness.reconcile()
            assert len(harness.processes.spawned) == spawned, "not a moment before the delay"
            harness.clock.advance(0.01)
            harness.reconcile()
            assert len(harness.processes.spawned) == spawned + 1
    assert delays == [0.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0]
    assert harness.replica().restarts == 8

    harness.make_healthy(harness.processes.spawned[-1])
    harness.reconcile()
    harness.clock.advance(601)
    harness.reconcile()
    harness.processes.spawned[-1].crash()
    spawned = len(harness.processes.spawned)
    harness.reconcile()
    assert len(harness.processes.spawned) == spawned + 1, "ten healthy minutes reset the backoff"
    assert harness.replica().restarts == 1
    restarts = generate_latest(harness.metrics.registry).decode()
    assert 'llorch_replica_restarts_total{pool_id="p"} 9.0' in restarts, "the counter never resets"
    backoff = [e for e in harness.events() if e.reason == "BackOff"][-1]
    assert "restart 1 in 0s" in backoff.message


def test_a_spawn_that_raises_writes_status_and_a_warning_and_is_retried_on_the_backoff(
    harness: Harness,
) -> None:
    harness.pool()
    harness.processes.fail_spawns = 2
    assert harness.reconcile().requeue_after == 0.0, "the first restart is immediate"
    replica = harness.replica()
    assert replica.phase == "BackOff" and replica.pid is None
    assert replica.last_error is not None and "Cannot allocate memory" in replica.last_error
    failed = [e for e in harness.events() if e.reason == "FailedStart"]
    assert failed and failed[0].type == "Warning" and "Cannot allocate memory" in failed[0].message
    assert harness.condition("Degraded") == ("True", "CrashLoopBackOff")

    assert harness.reconcile().requeue_after == 10.0, "the second failure waits the backoff"
    harness.clock.advance(10)
    harness.reconcile()
    (worker,) = harness.processes.spawned
    harness.make_healthy(worker)
    harness.reconcile()
    assert harness.replica().phase == "Ready"


def test_a_replica_that_fails_three_health_checks_is_restarted(harness: Harness) -> None:
    harness.pool()
    worker = harness.bring_up()
    harness.adapter.healthy_ports.clear()
    assert harness.reconcile().requeue_after == 1.0
    assert harness.reconcile().requeue_after == 1.0
    harness.reconcile()
    assert worker.stops == 1 and not worker.alive
    assert harness.replica().last_error == "failed 3 health checks in a row"
    assert "replica p-0-" in harness.events()[-2].message and "restarting" in harness.events()[-2].message
    assert harness.registry.replicas("p") == []


def test_a_replica_that_misses_its_startup_deadline_is_restarted(harness: Harness) -> None:
    harness.pool(startupTimeoutSeconds=30)
    harness.reconcile()
    harness.clock.advance(31)
    harness.reconcile()
    assert harness.processes.spawned[0].stops == 1
    assert harness.replica().last_error == "not ready after 30s"


def test_a_replica_the_data_plane_found_hung_is_restarted(harness: Harness) -> None:
    harness.pool()
    worker = harness.bring_up()
    (replica,) = harness.registry.replicas("p")
    harness.registry.mark_unhealthy(replica.id, "sent nothing for 120s mid-stream")
    assert harness.enqueued == ["Pool/p"], "the pool is looked at at once"
    harness.reconcile()
    assert worker.stops == 1
    assert harness.replica().last_error == "sent nothing for 120s mid-stream"
    assert harness.reconcile().requeue_after == 0.2
    assert len(harness.processes.spawned) == 2, "its first restart is immediate"


def test_drain_lets_running_tasks_finish_until_the_deadline_then_ends_them(harness: Harness) -> None:
    harness.pool()
    worker = harness.bring_up()
    lease = harness.registry.acquire("p")
    assert lease is not None
    harness.db.save_pool_runtime(PoolRuntime("p", draining=True, drain_deadline=harness.clock() + 30))
    assert harness.reconcile().requeue_after == 0.2
    assert harness.replica().phase == "Terminating" and worker.alive
    harness.clock.advance(29)
    harness.reconcile()
    assert worker.alive and harness.evicted == [], "a running task keeps its replica until the deadline"
    harness.clock.advance(2)
    assert harness.reconcile().requeue_after is None
    ((replica_id, error),) = harness.evicted
    assert error.code is ErrorCode.POOL_DRAINED and replica_id.startswith("p-0-")
    assert not worker.alive and harness.status().replica_statuses == []
    assert harness.condition("Ready") == ("False", "Drained")


def test_a_drained_idle_replica_stops_at_once(harness: Harness) -> None:
    harness.pool()
    worker = harness.bring_up()
    harness.db.save_pool_runtime(PoolRuntime("p", draining=True, drain_deadline=harness.clock() + 30))
    harness.reconcile()
    assert not worker.alive and harness.evicted == []
    assert "Drained" in harness.reasons()


def test_a_deleted_pool_stops_its_replicas_and_forgets_its_status(harness: Harness) -> None:
    harness.pool()
    worker = harness.bring_up()
    harness.delete()
    assert harness.reconcile().requeue_after is None
    assert not worker.alive and harness.db.pool_status("p") is None
    assert list(harness.controller.known_names()) == []


def test_scaling_down_drains_the_highest_indexes(harness: Harness) -> None:
    harness.pool(replicas=2)
    harness.reconcile()
    for worker in harness.processes.spawned:
        harness.make_healthy(worker)
    harness.reconcile()
    assert harness.status().ready_replicas == 2
    harness.pool(replicas=1)
    harness.reconcile()
    first, second = harness.processes.spawned
    assert first.alive and not second.alive
    assert [r.index for r in harness.status().replica_statuses] == [0]
