"""The Pool controller: make the running replicas match the Pool's spec.

Each reconcile looks at every replica once and moves it one step: place it on GPUs, spawn,
probe, register, restart after a crash (with backoff), roll it to a new revision (start the
new one, wait Ready, drain the old), drain and stop extras. Replica processes report their
exit through a callback that enqueues the pool, so a crash is handled at once rather than at
the next resync. A pool with `endpoint:` has one replica that is only probed, never spawned.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from llorch.controllers.conditions import is_true, set_condition
from llorch.controllers.errors import ControllerError
from llorch.controllers.manager import Result
from llorch.controllers.model import spec_hash
from llorch.resources import Pool, PoolSpec, ServerConfig
from llorch.resources.errors import ErrorCode
from llorch.runtime.engines import UnsupportedEngine, adapter_for
from llorch.runtime.engines.base import EngineAdapter, GpuAssignment, LaunchRequest, Upstream
from llorch.runtime.errors import ProvisionError
from llorch.runtime.gpus import Gpu, GpuInventory
from llorch.runtime.placement import Placement, PlacementRequest, Reservation, Unschedulable, place
from llorch.runtime.ports import free_port
from llorch.runtime.process import WorkerProcess, adopt, command_hash, spawn, stop_orphan, tail
from llorch.runtime.registry import Replica, ReplicaRegistry
from llorch.runtime.vram import cache_types_from_args, estimate_llamacpp, format_bytes
from llorch.store.db import PoolRuntime, StateDB, WorkerRecord
from llorch.store.manifests import ManifestStore

log = logging.getLogger("llorch.controllers")

STARTING_PROBE_SECONDS = 0.2
LIVENESS_PERIOD_SECONDS = 5.0
LIVENESS_FAILURES = 3
UNSCHEDULABLE_RETRY_SECONDS = 5.0


@dataclass
class ReplicaState:
    id: str
    index: int
    revision: str
    template: LaunchRequest | None  # None for an endpoint replica: nothing to launch
    adapter: EngineAdapter
    upstream: Upstream | None = None
    worker: WorkerProcess | None = None
    gpus: tuple[Gpu, ...] = ()
    assignment: GpuAssignment = field(default_factory=GpuAssignment)
    vram_per_gpu: tuple[int, ...] = ()
    phase: str = "Pending"  # Pending | Starting | Ready | NotReady | BackOff | Terminating
    reason: str = ""
    restarts: int = 0
    last_error: str = ""
    last_exit: str = ""
    log_tail: list[str] = field(default_factory=list)
    next_start_at: float = 0.0
    ready_at: float | None = None
    ever_ready: bool = False
    liveness_failures: int = 0
    drain_deadline: float | None = None
    rollout_failure: str = ""
    engine_version: str | None = None
    # Per sequence, as the engine reports it once Ready; None until then or when it does not say.
    context: int | None = None

    @property
    def port(self) -> int:
        return self.template.port if self.template is not None else 0

    def to_wire(self, slots: int) -> dict[str, Any]:
        worker = self.worker
        return {
            "id": self.id,
            "index": self.index,
            "revision": self.revision,
            "phase": self.phase,
            "reason": self.reason or None,
            "pid": worker.pid if worker is not None and worker.alive else None,
            "port": self.port or None,
            "url": self.upstream.base_url if self.upstream is not None else None,
            "gpus": [{"index": g.index, "uuid": g.uuid, "name": g.name} for g in self.gpus],
            "vramBytes": list(self.vram_per_gpu),
            "restarts": self.restarts,
            "lastExit": self.last_exit or None,
            "lastError": self.last_error or None,
            "logTail": self.log_tail,
            "startedAt": worker.started_at if worker is not None else None,
            "readyAt": self.ready_at,
            "adopted": worker.adopted if worker is not None else False,
            "engineVersion": self.engine_version,
            "context": self.context,
            "logPath": str(worker.log_path) if worker is not None else None,
            "slots": slots,
        }


@dataclass(frozen=True)
class Target:
    """What the pool's replicas should run now, derived fresh from the spec on every reconcile."""

    spec: PoolSpec
    adapter: EngineAdapter
    template: LaunchRequest | None
    revision: str
    vram_bytes: int
    vram_text: str


