"""The pool-level reconcile: read the Pool and what runs for it, move every replica one step, write
status. A pool is blocked (its model or engine missing: what runs keeps running), draining (on
request), deleted (its replicas drain and stop), or rolling toward its target revision with the
replica count its spec fixes or its autoscaler decides from demand.

Replica processes report their exit through a callback that enqueues the pool, so a crash is
handled at once rather than at the next resync. A pool with `endpoint:` has one replica that is
only probed, never spawned.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

import httpx
import psutil

from llorch.controllers.manager import Result
from llorch.controllers.model import spec_hash
from llorch.controllers.pool.adoption import adopt_workers
from llorch.controllers.pool.autoscale import Autoscaler, decide
from llorch.controllers.pool.capacity import Capacity
from llorch.controllers.pool.lifecycle import (
    LIVENESS_PERIOD_SECONDS,
    STARTING_PROBE_SECONDS,
    Lifecycle,
    LifecycleDeps,
    NoEvents,
    PoolEvents,
)
from llorch.controllers.pool.replica import ReplicaState
from llorch.controllers.pool.rollout import Rollouts
from llorch.controllers.pool.status import (
    blocked_conditions,
    draining_conditions,
    replica_conditions,
    with_replicas,
)
from llorch.controllers.pool.target import AdapterFor, Blocker, EngineBinary, Target, Targets
from llorch.resources import Pool, PoolSpec, ServerConfig
from llorch.resources.status import PoolStatus, stamp
from llorch.runtime.demand import Demand, DemandSource, no_demand
from llorch.runtime.engines import adapter_for as default_adapter_for
from llorch.runtime.gpus import GpuInventory
from llorch.runtime.ports import free_port as default_free_port
from llorch.runtime.process import LocalProcesses, Processes, Worker
from llorch.runtime.registry import Replica, ReplicaRegistry
from llorch.store.db import PoolRuntime, StateDB
from llorch.store.manifests import ManifestStore

MIB = 1024 * 1024
# Host memory kept for the system and llorchd itself when capacity.hostMemoryMiB is unset.
HOST_RESERVE_BYTES = 2 * 1024 * MIB
# Cold starts remembered per pool: their median is what an idle pool's next task waits.
COLD_STARTS_KEPT = 8


def host_capacity(config: ServerConfig) -> int:
    configured = config.capacity.host_memory_mib
    if configured is not None:
        return configured * MIB
    return max(0, psutil.virtual_memory().total - HOST_RESERVE_BYTES)


class PoolController:
    kind = "Pool"

    def __init__(
        self,
        *,
        store: ManifestStore,
        db: StateDB,
        registry: ReplicaRegistry,
        config: ServerConfig,
        engine_binary: EngineBinary,
        inventory: GpuInventory,
        logs_dir: Path,
        enqueue: Callable[[str], None],
        events: PoolEvents | None = None,
        demand: DemandSource = no_demand,
        processes: Processes | None = None,
        adapter_for: AdapterFor = default_adapter_for,
        clock: Callable[[], float] = time.time,
        free_port: Callable[[], int] = default_free_port,
        http: httpx.Client | None = None,
    ) -> None:
        """`demand` is what the data plane sees of each pool (queued and running tasks, last
        activity); `events` hears placements, activations, evictions and cold starts (metrics).
        `processes`, `adapter_for`, `clock`, `free_port` and `http` are the world the controller
        acts on; tests hand in doubles."""
        self._store = store
        self._db = db
        self._registry = registry
        self._enqueue = enqueue
        self._clock = clock
        self._demand = demand
        self._events = events if events is not None else NoEvents()
        self._replicas: dict[str, dict[str, ReplicaState]] = {}
        self._cold_starts: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._http = http if http is not None else httpx.Client()
        self._targets = Targets(store=store, db=db, engine_binary=engine_binary, adapter_for=adapter_for)
        self._autoscaler = Autoscaler()
        self.capacity = Capacity(
            host_bytes=host_capacity(config),
            inventory=inventory,
            all_replicas=self._all_replicas,
            autoscaler=self._autoscaler,
            registry=registry,
            demand=demand,
            db=db,
            enqueue=enqueue,
            clock=clock,
            on_eviction=self._events.eviction,
        )
        self._deps = LifecycleDeps(
            db=db,
            registry=registry,
            processes=processes if processes is not None else LocalProcesses(),
            supervision=config.supervision,
            inventory=inventory,
            capacity=self.capacity,
            http=self._http,
            logs_dir=logs_dir,
            clock=clock,
            free_port=free_port,
            on_exit=self._exit_callback,
            on_capacity_freed=self._capacity_freed,
            events=_Recording(self._events, self._cold_start),
        )
        self._lifecycle = Lifecycle(self._deps)
        self._rollouts = Rollouts(self._lifecycle, db)
        registry.on_unhealthy(self._hung)

    # -- manager hooks -------------------------------------------------------------------------

    def known_names(self) -> Iterable[str]:
        with self._lock:
            return [name for name, replicas in self._replicas.items() if replicas]

    def dependents(self, key: str) -> Iterable[str]:
        kind, name = key.split("/", 1)
        if kind != "Model":
            return ()
        return [
            f"Pool/{entry.obj.metadata.name}"
            for entry in self._store.entries("Pool")
            if isinstance(entry.obj, Pool) and entry.obj.spec.model == name
        ]

    def shutdown(self, *, keep_workers: bool = False) -> None:
        """llorchd is exiting: stop every replica, or leave them for the next llorchd to adopt."""
        with self._lock:
            states = [s for replicas in self._replicas.values() for s in replicas.values()]
            self._replicas.clear()
        if not keep_workers:
            threads = [threading.Thread(target=self._lifecycle.stop, args=(s,)) for s in states]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        self._http.close()

    def adopt_workers(self) -> None:
        """Take over the healthy workers an earlier llorchd left running; stop the rest."""
        adopt_workers(self._deps, self._store, self._targets, self._keep)

    def _keep(self, pool: str, state: ReplicaState) -> None:
        with self._lock:
            self._replicas.setdefault(pool, {})[state.id] = state

    def _all_replicas(self) -> list[tuple[str, ReplicaState]]:
        with self._lock:
            return [(pool, s) for pool, replicas in self._replicas.items() for s in replicas.values()]

    def _exit_callback(self, key: str) -> Callable[[Worker], None]:
        return lambda _: self._enqueue(key)

    def _capacity_freed(self) -> None:
        """Freed memory may let a Pending replica of another pool fit now."""
        for pool in self.known_names():
            self._enqueue(f"Pool/{pool}")

    def phase_counts(self) -> dict[tuple[str, str], int]:
        """Replicas per (pool, phase), for the replicas-by-phase gauge."""
        counts: dict[tuple[str, str], int] = {}
        for pool, state in self._all_replicas():
            counts[pool, state.phase] = counts.get((pool, state.phase), 0) + 1
        return counts

    def _hung(self, replica: Replica) -> None:
        self._enqueue(f"Pool/{replica.pool}")

    def _cold_start(self, pool: str, seconds: float) -> None:
        with self._lock:
            self._cold_starts.setdefault(pool, deque(maxlen=COLD_STARTS_KEPT)).append(seconds)

    def _cold_start_status(self, pool: str) -> dict[str, float | None]:
        with self._lock:
            recent = list(self._cold_starts.get(pool, ()))
        if not recent:
            return {}
        return {
            "cold_start_seconds": round(statistics.median(recent), 2),
            "last_cold_start_seconds": round(recent[-1], 2),
        }

    # -- reconcile -----------------------------------------------------------------------------

    def reconcile(self, name: str) -> Result:
        key = f"Pool/{name}"
        entry = self._store.get(key)
        with self._lock:
            replicas = self._replicas.setdefault(name, {})
        if entry is None:
            return self._reconcile_deleted(name, key, replicas)
        assert isinstance(entry.obj, Pool)
        spec = entry.obj.spec
        now = self._clock()
        runtime = self._db.pool_runtime(name)
        previous = self._db.pool_status(name) or PoolStatus()
        status = PoolStatus(
            observed_generation=self._db.observe_generation(key, spec_hash(spec)),
            replicas=spec.replicas,
            draining=runtime.draining,
            drain_deadline=stamp(runtime.drain_deadline) if runtime.drain_deadline is not None else None,
            cold_start_seconds=previous.cold_start_seconds,
            last_cold_start_seconds=previous.last_cold_start_seconds,
        )
        target = self._targets.resolve(name, spec)
        if isinstance(target, Blocker):
            # Replicas already running keep running: a missing model file or a typo in the
            # model's name must not tear down what serves traffic. A Retired model is the
            # exception: its replicas drain to the deadline and stop.
            self._registry.set_standby(name, None)
            if target.drain:
                for state in list(replicas.values()):
                    if self._lifecycle.drain(key, state, target.message, deadline=target.drain_deadline):
                        replicas.pop(state.id, None)
            if previous.blocked_by != target.reason:
                kind = "Warning" if target.warning else "Normal"
                self._db.record_event(key, kind, target.reason, target.message)
            status = status.model_copy(
                update={
                    "blocked_by": target.reason,
                    "conditions": blocked_conditions(previous.conditions, target.reason, target.message, now),
                }
            )
            self._db.put_status(key, self._with_replicas(name, status, spec, replicas, spec.replicas))
            return Result(
                requeue_after=STARTING_PROBE_SECONDS if replicas and target.drain else target.retry_after
            )
        if runtime.draining:
            self._registry.set_standby(name, None)
            return self._reconcile_draining(key, spec, runtime, status, previous, replicas, now)

        demand = self._demand(name)
        wanted, scale_update, scale_down_at = self._wanted(key, name, spec, previous, replicas, demand, now)
        waits = self._rollouts.roll(key, name, target, replicas, wanted)
        for state in list(replicas.values()):
            if state.index < wanted:
                continue
            why = "the pool scaled to zero" if wanted == 0 else "the pool scaled down"
            if self._lifecycle.drain(key, state, why):
                replicas.pop(state.id, None)
            else:
                waits.append(STARTING_PROBE_SECONDS)
        if scale_down_at is not None:
            waits.append(max(0.0, scale_down_at - now))
        self._publish_standby(name, spec, replicas, wanted, target)
        failed = self._rollouts.failed(name)
        status = status.model_copy(
            update={
                **scale_update,
                "replicas": wanted,
                "vram_estimate": target.memory_text or None if spec.gpus.count else None,
                "memory_per_replica_mib": -(-target.memory_bytes // MIB) if target.memory_bytes else None,
                "revision": target.revision,
                "rollout": failed,
                "last_activity": stamp(demand.last_activity) if demand.last_activity is not None else None,
                "idle": spec.autoscale is not None and wanted == 0 and not replicas,
                "conditions": replica_conditions(
                    previous.conditions, spec, replicas, target.revision, failed, now, wanted=wanted
                ),
            }
        )
        self._db.put_status(key, self._with_replicas(name, status, spec, replicas, wanted))
        return Result(requeue_after=min(waits) if waits else LIVENESS_PERIOD_SECONDS)

    def _wanted(
        self,
        key: str,
        name: str,
        spec: PoolSpec,
        previous: PoolStatus,
        replicas: dict[str, ReplicaState],
        demand: Demand,
        now: float,
    ) -> tuple[int, dict[str, object], float | None]:
        """The replica count for this reconcile, the status fields saying why, and when the pool
        goes back to its min if nothing comes (a fixed pool: its count, nothing, never)."""
        if spec.autoscale is None:
            self._autoscaler.forget(name)
            return spec.replicas, {}, None
        seed = previous.desired_replicas if previous.desired_replicas is not None else spec.autoscale.min
        scale = self._autoscaler.current(name, seed=seed, now=now)
        present = [s for s in replicas.values() if s.phase != "Terminating"]
        ready = sum(1 for s in present if s.phase == "Ready")
        decision = decide(spec, scale, demand, ready=ready, present=len(present), now=now)
        self._autoscaler.store(name, decision.scale)
        if decision.event is not None:
            self._db.record_event(key, "Normal", decision.event, decision.scale.reason.split(": ", 1)[-1])
            if decision.event == "Activating":
                self._events.activation(name)
        update: dict[str, object] = {
            "desired_replicas": decision.scale.desired,
            "autoscale_reason": decision.scale.reason or None,
            "scale_down_at": stamp(decision.scale_down_at) if decision.scale_down_at is not None else None,
        }
        return decision.scale.desired, update, decision.scale_down_at

    def _publish_standby(
        self, name: str, spec: PoolSpec, replicas: dict[str, ReplicaState], wanted: int, target: Target
    ) -> None:
        """Tell the data plane whether tasks finding no serving replica may wait, and for what."""
        if spec.autoscale is not None and wanted == 0:
            cold = f" (cold start about {self._cold_start_estimate(name):.0f}s)"
            self._registry.set_standby(name, f"pool {name} is idle: a task starts a replica{cold}")
            return
        if wanted == 0 or target.template is None:
            # An endpoint someone else runs is not starting when it does not answer: refuse, as
            # for a pool that wants no replica.
            self._registry.set_standby(name, None)
            return
        pending = [s for s in replicas.values() if s.phase == "Pending" and s.reason]
        crashing = [s for s in replicas.values() if s.phase == "BackOff"]
        starting = [s.worker.started_at for s in replicas.values() if s.phase == "Starting" and s.worker]
        cold_s = self._cold_start_estimate(name) or None
        ready_at: float | None = None
        if pending:
            reason = pending[0].reason
        elif crashing:
            reason = f"replica {crashing[0].id} restarts after: {crashing[0].last_error}"
            if cold_s is not None:
                ready_at = min(s.next_start_at for s in crashing) + cold_s
        else:
            reason = f"a replica of pool {name} is starting"
            if starting and cold_s is not None:
                ready_at = min(starting) + cold_s
        self._registry.set_standby(name, reason, ready_at=ready_at)

    def _cold_start_estimate(self, pool: str) -> float:
        with self._lock:
            recent = list(self._cold_starts.get(pool, ()))
        return statistics.median(recent) if recent else 0.0

    def _with_replicas(
        self, name: str, status: PoolStatus, spec: PoolSpec, replicas: dict[str, ReplicaState], wanted: int
    ) -> PoolStatus:
        """The status to write: its replicas as they are after this reconcile's steps."""
        last_used = {r.id: r.last_used for r in self._registry.replicas()}
        status = with_replicas(status, spec, replicas, wanted, last_used)
        return status.model_copy(update=self._cold_start_status(name))

    def _reconcile_draining(
        self,
        key: str,
        spec: PoolSpec,
        runtime: PoolRuntime,
        status: PoolStatus,
        previous: PoolStatus,
        replicas: dict[str, ReplicaState],
        now: float,
    ) -> Result:
        name = key.split("/", 1)[1]
        for state in list(replicas.values()):
            if state.template is None:
                self._registry.remove(state.id)
                replicas.pop(state.id, None)
            elif self._lifecycle.drain(key, state, "the pool is draining", deadline=runtime.drain_deadline):
                replicas.pop(state.id, None)
        drained = not replicas
        message = "all replicas stopped" if drained else f"{len(replicas)} replica(s) finishing their tasks"
        if drained and previous.ready_replicas:
            self._db.record_event(
                key, "Normal", "Drained", "every replica stopped; `llorchctl resume` restarts them"
            )
        status = status.model_copy(
            update={"conditions": draining_conditions(previous.conditions, drained, message, now)}
        )
        self._db.put_status(key, self._with_replicas(name, status, spec, replicas, spec.replicas))
        return Result(requeue_after=None if drained else STARTING_PROBE_SECONDS)

    def _reconcile_deleted(self, name: str, key: str, replicas: dict[str, ReplicaState]) -> Result:
        self._registry.set_standby(name, None)
        for state in list(replicas.values()):
            if self._lifecycle.drain(key, state, "the pool was deleted"):
                replicas.pop(state.id, None)
        if replicas:
            return Result(requeue_after=STARTING_PROBE_SECONDS)
        with self._lock:
            self._replicas.pop(name, None)
            self._cold_starts.pop(name, None)
        self._rollouts.forget(name)
        self._autoscaler.forget(name)
        self._db.forget_object(key)
        return Result()


class _Recording:
    """The controller's own bookkeeping of cold starts, then whatever else listens."""

    def __init__(self, events: PoolEvents, cold_start: Callable[[str, float], None]) -> None:
        self._events = events
        self._cold_start = cold_start

    def placement(self, placed: bool, pinned: bool) -> None:
        self._events.placement(placed, pinned)

    def activation(self, pool: str) -> None:
        self._events.activation(pool)

    def eviction(self, pool: str, reason: str) -> None:
        self._events.eviction(pool, reason)

    def cold_start(self, pool: str, seconds: float) -> None:
        self._cold_start(pool, seconds)
        self._events.cold_start(pool, seconds)

    def restart(self, pool: str) -> None:
        self._events.restart(pool)
