"""Autoscaled pools with no process: the decision rules on a fake clock, then the controller waking
an idle pool, growing it on queue depth, and letting it go idle again."""

from __future__ import annotations

import pytest

from llorch.controllers.pool.autoscale import Scale, decide
from llorch.resources import PoolSpec
from llorch.runtime.demand import Demand
from tests.controllers.pool.conftest import Harness

AUTO = {"min": 0, "max": 2, "idleSeconds": 600, "queuePerReplica": 2, "stabilizationSeconds": 60}
SPEC = PoolSpec.model_validate({"model": "m", "slots": 2, "autoscale": AUTO})


def at(desired: int, changed_at: float = 0.0, low_since: float | None = None) -> Scale:
    return Scale(desired, "", changed_at, low_since)


def test_a_task_waiting_for_an_idle_pool_activates_it() -> None:
    decision = decide(SPEC, at(0), Demand(queued=1), ready=0, present=0, now=10.0)
    assert (decision.scale.desired, decision.event) == (1, "Activating")
    assert decision.scale.reason == "Activating: 1 task(s) waiting for a replica"


def test_an_idle_pool_with_nothing_waiting_stays_at_zero() -> None:
    decision = decide(SPEC, at(0), Demand(), ready=0, present=0, now=10.0)
    assert (decision.scale.desired, decision.event, decision.scale_down_at) == (0, None, None)


@pytest.mark.parametrize(
    ("queued", "ready", "present", "grows"),
    [
        (5, 1, 1, True),  # 5 queued > 2 per ready replica
        (2, 1, 1, False),  # at the threshold, not over it
        (5, 0, 1, False),  # the replica is still starting: wait for it before adding another
    ],
)
def test_a_deep_queue_grows_the_pool_once_every_replica_is_ready(
    queued: int, ready: int, present: int, grows: bool
) -> None:
    decision = decide(SPEC, at(1), Demand(queued=queued, running=2), ready=ready, present=present, now=5.0)
    assert decision.scale.desired == (2 if grows else 1)
    assert decision.event == ("ScaledUp" if grows else None)


def test_never_beyond_max() -> None:
    decision = decide(SPEC, at(2), Demand(queued=50, running=4), ready=2, present=2, now=5.0)
    assert decision.scale.desired == 2 and decision.event is None


def test_after_idle_seconds_with_no_task_the_pool_goes_back_to_min() -> None:
    quiet = Demand(last_activity=100.0)
    early = decide(SPEC, at(1, changed_at=50.0), quiet, ready=1, present=1, now=699.0)
    assert early.scale.desired == 1 and early.scale_down_at == 700.0
    late = decide(SPEC, at(1, changed_at=50.0), quiet, ready=1, present=1, now=700.0)
    assert (late.scale.desired, late.event) == (0, "ScaledToZero")
    assert late.scale.reason == "ScaledToZero: no task for 600s"


def test_a_running_task_keeps_the_pool_awake_however_old_its_start() -> None:
    busy = Demand(running=1, last_activity=100.0)
    decision = decide(SPEC, at(1), busy, ready=1, present=1, now=10_000.0)
    assert decision.scale.desired == 1 and decision.scale_down_at is None


def test_a_pool_that_never_had_a_task_idles_from_when_it_last_changed() -> None:
    decision = decide(SPEC, at(1, changed_at=1000.0), Demand(), ready=1, present=1, now=1500.0)
    assert decision.scale.desired == 1 and decision.scale_down_at == 1600.0


def test_shrinking_waits_out_the_stabilization_window() -> None:
    low = Demand(running=1, last_activity=1000.0)
    first = decide(SPEC, at(2), low, ready=2, present=2, now=1000.0)
    assert first.scale.desired == 2 and first.scale.low_since == 1000.0
    burst = decide(SPEC, first.scale, Demand(queued=1, running=4), ready=2, present=2, now=1030.0)
    assert burst.scale.low_since is None, "demand came back: the window starts over"
    again = decide(SPEC, burst.scale, low, ready=2, present=2, now=1040.0)
    assert decide(SPEC, again.scale, low, ready=2, present=2, now=1099.0).scale.desired == 2
    done = decide(SPEC, again.scale, low, ready=2, present=2, now=1100.0)
    assert (done.scale.desired, done.event) == (1, "ScaledDown")


def test_the_count_is_clamped_when_the_range_changes() -> None:
    narrower = PoolSpec.model_validate({"model": "m", "autoscale": {**AUTO, "min": 1, "max": 1}})
    assert decide(narrower, at(2), Demand(running=1), ready=2, present=2, now=1.0).scale.desired == 1
    assert decide(narrower, at(0), Demand(), ready=0, present=0, now=1.0).scale.desired == 1


# -- the controller ----------------------------------------------------------------------------------


def test_an_idle_pool_admits_work_and_wakes_on_demand(harness: Harness) -> None:
    harness.pool("a", replicas=None, autoscale={"min": 0, "max": 1})
    harness.reconcile("a")
    status = harness.status("a")
    assert status.idle and status.replicas == 0 and harness.processes.spawned == []
    assert harness.condition("Ready", "a") == ("False", "Idle")
    assert "is idle: a task starts a replica" in (harness.registry.standby("a") or "")

    harness.demand["a"] = Demand(queued=1, last_activity=harness.clock())
    harness.reconcile("a")
    assert len(harness.processes.spawned) == 1
    assert "Activating" in harness.reasons("a")
    assert harness.status("a").desired_replicas == 1
    assert "is starting" in (harness.registry.standby("a") or ""), "tasks keep waiting while it loads"
    harness.make_healthy(harness.processes.spawned[0])
    harness.reconcile("a")
    assert harness.status("a").ready_replicas == 1 and not harness.status("a").idle


def test_an_active_pool_goes_idle_after_idle_seconds(harness: Harness) -> None:
    harness.pool("a", replicas=None, autoscale={"min": 0, "max": 1, "idleSeconds": 120})
    harness.demand["a"] = Demand(queued=1, last_activity=harness.clock())
    worker = harness.bring_up("a")
    harness.demand["a"] = Demand(last_activity=harness.clock())
    wait = harness.reconcile("a").requeue_after
    assert wait is not None and wait <= 5.0
    assert harness.status("a").scale_down_at is not None
    harness.clock.advance(119)
    harness.reconcile("a")
    assert worker.alive
    harness.clock.advance(1)
    harness.reconcile("a")
    assert not worker.alive and harness.status("a").idle
    assert "ScaledToZero" in harness.reasons("a")


def test_a_deep_queue_adds_a_replica_and_a_quiet_one_takes_it_away(harness: Harness) -> None:
    auto = {"min": 1, "max": 2, "queuePerReplica": 1, "stabilizationSeconds": 30}
    harness.pool("a", replicas=None, autoscale=auto)
    first = harness.bring_up("a")
    harness.demand["a"] = Demand(queued=3, running=2, last_activity=harness.clock())
    harness.reconcile("a")
    assert len(harness.processes.spawned) == 2 and "ScaledUp" in harness.reasons("a")
    second = harness.processes.spawned[1]
    harness.make_healthy(second)
    harness.reconcile("a")
    assert harness.status("a").ready_replicas == 2
    harness.demand["a"] = Demand(running=1, last_activity=harness.clock())
    harness.reconcile("a")
    harness.clock.advance(30)
    harness.reconcile("a")
    assert first.alive and not second.alive, "the highest index goes"
    assert harness.status("a").desired_replicas == 1 and "ScaledDown" in harness.reasons("a")
