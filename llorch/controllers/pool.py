"""The Pool controller: make the running replicas match the Pool's spec.

Each reconcile looks at every replica once and moves it one step: spawn, probe, register,
restart after a crash (with backoff), replace when the launch changed, drain and stop extras.
Replica processes report their exit through a callback that enqueues the pool, so a crash
is handled at once rather than at the next resync.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from llorch.controllers.conditions import set_condition
from llorch.controllers.manager import Result
from llorch.controllers.model import spec_hash
from llorch.resources import Pool, PoolSpec, ServerConfig
from llorch.runtime.engines import UnsupportedEngine, adapter_for
from llorch.runtime.engines.base import EngineAdapter, LaunchRequest, Upstream
from llorch.runtime.ports import free_port
from llorch.runtime.process import WorkerProcess, command_hash, spawn, tail
from llorch.runtime.registry import Replica, ReplicaRegistry
from llorch.store.db import StateDB, WorkerRecord
from llorch.store.manifests import ManifestStore

log = logging.getLogger("llorch.controllers")

STARTING_PROBE_SECONDS = 0.2
LIVENESS_PERIOD_SECONDS = 5.0
LIVENESS_FAILURES = 3


@dataclass
class ReplicaState:
    id: str
    index: int
    launch_hash: str = ""
    worker: WorkerProcess | None = None
    port: int = 0
    phase: str = "Pending"  # Pending | Starting | Ready | BackOff | Terminating
    restarts: int = 0
    last_error: str = ""
    last_exit: str = ""
    log_tail: list[str] = field(default_factory=list)
    next_start_at: float = 0.0
    ready_at: float | None = None
    liveness_failures: int = 0
    drain_deadline: float | None = None

    def to_wire(self, busy: int, slots: int) -> dict[str, Any]:
        worker = self.worker
        return {
            "id": self.id,
            "index": self.index,
            "phase": self.phase,
            "pid": worker.pid if worker is not None and worker.returncode is None else None,
            "port": self.port or None,
            "url": f"http://127.0.0.1:{self.port}" if self.port else None,
            "restarts": self.restarts,
            "lastExit": self.last_exit or None,
            "lastError": self.last_error or None,
            "logTail": self.log_tail,
            "startedAt": worker.started_at if worker is not None else None,
            "readyAt": self.ready_at,
            "logPath": str(worker.log_path) if worker is not None else None,
            "slotsBusy": busy,
            "slots": slots,
        }


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
        logs_dir: Path,
        enqueue: Callable[[str], None],
    ) -> None:
        self._store = store
        self._db = db
        self._registry = registry
        self._config = config
        self._engine_binary = engine_binary
        self._logs_dir = logs_dir
        self._enqueue = enqueue
        self._replicas: dict[str, dict[str, ReplicaState]] = {}
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

    def shutdown(self) -> None:
        """Stop every replica (llorchd is exiting): nothing may be left running."""
        with self._lock:
            states = [s for replicas in self._replicas.values() for s in replicas.values()]
            self._replicas.clear()
        threads = [threading.Thread(target=self._stop_worker, args=(s,)) for s in states]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self._http.close()

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
        status: dict[str, Any] = {"observedGeneration": generation, "replicas": spec.replicas}
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
                self._db.record_event(key, "Warning", reason, message)
            status["blockedBy"] = reason
            self._finish(name, spec, status, conditions, replicas)
            return Result(requeue_after=requeue)

        adapter = adapter_for(spec.engine)
        model_path = Path(str((self._db.get_status(f"Model/{spec.model}") or {})["resolvedPath"]))
        binary = self._engine_binary(spec.engine)
        launch_hash = _launch_hash(adapter, binary, model_path, spec)

        waits: list[float] = []
        for index in range(spec.replicas):
            replica_id = f"{name}-{index}"
            state = replicas.setdefault(replica_id, ReplicaState(id=replica_id, index=index))
            wait = self._step(key, name, spec, adapter, binary, model_path, launch_hash, state)
            if wait is not None:
                waits.append(wait)
        for state in list(replicas.values()):
            if state.index >= spec.replicas:
                wait = self._scale_down(key, state, replicas)
                if wait is not None:
                    waits.append(wait)

        conditions = self._conditions(conditions, spec, replicas)
        self._finish(name, spec, status, conditions, replicas)
        return Result(requeue_after=min(waits) if waits else LIVENESS_PERIOD_SECONDS)

    def _blocker(self, spec: PoolSpec) -> tuple[str, str, float | None] | None:
        """Why the pool cannot run at all right now: (reason, message, when to look again)."""
        try:
            adapter_for(spec.engine)
        except UnsupportedEngine as exc:
            return "UnsupportedEngine", str(exc), None
        if spec.endpoint is not None:
            return "UnsupportedEndpoint", "pools with endpoint: are not driven by this build yet", None
        if spec.gpus.count > 0:
            return (
                "Unschedulable",
                f"needs {spec.gpus.count} GPU(s); GPU placement is not in this build",
                None,
            )
        model = self._db.get_status(f"Model/{spec.model}")
        if self._store.get(f"Model/{spec.model}") is None:
            return "ModelNotFound", f"no Model named {spec.model!r}", 5.0
        if model is None or not any(
            c["type"] == "Ready" and c["status"] == "True" for c in model.get("conditions", [])
        ):
            return "ModelNotReady", f"Model {spec.model!r} is not Ready yet", 1.0
        if model.get("lifecycle") == "Retired":
            return "ModelRetired", f"Model {spec.model!r} is Retired", None
        return None

    def _step(
        self,
        key: str,
        pool: str,
        spec: PoolSpec,
        adapter: EngineAdapter,
        binary: Path,
        model_path: Path,
        launch_hash: str,
        state: ReplicaState,
    ) -> float | None:
        """Move one wanted replica one step; returns how soon to look again (None: liveness period)."""
        now = time.time()
        worker = state.worker
        if worker is not None and worker.returncode is not None and not worker.stopping:
            self._crashed(key, state, f"{worker.exit_reason()}", now)
            worker = None
        if worker is None:
            if now < state.next_start_at:
                state.phase = "BackOff"
                return state.next_start_at - now
            self._start(key, pool, spec, adapter, binary, model_path, launch_hash, state)
            return STARTING_PROBE_SECONDS
        if state.launch_hash != launch_hash:
            return self._replace(key, state)
        if state.phase == "Starting":
            if adapter.healthy(self._http, _upstream(spec, state.port)):
                state.phase, state.ready_at, state.liveness_failures = "Ready", now, 0
                self._registry.add(
                    Replica(
                        id=state.id,
                        pool=pool,
                        engine=spec.engine.value,
                        upstream=_upstream(spec, state.port),
                        slots=spec.slots,
                        adapter=adapter,
                    )
                )
                self._db.record_event(
                    key, "Normal", "Ready", f"replica {state.id} is ready on port {state.port}"
                )
                return None
            if now - worker.started_at > spec.startup_timeout_seconds:
                message = f"replica {state.id} not ready after {spec.startup_timeout_seconds:.0f}s"
                self._db.record_event(key, "Warning", "Unhealthy", message)
                self._stop_worker(state)
                self._crashed(key, state, message, now)
                return max(0.0, state.next_start_at - now)
            return STARTING_PROBE_SECONDS
        return self._liveness(key, spec, adapter, state, now)

    def _liveness(
        self, key: str, spec: PoolSpec, adapter: EngineAdapter, state: ReplicaState, now: float
    ) -> float | None:
        if adapter.healthy(self._http, _upstream(spec, state.port)):
            state.liveness_failures = 0
            if (
                state.ready_at is not None
                and now - state.ready_at > self._config.supervision.reset_after_seconds
            ):
                state.restarts = 0
            return None
        state.liveness_failures += 1
        if state.liveness_failures < LIVENESS_FAILURES:
            return 1.0
        message = f"replica {state.id} failed {LIVENESS_FAILURES} health checks in a row; restarting"
        self._db.record_event(key, "Warning", "Unhealthy", message)
        self._stop_worker(state)
        self._crashed(key, state, message, now)
        return max(0.0, state.next_start_at - now)

    def _start(
        self,
        key: str,
        pool: str,
        spec: PoolSpec,
        adapter: EngineAdapter,
        binary: Path,
        model_path: Path,
        launch_hash: str,
        state: ReplicaState,
    ) -> None:
        port = free_port()
        launch = adapter.launch(
            LaunchRequest(binary=binary, model_path=model_path, model_name=spec.model, port=port, spec=spec)
        )
        self._db.record_event(key, "Normal", "Scheduled", f"replica {state.id} assigned to cpu")
        log_path = self._logs_dir / pool / f"{state.id}.log"
        worker = spawn(launch.argv, env=launch.env, log_path=log_path, on_exit=lambda _: self._enqueue(key))
        state.worker, state.port, state.launch_hash = worker, port, launch_hash
        state.phase, state.ready_at, state.liveness_failures = "Starting", None, 0
        self._db.save_worker(
            WorkerRecord(
                replica_id=state.id,
                pool=pool,
                pid=worker.pid,
                create_time=worker.create_time,
                port=port,
                command_hash=command_hash(launch.argv, launch.env),
                log_path=str(log_path),
                started_at=worker.started_at,
            )
        )
        self._db.record_event(
            key, "Normal", "Started", f"replica {state.id} started (pid {worker.pid}, port {port})"
        )
        log.info("%s: started replica %s pid %d port %d", key, state.id, worker.pid, port)

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

    def _replace(self, key: str, state: ReplicaState) -> float | None:
        """The launch changed (model, context, slots, args): drain this replica and start it anew."""
        if not self._drain(key, state, "its launch changed"):
            return STARTING_PROBE_SECONDS
        state.drain_deadline = None
        state.restarts, state.next_start_at = 0, 0.0
        return 0.0

    def _scale_down(self, key: str, state: ReplicaState, replicas: dict[str, ReplicaState]) -> float | None:
        if not self._drain(key, state, "the pool scaled down"):
            return STARTING_PROBE_SECONDS
        replicas.pop(state.id, None)
        return None

    def _drain(self, key: str, state: ReplicaState, why: str) -> bool:
        """Stop new work to the replica; stop it once idle or past the grace period. True when stopped."""
        if state.worker is None:
            self._registry.remove(state.id)
            return True
        now = time.time()
        if state.drain_deadline is None:
            state.drain_deadline = now + self._config.supervision.drain_grace_seconds
            state.phase = "Terminating"
            self._registry.set_draining(state.id)
        if self._registry.busy(state.id) > 0 and now < state.drain_deadline:
            return False
        self._db.record_event(key, "Normal", "Killing", f"stopping replica {state.id}: {why}")
        self._stop_worker(state)
        state.worker, state.port, state.drain_deadline = None, 0, None
        return True

    def _stop_worker(self, state: ReplicaState) -> None:
        self._registry.remove(state.id)
        worker = state.worker
        if worker is None:
            return
        worker.stop(self._config.supervision.stop_grace_seconds)
        self._db.delete_worker(state.id)

    def _reconcile_deleted(self, name: str, key: str, replicas: dict[str, ReplicaState]) -> Result:
        waits = [w for s in list(replicas.values()) if (w := self._scale_down(key, s, replicas)) is not None]
        if replicas:
            return Result(requeue_after=min(waits) if waits else STARTING_PROBE_SECONDS)
        with self._lock:
            self._replicas.pop(name, None)
        self._db.forget_object(key)
        return Result()

    # -- status --------------------------------------------------------------------------------

    def _conditions(
        self, conditions: list[dict[str, Any]], spec: PoolSpec, replicas: dict[str, ReplicaState]
    ) -> list[dict[str, Any]]:
        ready = sum(1 for s in replicas.values() if s.phase == "Ready" and s.index < spec.replicas)
        crashing = [s for s in replicas.values() if s.phase == "BackOff"]
        settling = len(replicas) != spec.replicas or any(
            s.phase in ("Starting", "Terminating") for s in replicas.values()
        )
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
        if crashing:
            worst = max(crashing, key=lambda s: s.restarts)
            message = f"replica {worst.id} restarted {worst.restarts} time(s): {worst.last_error}"
            return set_condition(conditions, "Degraded", True, "CrashLoopBackOff", message)
        return set_condition(conditions, "Degraded", False, "Healthy", "")

    def _finish(
        self,
        name: str,
        spec: PoolSpec,
        status: dict[str, Any],
        conditions: list[dict[str, Any]],
        replicas: dict[str, ReplicaState],
    ) -> None:
        busy = {r.id: r.busy for r in self._registry.replicas(name)}
        states = sorted(replicas.values(), key=lambda s: s.index)
        status["readyReplicas"] = sum(1 for s in states if s.phase == "Ready")
        status["replicaStatuses"] = [s.to_wire(busy.get(s.id, 0), spec.slots) for s in states]
        status["slotsTotal"] = spec.slots * status["readyReplicas"]
        status["slotsBusy"] = sum(busy.values())
        status["conditions"] = conditions
        self._db.put_status(f"Pool/{name}", status)


def _upstream(spec: PoolSpec, port: int) -> Upstream:
    return Upstream(base_url=f"http://127.0.0.1:{port}", model=spec.model)


def _launch_hash(adapter: EngineAdapter, binary: Path, model_path: Path, spec: PoolSpec) -> str:
    """What a replica runs, minus its port: a change means the replica must be replaced."""
    launch = adapter.launch(
        LaunchRequest(binary=binary, model_path=model_path, model_name=spec.model, port=0, spec=spec)
    )
    return hashlib.sha256(repr((launch.argv, sorted(launch.env.items()))).encode()).hexdigest()[:16]
