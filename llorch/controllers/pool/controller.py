"""The pool-level reconcile: read the Pool and what runs for it, move every replica one step, write
status. A pool is blocked (its model or engine missing: what runs keeps running), draining (on
request), deleted (its replicas drain and stop), or rolling toward its target revision.

Replica processes report their exit through a callback that enqueues the pool, so a crash is
handled at once rather than at the next resync. A pool with `endpoint:` has one replica that is
only probed, never spawned.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import httpx

from llorch.controllers.manager import Result
from llorch.controllers.model import spec_hash
from llorch.controllers.pool.adoption import adopt_workers
from llorch.controllers.pool.lifecycle import (
    LIVENESS_PERIOD_SECONDS,
    STARTING_PROBE_SECONDS,
    Lifecycle,
    LifecycleDeps,
)
from llorch.controllers.pool.replica import ReplicaState
from llorch.controllers.pool.rollout import Rollouts
from llorch.controllers.pool.status import (
    blocked_conditions,
    draining_conditions,
    replica_conditions,
    with_replicas,
)
from llorch.controllers.pool.target import AdapterFor, Blocker, EngineBinary, Targets
from llorch.resources import Pool, PoolSpec, ServerConfig
from llorch.resources.status import PoolStatus, stamp
from llorch.runtime.engines import adapter_for as default_adapter_for
from llorch.runtime.gpus import GpuInventory
from llorch.runtime.ports import free_port as default_free_port
from llorch.runtime.process import LocalProcesses, Processes, Worker
from llorch.runtime.registry import Replica, ReplicaRegistry
from llorch.store.db import PoolRuntime, StateDB
from llorch.store.manifests import ManifestStore


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
        on_placement: Callable[[bool, bool], None] | None = None,
        processes: Processes | None = None,
        adapter_for: AdapterFor = default_adapter_for,
        clock: Callable[[], float] = time.time,
        free_port: Callable[[], int] = default_free_port,
        http: httpx.Client | None = None,
    ) -> None:
        """`processes`, `adapter_for`, `clock`, `free_port` and `http` are the world the controller
        acts on; tests hand in doubles. `on_placement(placed, pinned)` hears every GPU placement."""
        self._store = store
        self._db = db
        self._registry = registry
        self._enqueue = enqueue
        self._clock = clock
        self._replicas: dict[str, dict[str, ReplicaState]] = {}
        self._lock = threading.Lock()
        self._http = http if http is not None else httpx.Client()
        self._targets = Targets(store=store, db=db, engine_binary=engine_binary, adapter_for=adapter_for)
        self._deps = LifecycleDeps(
            db=db,
            registry=registry,
            processes=processes if processes is not None else LocalProcesses(),
            supervision=config.supervision,
            inventory=inventory,
            http=self._http,
            logs_dir=logs_dir,
            clock=clock,
            free_port=free_port,
            all_replicas=self._all_replicas,
            on_exit=self._exit_callback,
            on_capacity_freed=self._capacity_freed,
            on_placement=on_placement,
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

    def _all_replicas(self) -> list[ReplicaState]:
        with self._lock:
            return [s for replicas in self._replicas.values() for s in replicas.values()]

    def _exit_callback(self, key: str) -> Callable[[Worker], None]:
        return lambda _: self._enqueue(key)

    def _capacity_freed(self) -> None:
        """Capacity freed on a GPU may let a Pending replica of another pool fit now."""
        for pool in self.known_names():
            self._enqueue(f"Pool/{pool}")

    def _hung(self, replica: Replica) -> None:
        self._enqueue(f"Pool/{replica.pool}")

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
        )
        target = self._targets.resolve(name, spec)
        if isinstance(target, Blocker):
            # Replicas already running keep running: a missing model file or a typo in the
            # model's name must not tear down what serves traffic. A Retired model is the
            # exception: its replicas drain to the deadline and stop.
            if target.drain:
                for state in list(replicas.values()):
                    if self._lifecycle.drain(key, state, target.message, deadline=target.drain_deadline):
                        replicas.pop(state.id, None)
            if previous.blocked_by != target.reason:
                self._db.record_event(
                    key, "Warning" if target.warning else "Normal", target.reason, target.message
                )
            status = status.model_copy(
                update={
                    "blocked_by": target.reason,
                    "conditions": blocked_conditions(previous.conditions, target.reason, target.message, now),
                }
            )
            self._db.put_status(key, with_replicas(status, spec, replicas))
            return Result(
                requeue_after=STARTING_PROBE_SECONDS if replicas and target.drain else target.retry_after
            )
        if runtime.draining:
            return self._reconcile_draining(key, spec, runtime, status, previous, replicas, now)

        waits = self._rollouts.roll(key, name, target, replicas)
        for state in list(replicas.values()):
            if state.index < spec.replicas:
                continue
            if self._lifecycle.drain(key, state, "the pool scaled down"):
                replicas.pop(state.id, None)
            else:
                waits.append(STARTING_PROBE_SECONDS)
        failed = self._rollouts.failed(name)
        status = status.model_copy(
            update={
                "vram_estimate": target.vram_text or None,
                "revision": target.revision,
                "rollout": failed,
                "conditions": replica_conditions(
                    previous.conditions, spec, replicas, target.revision, failed, now
                ),
            }
        )
        self._db.put_status(key, with_replicas(status, spec, replicas))
        return Result(requeue_after=min(waits) if waits else LIVENESS_PERIOD_SECONDS)

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
        self._db.put_status(key, with_replicas(status, spec, replicas))
        return Result(requeue_after=None if drained else STARTING_PROBE_SECONDS)

    def _reconcile_deleted(self, name: str, key: str, replicas: dict[str, ReplicaState]) -> Result:
        for state in list(replicas.values()):
            if self._lifecycle.drain(key, state, "the pool was deleted"):
                replicas.pop(state.id, None)
        if replicas:
            return Result(requeue_after=STARTING_PROBE_SECONDS)
        with self._lock:
            self._replicas.pop(name, None)
        self._rollouts.forget(name)
        self._db.forget_object(key)
        return Result()