class PoolController:
    kind = "Pool"

    def __init__(
        self,
        *,
        store: ManifestStore,
        db: StateDB,
        registry: ReplicaRegistry,
        config: ServerConfig,
        engine_binary: Callable[[str], Path],
        inventory: GpuInventory,
        logs_dir: Path,
        enqueue: Callable[[str], None],
        on_placement: Callable[[bool, bool], None] | None = None,
    ) -> None:
        """`on_placement(placed, pinned)` hears every GPU placement decision (for metrics)."""
        self._store = store
        self._on_placement = on_placement
        self._db = db
        self._registry = registry
        self._config = config
        self._engine_binary = engine_binary
        self._inventory = inventory
        self._logs_dir = logs_dir
        self._enqueue = enqueue
        self._replicas: dict[str, dict[str, ReplicaState]] = {}
        # A revision whose rollout failed is not retried until the spec changes or a reload.
        self._failed_revisions: dict[str, str] = {}
        self._rollout_messages: dict[str, str] = {}
        self._lock = threading.Lock()
        self._http = httpx.Client()

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
        if keep_workers:
            self._http.close()
            return
        threads = [threading.Thread(target=self._stop_worker, args=(s,)) for s in states]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self._http.close()

    def adopt_workers(self) -> None:
        """Take over the healthy workers an earlier llorchd left running; stop the rest.

        A worker is adopted only if it is the very process recorded (pid + create time) and
        the command the current spec would launch on its port and GPUs is the one it runs.
        """
        grace = self._config.supervision.stop_grace_seconds
        for record in self._db.workers():
            state = self._adoptable(record)
            worker = None
            if state is not None:
                worker = adopt(
                    pid=record.pid,
                    create_time=record.create_time,
                    argv=[],
                    log_path=Path(record.log_path),
                    started_at=record.started_at,
                    on_exit=self._exit_callback(f"Pool/{record.pool}"),
                )
            if state is None or worker is None:
                if stop_orphan(record.pid, record.create_time, grace):
                    log.warning(
                        "stopped worker %s (pid %d): it no longer matches its pool",
                        record.replica_id,
                        record.pid,
                    )
                self._db.delete_worker(record.replica_id)
                continue
            state.worker, state.phase = worker, "Starting"
            with self._lock:
                self._replicas.setdefault(record.pool, {})[state.id] = state
            message = (
                f"adopted replica {state.id} (pid {record.pid}, port {record.port}) from an earlier llorchd"
            )
            self._db.record_event(f"Pool/{record.pool}", "Normal", "Adopted", message)
            log.info("Pool/%s: %s", record.pool, message)

    def _exit_callback(self, key: str) -> Callable[[WorkerProcess], None]:
        return lambda _: self._enqueue(key)

    def _adoptable(self, record: WorkerRecord) -> ReplicaState | None:
        entry = self._store.get(f"Pool/{record.pool}")
        if entry is None or not isinstance(entry.obj, Pool) or self._blocker(entry.obj.spec) is not None:
            return None
        target = self._target(record.pool, entry.obj.spec)
        if target.template is None:
            return None
        by_index = {g.index: g for g in self._inventory.gpus()}
        gpus = tuple(by_index[i] for i in record.gpus if i in by_index)
        assignment = _assignment(gpus, record.tensor_split)
        template = _with(target.template, port=record.port, gpus=assignment)
        launch = target.adapter.launch(template)
        if command_hash(launch.argv, launch.env) != record.command_hash:
            return None
        return ReplicaState(
            id=record.replica_id,
            index=record.index,
            revision=target.revision,
            template=template,
            adapter=target.adapter,
            upstream=_loopback(target.spec, record.port),
            gpus=gpus,
            assignment=assignment,
        )

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
        generation = self._db.observe_generation(key, spec_hash(spec))
        runtime = self._db.pool_runtime(name)
        status: dict[str, Any] = {
            "observedGeneration": generation,
            "replicas": spec.replicas,
            "draining": runtime.draining,
            "drainDeadline": runtime.drain_deadline,
        }
        previous = self._db.get_status(key) or {}
        conditions = previous.get("conditions", [])

        blocker = self._blocker(spec)
        if blocker is not None:
            # Replicas already running keep running: a missing model file or a typo in the
            # model's name must not tear down what serves traffic.
            reason, message, requeue = blocker
            conditions = set_condition(conditions, "Ready", False, reason, message)
            conditions = set_condition(conditions, "Progressing", False, reason, message)
            conditions = set_condition(conditions, "Degraded", True, reason, message)
            if previous.get("blockedBy") != reason:
                # Waiting for a Model that is still being resolved is ordinary start-up, not trouble.
                kind = "Normal" if reason == "ModelNotReady" else "Warning"
                self._db.record_event(key, kind, reason, message)
            status["blockedBy"] = reason
            self._finish(name, spec, status, conditions, replicas)
            return Result(requeue_after=requeue)

        if runtime.draining:
            return self._reconcile_draining(name, key, spec, runtime, status, conditions, replicas)

        target = self._target(name, spec)
        status["vramEstimate"] = target.vram_text or None
        status["revision"] = target.revision
        waits = self._roll(key, name, target, replicas)
        for state in list(replicas.values()):
            if state.index >= spec.replicas and self._drain(key, state, "the pool scaled down"):
                replicas.pop(state.id, None)
            elif state.index >= spec.replicas:
                waits.append(STARTING_PROBE_SECONDS)

        failed = self._failed_revisions.get(name)
        status["rollout"] = (
            {"failedRevision": failed, "message": self._rollout_message(name)} if failed else None
        )
        conditions = self._conditions(name, conditions, spec, replicas, target.revision, failed)
        self._finish(name, spec, status, conditions, replicas)
        return Result(requeue_after=min(waits) if waits else LIVENESS_PERIOD_SECONDS)

    def _roll(self, key: str, pool: str, target: Target, replicas: dict[str, ReplicaState]) -> list[float]:
        """Bring every wanted index to the target revision, one index at a time (max surge 1)."""
        waits: list[float] = []
        failed = self._failed_revisions.get(pool)
        rolling = False
        for index in range(target.spec.replicas):
            at_index = [s for s in replicas.values() if s.index == index]
            current = next((s for s in at_index if s.revision == target.revision), None)
            old = [s for s in at_index if s.revision != target.revision]
            for state in old:
                waits.append(self._step(key, pool, state, surge=False))
            if old and (failed == target.revision or (rolling and current is None)):
                continue
            if current is None:
                current = self._new_replica(pool, index, target)
                replicas[current.id] = current
            rolling = rolling or bool(old)
            waits.append(self._step(key, pool, current, surge=bool(old), target=target))
            if current.rollout_failure:
                self._rollout_failed(key, pool, current, target.revision)
                replicas.pop(current.id, None)
            elif old and current.phase == "Ready":
                for state in old:
                    if self._drain(key, state, f"replaced by {current.id}"):
                        replicas.pop(state.id, None)
                    else:
                        waits.append(STARTING_PROBE_SECONDS)
        return [w for w in waits if w is not None]

    def _new_replica(self, pool: str, index: int, target: Target) -> ReplicaState:
        suffix = "endpoint" if target.template is None else target.revision[:5]
        return ReplicaState(
            id=f"{pool}-{index}-{suffix}",
            index=index,
            revision=target.revision,
            template=target.template,
            adapter=target.adapter,
            upstream=_endpoint_upstream(target.spec) if target.template is None else None,
        )

    def _rollout_failed(self, key: str, pool: str, state: ReplicaState, revision: str) -> None:
        """The new revision never became Ready: stop it, keep the old serving, and say so."""
        self._failed_revisions[pool] = revision
        self._rollout_messages[pool] = f"replica {state.id}: {state.rollout_failure}"
        self._stop_worker(state)
        message = (
            f"revision {revision[:5]} failed, the previous revision keeps serving: {state.rollout_failure}"
        )
        self._db.record_event(key, "Warning", "RolloutFailed", message)
        log.warning("%s: %s", key, message)

    def _rollout_message(self, pool: str) -> str:
        return self._rollout_messages.get(pool, "")

    def _target(self, pool: str, spec: PoolSpec) -> Target:
        adapter = adapter_for(spec.engine)
        if spec.endpoint is not None:
            revision = _hash(("endpoint", spec.endpoint.url, spec.endpoint.served_model, spec.model))
            return Target(spec, adapter, None, revision, 0, "")
        model_path = Path(str((self._db.get_status(f"Model/{spec.model}") or {})["resolvedPath"]))
        template = LaunchRequest(
            binary=self._engine_binary(spec.engine),
            model_path=model_path,
            model_name=spec.model,
            port=0,
            spec=spec,
        )
        launch = adapter.launch(template)
        reload_token = self._db.pool_runtime(pool).reload_token
        revision = _hash((launch.argv, sorted(launch.env.items()), reload_token))
        vram_bytes, vram_text = self._vram(spec, model_path)
        return Target(spec, adapter, template, revision, vram_bytes, vram_text)

    def _vram(self, spec: PoolSpec, model_path: Path) -> tuple[int, str]:
        if spec.gpus.count == 0:
            return 0, ""
        if spec.gpus.vram_mib is not None:
            amount = spec.gpus.vram_mib * 1024 * 1024
            return amount, f"{format_bytes(amount)} (set in the pool's gpus.vramMiB)"
        cache_k, cache_v = cache_types_from_args(spec.engine_args)
        estimate = estimate_llamacpp(
            model_path, context_total=spec.context * spec.slots, cache_type_k=cache_k, cache_type_v=cache_v
        )
        return estimate.total_bytes, estimate.describe()

    def _blocker(self, spec: PoolSpec) -> tuple[str, str, float | None] | None:
        """Why the pool cannot run at all right now: (reason, message, when to look again)."""
        try:
            adapter_for(spec.engine)
        except UnsupportedEngine as exc:
            return "UnsupportedEngine", str(exc), None
        if spec.endpoint is not None:
            return None
        try:
            self._engine_binary(spec.engine)
        except ProvisionError as exc:
            return "EngineNotInstalled", str(exc), 30.0
        model = self._db.get_status(f"Model/{spec.model}")
        if self._store.get(f"Model/{spec.model}") is None:
            return "ModelNotFound", f"no Model named {spec.model!r}", 5.0
        if model is None or not is_true(model.get("conditions", []), "Ready"):
            return "ModelNotReady", f"Model {spec.model!r} is not Ready yet", 1.0
        if model.get("lifecycle") == "Retired":
            return "ModelRetired", f"Model {spec.model!r} is Retired", None
        return None

    # -- one replica, one step -------------------------------------------------------------------

    def _step(
        self, key: str, pool: str, state: ReplicaState, *, surge: bool, target: Target | None = None
    ) -> float:
        """Move one replica one step; returns how soon to look at it again.

        A surge replica (the new revision of a rolling update) that crashes or misses its
        startup deadline before it was ever Ready fails the rollout instead of crash-looping.
        """
        if state.template is None:
            return self._step_endpoint(key, pool, state)
        now = time.time()
        worker = state.worker
        if worker is not None and not worker.alive and not worker.stopping:
            if surge and not state.ever_ready:
                state.rollout_failure = f"{worker.exit_reason()} before it was ready"
                state.log_tail = tail(worker.log_path)
                return 0.0
            self._crashed(key, state, worker.exit_reason(), now)
            worker = None
        if worker is None:
            if now < state.next_start_at:
                state.phase = "BackOff"
                return state.next_start_at - now
            return self._start(key, pool, state, target)
        if state.phase == "Starting":
            return self._probe_startup(key, pool, state, now, surge)
        return self._liveness(key, state, now)

    def _probe_startup(self, key: str, pool: str, state: ReplicaState, now: float, surge: bool) -> float:
        assert state.worker is not None and state.template is not None and state.upstream is not None
        if state.adapter.healthy(self._http, state.upstream):
            state.phase, state.ready_at, state.ever_ready, state.liveness_failures = "Ready", now, True, 0
            state.reason = ""
            self._register(pool, state)
            self._db.record_event(key, "Normal", "Ready", f"replica {state.id} is ready on port {state.port}")
            return LIVENESS_PERIOD_SECONDS
        timeout = state.template.spec.startup_timeout_seconds
        if now - state.worker.started_at <= timeout:
            return STARTING_PROBE_SECONDS
        message = f"replica {state.id} not ready after {timeout:.0f}s"
        if surge and not state.ever_ready:
            state.rollout_failure = f"not ready within its {timeout:.0f}s startup deadline"
            state.log_tail = tail(state.worker.log_path)
            return 0.0
        self._db.record_event(key, "Warning", "Unhealthy", message)
        self._stop_worker(state)
        self._crashed(key, state, message, now)
        return max(0.0, state.next_start_at - now)

    def _liveness(self, key: str, state: ReplicaState, now: float) -> float:
        assert state.upstream is not None
        if state.adapter.healthy(self._http, state.upstream):
            state.liveness_failures = 0
            if (
                state.ready_at is not None
                and now - state.ready_at > self._config.supervision.reset_after_seconds
            ):
                state.restarts = 0
            return LIVENESS_PERIOD_SECONDS
        state.liveness_failures += 1
        if state.liveness_failures < LIVENESS_FAILURES:
            return 1.0
        message = f"replica {state.id} failed {LIVENESS_FAILURES} health checks in a row; restarting"
        self._db.record_event(key, "Warning", "Unhealthy", message)
        self._stop_worker(state)
        self._crashed(key, state, message, now)
        return max(0.0, state.next_start_at - now)

    def _step_endpoint(self, key: str, pool: str, state: ReplicaState) -> float:
        """An engine someone else runs: ready while it answers its health check, never spawned."""
        assert state.upstream is not None
        healthy = state.adapter.healthy(self._http, state.upstream)
        if healthy and state.phase != "Ready":
            state.phase, state.ready_at, state.reason = "Ready", time.time(), ""
            self._register(pool, state)
            self._db.record_event(key, "Normal", "Ready", f"endpoint {state.upstream.base_url} is ready")
        elif not healthy and state.phase != "NotReady":
            was_ready = state.phase == "Ready"
            state.phase, state.reason = (
                "NotReady",
                f"{state.upstream.base_url} does not answer its health check",
            )
            self._registry.remove(state.id)
            if was_ready:
                self._db.record_event(key, "Warning", "Unhealthy", state.reason)
        return LIVENESS_PERIOD_SECONDS if healthy else 2.0

    def _start(self, key: str, pool: str, state: ReplicaState, target: Target | None) -> float:
        assert state.template is not None
        spec = state.template.spec
        assignment = GpuAssignment()
        gpus: tuple[Gpu, ...] = ()
        per_gpu: tuple[int, ...] = ()
        if spec.gpus.count > 0:
            vram = target.vram_bytes if target is not None else sum(state.vram_per_gpu)
            decision = self._place(pool, state, spec, vram)
            if self._on_placement is not None:
                self._on_placement(not isinstance(decision, Unschedulable), bool(spec.gpus.devices))
            if isinstance(decision, Unschedulable):
                state.phase = "Pending"
                if state.reason != decision.message:
                    self._db.record_event(
                        key, "Warning", "FailedScheduling", f"replica {state.id}: {decision.message}"
                    )
                state.reason = decision.message
                return UNSCHEDULABLE_RETRY_SECONDS
            assignment = _assignment(decision.gpus, decision.tensor_split)
            gpus, per_gpu = decision.gpus, decision.bytes_per_gpu
        port = free_port()
        template = _with(state.template, port=port, gpus=assignment)
        launch = state.adapter.launch(template)
        where = ", ".join(f"GPU{g.index} {g.name}" for g in gpus) or "cpu"
        self._db.record_event(key, "Normal", "Scheduled", f"replica {state.id} assigned to {where}")
        log_path = self._logs_dir / pool / f"{state.id}.log"
        worker = spawn(launch.argv, env=launch.env, log_path=log_path, on_exit=self._exit_callback(key))
        state.template, state.worker, state.upstream = template, worker, _loopback(spec, port)
        state.assignment, state.gpus, state.vram_per_gpu = assignment, gpus, per_gpu
        state.phase, state.reason, state.ready_at, state.liveness_failures = "Starting", "", None, 0
        self._db.save_worker(
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
        self._db.record_event(
            key, "Normal", "Started", f"replica {state.id} started (pid {worker.pid}, port {port})"
        )
        log.info("%s: started replica %s pid %d port %d on %s", key, state.id, worker.pid, port, where)
        return STARTING_PROBE_SECONDS

    def _place(
        self, pool: str, state: ReplicaState, spec: PoolSpec, vram_bytes: int
    ) -> Placement | Unschedulable:
        """Place on GPUs by free VRAM, counting what every other live replica has reserved."""
        with self._lock:
            others = [
                s
                for replicas in self._replicas.values()
                for s in replicas.values()
                if s is not state and s.worker is not None and s.worker.alive
            ]
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
        return place(self._inventory.gpus(), reservations, request)

    def _register(self, pool: str, state: ReplicaState) -> None:
        assert state.upstream is not None
        state.engine_version = state.adapter.version(self._http, state.upstream)
        state.context = state.adapter.context_per_slot(self._http, state.upstream)
        spec = state.template.spec if state.template is not None else self._spec_of(pool)
        if spec is not None and state.context is not None and state.context < spec.context:
            self._db.record_event(
                f"Pool/{pool}",
                "Warning",
                "ContextCapped",
                f"replica {state.id}: the engine gives each sequence {state.context} tokens of "
                f"context, less than spec.context {spec.context}; tasks are held to {state.context}",
            )
        self._registry.add(
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

    def _spec_of(self, pool: str) -> PoolSpec | None:
        entry = self._store.get(f"Pool/{pool}")
        return entry.obj.spec if entry is not None and isinstance(entry.obj, Pool) else None

    def _crashed(self, key: str, state: ReplicaState, reason: str, now: float) -> None:
        """The replica is gone (exited or killed for failing probes): schedule a restart with backoff."""
        worker = state.worker
        self._registry.remove(state.id)
        if worker is not None:
            state.log_tail = tail(worker.log_path)
            self._db.delete_worker(state.id)
        if state.ready_at is not None and now - state.ready_at > self._config.supervision.reset_after_seconds:
            state.restarts = 0
        state.restarts += 1
        state.worker, state.phase, state.ready_at = None, "BackOff", None
        state.last_exit = worker.exit_reason() if worker is not None else ""
        state.last_error = reason
        delay = self._restart_delay(state.restarts)
        state.next_start_at = now + delay
        self._db.record_event(
            key,
            "Warning",
            "BackOff",
            f"replica {state.id} {reason}; restart {state.restarts} in {delay:.0f}s",
        )
        log.warning("%s: replica %s %s; restarting in %.1fs", key, state.id, reason, delay)

    def _restart_delay(self, restarts: int) -> float:
        """The first restart is immediate; then initial, doubling, capped, like kubelet's CrashLoopBackOff."""
        if restarts <= 1:
            return 0.0
        backoff = self._config.supervision.restart_backoff
        return float(min(backoff.initial_seconds * 2 ** (restarts - 2), backoff.max_seconds))

    # -- stopping --------------------------------------------------------------------------------

    def _drain(self, key: str, state: ReplicaState, why: str, deadline: float | None = None) -> bool:
        """Stop new work to the replica; stop it once idle or past its deadline. True when stopped.

        Tasks still running at the deadline end with POOL_DRAINED before the process goes.
        """
        if state.worker is None or not state.worker.alive:
            self._registry.remove(state.id)
            if state.worker is not None:
                self._db.delete_worker(state.id)
            return True
        now = time.time()
        if state.drain_deadline is None:
            state.drain_deadline = deadline or now + self._config.supervision.drain_grace_seconds
            state.phase = "Terminating"
            self._registry.set_draining(state.id)
        if self._registry.busy(state.id) > 0 and now < state.drain_deadline:
            return False
        if self._registry.busy(state.id) > 0:
            self._registry.evict(
                state.id, ControllerError(ErrorCode.POOL_DRAINED, f"replica {state.id} stopped: {why}")
            )
        self._db.record_event(key, "Normal", "Killing", f"stopping replica {state.id}: {why}")
        self._stop_worker(state)
        return True

    def _stop_worker(self, state: ReplicaState) -> None:
        self._registry.remove(state.id)
        worker = state.worker
        if worker is None:
            return
        worker.stop(self._config.supervision.stop_grace_seconds)
        self._db.delete_worker(state.id)
        state.worker = None
        # Capacity freed on a GPU may let a Pending replica of another pool fit now.
        if state.gpus:
            with self._lock:
                pools = [name for name, replicas in self._replicas.items() if replicas]
            for pool in pools:
                self._enqueue(f"Pool/{pool}")

    def _reconcile_draining(
        self,
        name: str,
        key: str,
        spec: PoolSpec,
        runtime: PoolRuntime,
        status: dict[str, Any],
        conditions: list[dict[str, Any]],
        replicas: dict[str, ReplicaState],
    ) -> Result:
        for state in list(replicas.values()):
            if state.template is None:
                self._registry.remove(state.id)
                replicas.pop(state.id, None)
            elif self._drain(key, state, "the pool is draining", deadline=runtime.drain_deadline):
                replicas.pop(state.id, None)
        drained = not replicas
        message = "all replicas stopped" if drained else f"{len(replicas)} replica(s) finishing their tasks"
        conditions = set_condition(conditions, "Ready", False, "Drained" if drained else "Draining", message)
        conditions = set_condition(conditions, "Progressing", not drained, "Draining", message)
        conditions = set_condition(conditions, "Degraded", False, "Draining", "drained on request")
        if drained and (self._db.get_status(key) or {}).get("readyReplicas", 0):
            self._db.record_event(
                key, "Normal", "Drained", "every replica stopped; `llorchctl resume` restarts them"
            )
        self._finish(name, spec, status, conditions, replicas)
        return Result(requeue_after=None if drained else STARTING_PROBE_SECONDS)

    def _reconcile_deleted(self, name: str, key: str, replicas: dict[str, ReplicaState]) -> Result:
        for state in list(replicas.values()):
            if self._drain(key, state, "the pool was deleted"):
                replicas.pop(state.id, None)
        if replicas:
            return Result(requeue_after=STARTING_PROBE_SECONDS)
        with self._lock:
            self._replicas.pop(name, None)
        self._failed_revisions.pop(name, None)
        self._rollout_messages.pop(name, None)
        self._db.forget_object(key)
        return Result()

    # -- status --------------------------------------------------------------------------------

    def _conditions(
        self,
        pool: str,
        conditions: list[dict[str, Any]],
        spec: PoolSpec,
        replicas: dict[str, ReplicaState],
        revision: str,
        failed: str | None,
    ) -> list[dict[str, Any]]:
        ready = sum(1 for s in replicas.values() if s.phase == "Ready" and s.index < spec.replicas)
        settling = (
            any(
                s.revision != revision or s.index >= spec.replicas or s.phase in ("Starting", "Terminating")
                for s in replicas.values()
            )
            or len({s.index for s in replicas.values()}) != spec.replicas
        )
        if failed == revision:
            settling = False
        conditions = set_condition(
            conditions,
            "Ready",
            ready == spec.replicas,
            "AllReplicasReady" if ready == spec.replicas else "ReplicasNotReady",
            f"{ready}/{spec.replicas} replicas ready",
        )
        conditions = set_condition(
            conditions,
            "Progressing",
            settling,
            "ReplicasChanging" if settling else "Stable",
            f"{len(replicas)} replica(s) present, {spec.replicas} wanted",
        )
        crashing = [s for s in replicas.values() if s.phase == "BackOff"]
        pending = [s for s in replicas.values() if s.phase == "Pending" and s.reason]
        not_ready = [s for s in replicas.values() if s.phase == "NotReady"]
        if failed == revision:
            return set_condition(conditions, "Degraded", True, "RolloutFailed", self._rollout_message(pool))
        if crashing:
            worst = max(crashing, key=lambda s: s.restarts)
            message = f"replica {worst.id} restarted {worst.restarts} time(s): {worst.last_error}"
            return set_condition(conditions, "Degraded", True, "CrashLoopBackOff", message)
        if pending:
            return set_condition(conditions, "Degraded", True, "Unschedulable", pending[0].reason)
        if not_ready:
            return set_condition(conditions, "Degraded", True, "EndpointNotReady", not_ready[0].reason)
        return set_condition(conditions, "Degraded", False, "Healthy", "")

    def _finish(
        self,
        name: str,
        spec: PoolSpec,
        status: dict[str, Any],
        conditions: list[dict[str, Any]],
        replicas: dict[str, ReplicaState],
    ) -> None:
        # Slot use changes per task, not per reconcile: the API reads it live from the registry.
        states = sorted(replicas.values(), key=lambda s: (s.index, s.id))
        status["readyReplicas"] = sum(1 for s in states if s.phase == "Ready" and s.index < spec.replicas)
        status["replicaStatuses"] = [s.to_wire(spec.slots) for s in states]
        status["slotsTotal"] = spec.slots * status["readyReplicas"]
        status["conditions"] = conditions
        self._db.put_status(f"Pool/{name}", status)


def _hash(value: object) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]


def _with(template: LaunchRequest, *, port: int, gpus: GpuAssignment) -> LaunchRequest:
    return LaunchRequest(
        binary=template.binary,
        model_path=template.model_path,
        model_name=template.model_name,
        port=port,
        spec=template.spec,
        gpus=gpus,
    )


def _assignment(gpus: tuple[Gpu, ...], tensor_split: tuple[float, ...]) -> GpuAssignment:
    return GpuAssignment(
        indexes=tuple(g.index for g in gpus),
        tensor_split=tensor_split,
        total_mib=tuple(g.total_bytes // (1024 * 1024) for g in gpus),
    )


def _loopback(spec: PoolSpec, port: int) -> Upstream:
    return Upstream(base_url=f"http://127.0.0.1:{port}", model=spec.model)


def _endpoint_upstream(spec: PoolSpec) -> Upstream:
    assert spec.endpoint is not None
    headers: tuple[tuple[str, str], ...] = ()
    if spec.endpoint.auth_header_env:
        value = os.environ.get(spec.endpoint.auth_header_env, "")
        if value:
            headers = (("Authorization", value),)
    return Upstream(
        base_url=spec.endpoint.url.rstrip("/"),
        model=spec.endpoint.served_model or spec.model,
        headers=headers,
    )
