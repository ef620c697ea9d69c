"""One replica's life, one step per reconcile: place on GPUs, spawn, wait for the startup probe,
register with the dispatcher, watch liveness, restart after a crash with backoff (like kubelet's
CrashLoopBackOff), drain and stop.

Everything it touches is handed in (`LifecycleDeps`): processes, the engine adapter, the clock,
ports, the GPU inventory. So a reconcile can be driven in tests with no process and no engine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import httpx

from llorch.controllers.errors import ControllerError
from llorch.controllers.pool.capacity import Capacity
from llorch.controllers.pool.replica import ReplicaState
from llorch.controllers.pool.target import Target, loopback
from llorch.resources import PoolSpec
from llorch.resources.config import Supervision
from llorch.resources.errors import ErrorCode
from llorch.runtime.engines.base import GpuAssignment
from llorch.runtime.errors import ProcessError
from llorch.runtime.gpus import Gpu, GpuInventory
from llorch.runtime.placement import Unschedulable
from llorch.runtime.process import Processes, Worker, command_hash, tail
from llorch.runtime.registry import Replica, ReplicaRegistry
from llorch.runtime.vram import format_bytes
from llorch.store.db import StateDB, WorkerRecord

log = logging.getLogger("llorch.controllers")

STARTING_PROBE_SECONDS = 0.2
LIVENESS_PERIOD_SECONDS = 5.0
LIVENESS_FAILURES = 3
UNSCHEDULABLE_RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class LifecycleDeps:
    db: StateDB
    registry: ReplicaRegistry
    processes: Processes
    supervision: Supervision
    inventory: GpuInventory
    capacity: Capacity
    http: httpx.Client
    logs_dir: Path
    clock: Callable[[], float]
    free_port: Callable[[], int]
    # A process exited: reconcile its pool now rather than at the next resync.
    on_exit: Callable[[str], Callable[[Worker], None]]
    # Memory was freed: pools with Pending replicas may fit now.
    on_capacity_freed: Callable[[], None]
    events: PoolEvents


class PoolEvents(Protocol):
    """What the controller reports as it acts, for metrics."""

    def placement(self, placed: bool, pinned: bool) -> None: ...

    def activation(self, pool: str) -> None: ...

    def eviction(self, pool: str, reason: str) -> None: ...

    def cold_start(self, pool: str, seconds: float) -> None: ...

    def restart(self, pool: str) -> None: ...


class NoEvents:
    """For a controller run without metrics."""

    def placement(self, placed: bool, pinned: bool) -> None:
        pass

    def activation(self, pool: str) -> None:
        pass

    def eviction(self, pool: str, reason: str) -> None:
        pass

    def cold_start(self, pool: str, seconds: float) -> None:
        pass

    def restart(self, pool: str) -> None:
        pass


class Lifecycle:
    def __init__(self, deps: LifecycleDeps) -> None:
        self._d = deps

    # -- one step --------------------------------------------------------------------------------

    def step(self, key: str, pool: str, state: ReplicaState, *, surge: bool, target: Target | None) -> float:
        """Move one replica one step; returns how soon to look at it again.

        A surge replica (the new revision of a rolling update) that crashes or misses its startup
        deadline before it was ever Ready fails the rollout (`state.rollout_failure`) instead of
        crash-looping.
        """
        if state.template is None:
            return self._step_endpoint(key, pool, state)
        now = self._d.clock()
        worker = state.worker
        if worker is not None and not worker.alive and not worker.stopping:
            if surge and not state.ever_ready:
                state.rollout_failure = f"{worker.exit_reason()} before it was ready"
                state.log_tail = tail(worker.log_path)
                return 0.0
            self.crashed(key, state, worker.exit_reason(), now)
            worker = None
        if worker is None:
            if now < state.next_start_at:
                state.phase = "BackOff"
                return state.next_start_at - now
            return self._start(key, pool, state, target, now)
        hung = self._d.registry.unhealthy(state.id)
        if hung is not None:
            return self._restart(key, state, hung, now)
        if state.phase == "Starting":
            return self._probe_startup(key, pool, state, now, surge)
        return self._liveness(key, state, now)

    def _probe_startup(self, key: str, pool: str, state: ReplicaState, now: float, surge: bool) -> float:
        assert state.worker is not None and state.template is not None and state.upstream is not None
        if state.adapter.healthy(self._d.http, state.upstream):
            state.phase, state.ready_at, state.ever_ready, state.liveness_failures = "Ready", now, True, 0
            state.reason = ""
            self._register(pool, state, state.template.spec)
            took = now - state.worker.started_at
            message = f"replica {state.id} is ready on port {state.port}"
            if not state.worker.adopted:
                self._d.events.cold_start(pool, took)
                message += f" ({took:.1f}s after it started)"
            self._d.db.record_event(key, "Normal", "Ready", message)
            return LIVENESS_PERIOD_SECONDS
        timeout = state.template.spec.startup_timeout_seconds
        if now - state.worker.started_at <= timeout:
            return STARTING_PROBE_SECONDS
        if surge and not state.ever_ready:
            state.rollout_failure = f"not ready within its {timeout:.0f}s startup deadline"
            state.log_tail = tail(state.worker.log_path)
            return 0.0
        return self._restart(key, state, f"not ready after {timeout:.0f}s", now)

    def _liveness(self, key: str, state: ReplicaState, now: float) -> float:
        assert state.upstream is not None
        if state.adapter.healthy(self._d.http, state.upstream):
            state.liveness_failures = 0
            if state.ready_at is not None and now - state.ready_at > self._d.supervision.reset_after_seconds:
                state.restarts = 0
            return LIVENESS_PERIOD_SECONDS
        state.liveness_failures += 1
        if state.liveness_failures < LIVENESS_FAILURES:
            return 1.0
        return self._restart(key, state, f"failed {LIVENESS_FAILURES} health checks in a row", now)

    def _restart(self, key: str, state: ReplicaState, why: str, now: float) -> float:
        """Stop a replica that is alive but useless (hung, never ready) and schedule its restart."""
        self._d.db.record_event(key, "Warning", "Unhealthy", f"replica {state.id} {why}; restarting")
        self.stop(state)
        self.crashed(key, state, why, now)
        return max(0.0, state.next_start_at - now)

    def _step_endpoint(self, key: str, pool: str, state: ReplicaState) -> float:
        """An engine someone else runs: ready while it answers its health check, never spawned."""
        assert state.upstream is not None
        healthy = state.adapter.healthy(self._d.http, state.upstream)
        if healthy and state.phase != "Ready":
            state.phase, state.ready_at, state.reason = "Ready", self._d.clock(), ""
            self._register(pool, state, None)
            self._d.db.record_event(key, "Normal", "Ready", f"endpoint {state.upstream.base_url} is ready")
        elif not healthy and state.phase != "NotReady":
            was_ready = state.phase == "Ready"
            state.phase = "NotReady"
            state.reason = f"{state.upstream.base_url} does not answer its health check"
            self._d.registry.remove(state.id)
            if was_ready:
                self._d.db.record_event(key, "Warning", "Unhealthy", state.reason)
        return LIVENESS_PERIOD_SECONDS if healthy else 2.0

    # -- starting ----------------------------------------------------------------------------------

    def _start(self, key: str, pool: str, state: ReplicaState, target: Target | None, now: float) -> float:
        assert state.template is not None
        spec = state.template.spec
        assignment = GpuAssignment()
        gpus: tuple[Gpu, ...] = ()
        per_gpu: tuple[int, ...] = ()
        need = target.memory_bytes if target is not None else state.memory_bytes
        capacity = self._d.capacity
        if spec.gpus.count > 0:
            decision = capacity.place_gpus(state, spec, need)
            self._d.events.placement(not isinstance(decision, Unschedulable), bool(spec.gpus.devices))
            if isinstance(decision, Unschedulable):
                why = capacity.make_room(key, pool, spec, state, need, decision.message)
                return self._pending(key, why, state)
            assignment = assignment_of(decision.gpus, decision.tensor_split)
            gpus, per_gpu = decision.gpus, decision.bytes_per_gpu
        elif need > (free := capacity.host_free(state)):
            short = (
                f"host memory: {format_bytes(free)} free of capacity.hostMemoryMiB "
                f"{format_bytes(capacity.host_bytes)} < {format_bytes(need)} needed"
            )
            return self._pending(key, capacity.make_room(key, pool, spec, state, need, short), state)
        state.memory_bytes = need
        port = self._d.free_port()
        template = replace(state.template, port=port, gpus=assignment)
        launch = state.adapter.launch(template)
        where = ", ".join(f"GPU{g.index} {g.name}" for g in gpus) or "cpu"
        self._d.db.record_event(key, "Normal", "Scheduled", f"replica {state.id} assigned to {where}")
        log_path = self._d.logs_dir / pool / f"{state.id}.log"
        try:
            worker = self._d.processes.spawn(
                launch.argv, env=launch.env, log_path=log_path, on_exit=self._d.on_exit(key)
            )
        except ProcessError as exc:
            # As kubelet's FailedCreate: say why, then retry on the crash backoff.
            self._d.db.record_event(key, "Warning", "FailedStart", f"replica {state.id}: {exc.message}")
            self.crashed(key, state, f"could not start: {exc.message}", now)
            return max(0.0, state.next_start_at - now)
        state.template, state.worker, state.upstream = template, worker, loopback(spec, port)
        state.assignment, state.gpus, state.vram_per_gpu = assignment, gpus, per_gpu
        state.phase, state.reason, state.ready_at, state.liveness_failures = "Starting", "", None, 0
        self._d.db.save_worker(
            WorkerRecord(
                replica_id=state.id,
                pool=pool,
                index=state.index,
                pid=worker.pid,
                create_time=worker.create_time,
                port=port,
                command_hash=command_hash(launch.argv, launch.env),
                log_path=str(log_path),
                started_at=worker.started_at,
                gpus=assignment.indexes,
                tensor_split=assignment.tensor_split,
            )
        )
        self._d.db.record_event(
            key, "Normal", "Started", f"replica {state.id} started (pid {worker.pid}, port {port})"
        )
        log.info("%s: started replica %s pid %d port %d on %s", key, state.id, worker.pid, port, where)
        return STARTING_PROBE_SECONDS

    def _pending(self, key: str, reason: str, state: ReplicaState) -> float:
        """Nothing fits yet: say why (once per distinct reason) and look again soon; freed memory
        enqueues the pool sooner."""
        state.phase = "Pending"
        if state.reason != reason:
            self._d.db.record_event(key, "Warning", "FailedScheduling", f"replica {state.id}: {reason}")
        state.reason = reason
        return UNSCHEDULABLE_RETRY_SECONDS

    def _register(self, pool: str, state: ReplicaState, spec: PoolSpec | None) -> None:
        """`spec` is None for an endpoint replica, whose slots the engine decides (one here)."""
        assert state.upstream is not None
        state.engine_version = state.adapter.version(self._d.http, state.upstream)
        state.context = state.adapter.context_per_slot(self._d.http, state.upstream)
        if spec is not None and state.context is not None and state.context < spec.context:
            self._d.db.record_event(
                f"Pool/{pool}",
                "Warning",
                "ContextCapped",
                f"replica {state.id}: the engine gives each sequence {state.context} tokens of "
                f"context, less than spec.context {spec.context}; tasks are held to {state.context}",
            )
        self._d.registry.add(
            Replica(
                id=state.id,
                pool=pool,
                engine=state.adapter.name,
                upstream=state.upstream,
                slots=spec.slots if spec is not None else 1,
                adapter=state.adapter,
                context=state.context,
                devices=tuple(g.index for g in state.gpus),
            )
        )

    # -- crashing ----------------------------------------------------------------------------------

    def crashed(self, key: str, state: ReplicaState, reason: str, now: float) -> None:
        """The replica is gone (exited, killed for failing probes, never started): schedule a
        restart with backoff."""
        worker = state.worker
        self._d.registry.remove(state.id)
        if worker is not None:
            state.log_tail = tail(worker.log_path)
            self._d.db.delete_worker(state.id)
        if state.ready_at is not None and now - state.ready_at > self._d.supervision.reset_after_seconds:
            state.restarts = 0
        state.restarts += 1
        state.worker, state.phase, state.ready_at = None, "BackOff", None
        state.last_exit = worker.exit_reason() if worker is not None else ""
        state.last_error = reason
        delay = self.restart_delay(state.restarts)
        state.next_start_at = now + delay
        self._d.events.restart(key.split("/", 1)[-1])
        self._d.db.record_event(
            key,
            "Warning",
            "BackOff",
            f"replica {state.id} {reason}; restart {state.restarts} in {delay:.0f}s",
        )
        log.warning("%s: replica %s %s; restarting in %.1fs", key, state.id, reason, delay)

    def restart_delay(self, restarts: int) -> float:
        """The first restart is immediate; then initial, doubling, capped, like kubelet's CrashLoopBackOff."""
        if restarts <= 1:
            return 0.0
        backoff = self._d.supervision.restart_backoff
        return float(min(backoff.initial_seconds * 2 ** (restarts - 2), backoff.max_seconds))

    # -- stopping ----------------------------------------------------------------------------------

    def drain(self, key: str, state: ReplicaState, why: str, deadline: float | None = None) -> bool:
        """Stop new work to the replica; stop it once idle or past its deadline. True when stopped.

        Tasks still running at the deadline end with POOL_DRAINED before the process goes.
        """
        registry = self._d.registry
        if not state.running:
            registry.remove(state.id)
            if state.worker is not None:
                self._d.db.delete_worker(state.id)
            return True
        now = self._d.clock()
        if state.drain_deadline is None:
            state.drain_deadline = deadline or now + self._d.supervision.drain_grace_seconds
            state.phase = "Terminating"
            registry.set_draining(state.id)
        if registry.busy(state.id) > 0 and now < state.drain_deadline:
            return False
        if registry.busy(state.id) > 0:
            registry.evict(
                state.id, ControllerError(ErrorCode.POOL_DRAINED, f"replica {state.id} stopped: {why}")
            )
        self._d.db.record_event(key, "Normal", "Killing", f"stopping replica {state.id}: {why}")
        self.stop(state)
        return True

    def stop(self, state: ReplicaState) -> None:
        self._d.registry.remove(state.id)
        worker = state.worker
        if worker is None:
            return
        worker.stop(self._d.supervision.stop_grace_seconds)
        self._d.db.delete_worker(state.id)
        state.worker = None
        if state.memory_bytes:
            self._d.on_capacity_freed()

    def revive(self, state: ReplicaState) -> None:
        """A replica being drained away (scaled down, evicted) is wanted again before it stopped:
        keep it instead of starting another."""
        if state.phase != "Terminating" or not state.running:
            return
        state.phase, state.drain_deadline = "Ready", None
        self._d.registry.set_draining(state.id, False)


def assignment_of(gpus: tuple[Gpu, ...], tensor_split: tuple[float, ...]) -> GpuAssignment:
    return GpuAssignment(
        indexes=tuple(g.index for g in gpus),
        tensor_split=tensor_split,
        total_mib=tuple(g.total_bytes // (1024 * 1024) for g in gpus),
    )
