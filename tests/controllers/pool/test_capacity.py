"""Memory reservations and eviction with no process: host memory that holds one replica of the
harness's model (about 69 MiB each) but not two, and two autoscaled pools wanting it."""

from __future__ import annotations

import pytest

from llorch.resources import ServerConfig
from llorch.runtime.demand import Demand
from tests.controllers.pool.conftest import FakeWorker, Harness

AUTO = {"min": 0, "max": 1}


@pytest.fixture
def config() -> ServerConfig:
    return ServerConfig.model_validate({"capacity": {"hostMemoryMiB": 100}})


def wake(harness: Harness, name: str) -> None:
    harness.demand[name] = Demand(queued=1, last_activity=harness.clock())


def up(harness: Harness, name: str, **spec: object) -> FakeWorker:
    harness.pool(name, replicas=None, autoscale=AUTO, **spec)
    wake(harness, name)
    worker = harness.bring_up(name)
    harness.demand[name] = Demand(last_activity=harness.clock())
    return worker


def test_each_replica_reserves_its_estimate_and_status_shows_it(harness: Harness) -> None:
    up(harness, "a")
    status = harness.status("a")
    assert status.memory_per_replica_mib == 69
    assert harness.replica("a").memory_bytes > 68 * 1024 * 1024
    assert harness.controller.capacity.host_free(harness.controller._all_replicas()[0][1]) == 100 * 1024**2


def test_an_activation_that_does_not_fit_evicts_the_least_recently_used_idle_replica(
    harness: Harness,
) -> None:
    a = up(harness, "a")
    harness.clock.advance(10)
    harness.pool("b", replicas=None, autoscale=AUTO)
    wake(harness, "b")
    harness.reconcile("b")
    assert len(harness.processes.spawned) == 1, "b waits for the memory a holds"
    pending = harness.replica("b")
    assert pending.phase == "Pending" and "evicted to make room" in (pending.reason or "")
    evicted = [e for e in harness.events("a") if e.reason == "Evicted"]
    assert evicted and "to make room for pool b" in evicted[0].message
    assert harness.registry.serving("a") == 0, "no new task lands on a replica being evicted"
    assert "Pool/a" in harness.enqueued

    harness.reconcile("a")
    assert not a.alive and harness.status("a").idle
    harness.reconcile("b")
    assert len(harness.processes.spawned) == 2
    harness.make_healthy(harness.processes.spawned[1])
    harness.reconcile("b")
    assert harness.status("b").ready_replicas == 1


def test_a_replica_running_a_task_is_never_evicted(harness: Harness) -> None:
    a = up(harness, "a")
    lease = harness.registry.acquire("a")
    assert lease is not None
    harness.pool("b", replicas=None, autoscale=AUTO)
    wake(harness, "b")
    harness.reconcile("b")
    reason = harness.replica("b").reason or ""
    assert (
        "nothing can be evicted" in reason
        and ": running a task)" in reason
        and "pool a replica a-0-" in reason
    )
    assert "is waiting" not in reason and a.alive
    assert "host memory: 31.8 MiB free of capacity.hostMemoryMiB 100.0 MiB < 68.2 MiB needed" in reason
    assert harness.registry.standby("b") == reason, "what b's tasks wait for, as the data plane hears it"

    harness.registry.release(lease)
    harness.reconcile("b")
    assert "evicted to make room" in (harness.replica("b").reason or ""), "once idle, it may go"


def test_a_higher_priority_pool_is_never_evicted_for_a_lower_one(harness: Harness) -> None:
    a = up(harness, "a", priority=10)
    harness.pool("b", replicas=None, autoscale=AUTO, priority=5)
    wake(harness, "b")
    harness.reconcile("b")
    assert "priority 10 > 5" in (harness.replica("b").reason or "") and a.alive


def test_the_higher_priority_pool_evicts_the_lower(harness: Harness) -> None:
    a = up(harness, "a", priority=0)
    harness.pool("b", replicas=None, autoscale=AUTO, priority=5)
    wake(harness, "b")
    harness.reconcile("b")
    harness.reconcile("a")
    assert not a.alive


def test_a_fixed_pool_and_one_at_its_min_are_never_evicted(harness: Harness) -> None:
    harness.pool("fixed")
    harness.bring_up("fixed")
    harness.pool("b", replicas=None, autoscale=AUTO)
    wake(harness, "b")
    harness.reconcile("b")
    assert "a fixed replica count" in (harness.replica("b").reason or "")


def test_a_pool_with_tasks_waiting_keeps_its_replica(harness: Harness) -> None:
    up(harness, "a")
    harness.demand["a"] = Demand(queued=2, last_activity=harness.clock())
    harness.pool("b", replicas=None, autoscale=AUTO)
    wake(harness, "b")
    harness.reconcile("b")
    assert "tasks are waiting for it" in (harness.replica("b").reason or "")


def test_of_two_idle_replicas_the_least_recently_used_goes(harness: Harness) -> None:
    harness.controller.capacity.host_bytes = 150 * 1024**2
    a = up(harness, "a")
    harness.clock.advance(5)
    b = up(harness, "b")
    lease = harness.registry.acquire("b")
    assert lease is not None
    harness.registry.release(lease)  # b was used after a
    harness.pool("c", replicas=None, autoscale=AUTO)
    wake(harness, "c")
    harness.reconcile("c")
    harness.reconcile("a")
    harness.reconcile("b")
    assert not a.alive and b.alive
