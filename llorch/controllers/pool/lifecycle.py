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

import httpx

from llorch.controllers.errors import ControllerError
from llorch.controllers.pool.replica import ReplicaState
from llorch.controllers.pool.target import Target, loopback
from llorch.resources import PoolSpec
from llorch.resources.config import Supervision
from llorch.resources.errors import ErrorCode
from llorch.runtime.engines.base import GpuAssignment
from llorch.runtime.errors import ProcessError
from llorch.runtime.gpus import Gpu, GpuInventory
from llorch.runtime.placement import GpuPlacement, PlacementRequest, Reservation, Unschedulable, place
from llorch.runtime.process import Processes, Worker, command_hash, tail
from llorch.runtime.registry import Replica, ReplicaRegistry
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
    http: httpx.Client
    logs_dir: Path
    clock: Callable[[], float]
    free_port: Callable[[], int]
    # Every replica the controller tracks, of every pool: GPU reservations count them all.
    all_replicas: Callable[[], list[ReplicaState]]
    # A process exited: reconcile its pool now rather than at the next resync.
    on_exit: Callable[[str], Callable[[Worker], None]]
    # GPU capacity was freed: pools with Pending replicas may fit now.
    on_capacity_freed: Callable[[], None]
    # Hears every GPU placement decision (placed, pinned), for metrics.
    on_placement: Callable[[bool, bool], None] | None = None


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
            self._d.db.record_event(
                key, "Normal", "Ready", f"replica {state.id} is ready on port {state.port}"
            )
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
        if spec.gpus.count > 0:
            vram = target.vram_bytes if target is not None else sum(state.vram_per_gpu)
            decision = self._place(state, spec, vram)
            if self._d.on_placement is not None:
                self._d.on_placement(not isinstance(decision, Unschedulable), bool(spec.gpus.devices))
            if isinstance(decision, Unschedulable):
                state.phase = "Pending"
                if state.reason != decision.message:
                    self._d.db.record_event(
                        key, "Warning", "FailedScheduling", f"replica {state.id}: {decision.message}"
                    )
                state.reason = decision.message
                return UNSCHEDULABLE_RETRY_SECONDS
            assignment = assignment_of(decision.gpus, decision.tensor_split)
            gpus, per_gpu = decision.gpus, decision.bytes_per_gpu
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

    def _place(self, state: ReplicaState, spec: PoolSpec, vram_bytes: int) -> GpuPlacement | Unschedulable:
        """Place on GPUs by free VRAM, counting what every other live replica has reserved."""
        others = [s for s in self._d.all_replicas() if s is not state and s.running]
        reservations = [
            Reservation(replica_id=s.id, gpu_uuid=g.uuid, bytes=b, loaded=s.phase == "Ready")
            for s in others
            for g, b in zip(s.gpus, s.vram_per_gpu, strict=False)
        ]
        request = PlacementRequest(
            replica_id=state.id,
            count=spec.gpus.count,
            vram_bytes=vram_bytes,
            devices=tuple(spec.gpus.devices),
            split=spec.gpus.split,
        )
        return place(self._d.inventory.gpus(), reservations, request)

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
        if state.gpus:
            self._d.on_capacity_freed()


def assignment_of(gpus: tuple[Gpu, ...], tensor_split: tuple[float, ...]) -> GpuAssignment:
    return GpuAssignment(
        indexes=tuple(g.index for g in gpus),
        tensor_split=tensor_split,
        total_mib=tuple(g.total_bytes // (1024 * 1024) for g in gpus),
    )
