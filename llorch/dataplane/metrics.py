"""Prometheus metrics of one llorchd: the contract's names, on a registry of the daemon's own.

Two kinds of series, kept apart on purpose:

* **Events** (counters, histograms) are counted where they happen: a task admitted, rejected,
  started, canceled, finished; a placement decision; a weights check. `Metrics` has one method per
  event, so call sites stay one line and the label names live here only.
* **State** (queue depth, slots, GPUs, model lifecycle) is read from the live objects when Prometheus
  scrapes, by the collectors below, so a gauge can never drift from what it describes.

Every label value is bounded: pool, replica, model and GPU names, error codes, enums. Never a task
or session id. Each `Metrics` owns a fresh `CollectorRegistry` (never the process-wide default), so
tests and several daemons in one process do not collide; the daemon's also carries prometheus_client's
process, platform and GC collectors. Names follow Prometheus' conventions (the `llorch_` namespace,
base units, `_total` only on counters); contracts/metrics.yaml lists every family.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Concatenate, ParamSpec, Protocol, TypeVar, get_args

import httpx
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from llorch.dataplane.admission import PRIORITIES
from llorch.dataplane.errors import DataplaneError
from llorch.dataplane.tasks import Task
from llorch.resources import Model, Pool
from llorch.resources.errors import ErrorCode
from llorch.resources.model import Lifecycle
from llorch.resources.status import ReplicaPhase
from llorch.resources.version import package_version
from llorch.runtime.gpus import GpuInventory
from llorch.runtime.registry import Replica, ReplicaRegistry
from llorch.store.manifests import ManifestStore

log = logging.getLogger("llorch.dataplane")

# Seconds. First token: a millisecond (warm cache, empty queue) to a minute (deep queue, cold load).
FIRST_TOKEN_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Decode of a whole answer runs longer than a first token; up to five minutes.
DECODE_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)

# Seconds, spawn to Ready: a tiny model on a CPU in well under a second, a large one on a GPU minutes.
COLD_START_BUCKETS_S = (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
REPLICA_PHASES = get_args(ReplicaPhase)

# (pool, priority) -> tasks waiting.
QueueDepths = Callable[[], Mapping[tuple[str, str], int]]

P = ParamSpec("P")
R = TypeVar("R")


class Metrics:
    """The daemon's metrics. Methods are cheap and thread-safe (prometheus_client locks per child)."""

    def __init__(
        self,
        *,
        registry: CollectorRegistry | None = None,
        inventory: GpuInventory | None = None,
        process: bool = False,
    ) -> None:
        """`process`: add prometheus_client's process, platform and GC collectors (the daemon's
        registry; tests leave them out, they describe the test runner)."""
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        if process:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)
        Gauge("llorch_build_info", "Always 1: which llorch serves.", ["version"], registry=r).labels(
            package_version()
        ).set(1)
        self.tasks_enqueued = Counter(
            "llorch_tasks_enqueued_total", "Tasks admitted to a pool's queue.", ["pool_id"], registry=r
        )
        self.tasks_started = Counter(
            "llorch_tasks_started_total",
            "Tasks handed to a replica slot.",
            ["pool_id", "replica_id", "engine"],
            registry=r,
        )
        self.tasks_canceled = Counter(
            "llorch_tasks_canceled_total",
            "Tasks ended before their answer was complete, by reason "
            "(client|cancel|drain|shutdown|deadline|activation).",
            ["pool_id", "reason"],
            registry=r,
        )
        self.tasks_rejected = Counter(
            "llorch_tasks_rejected_total",
            "Tasks refused at admission, by error code.",
            ["pool_id", "reason"],
            registry=r,
        )
        self.tasks_failed = Counter(
            "llorch_tasks_failed_total",
            "Tasks that started and ended with an error frame, by error code.",
            ["pool_id", "code"],
            registry=r,
        )
        self.tokens_in = Counter(
            "llorch_tokens_in_total", "Prompt tokens of finished tasks.", ["pool_id"], registry=r
        )
        self.tokens_out = Counter(
            "llorch_tokens_out_total", "Tokens streamed to clients.", ["pool_id"], registry=r
        )
        self.latency_first_token = Histogram(
            "llorch_latency_first_token_seconds",
            "Admission to first token, queueing included, of tasks that finished.",
            ["pool_id"],
            buckets=FIRST_TOKEN_BUCKETS_S,
            registry=r,
        )
        self.latency_decode = Histogram(
            "llorch_latency_decode_seconds",
            "First token to last token of tasks that finished.",
            ["pool_id"],
            buckets=DECODE_BUCKETS_S,
            registry=r,
        )
        self.backpressure = Counter(
            "llorch_admission_backpressure_events_total",
            "Admission decisions taken because a pool's queue was full, by overflow policy.",
            ["pool_id", "policy"],
            registry=r,
        )
        self.placements = Counter(
            "llorch_placement_decisions_total",
            "GPU placement decisions for replicas (outcome placed|unschedulable).",
            ["outcome", "pinned", "fallback"],
            registry=r,
        )
        self.verifications = Counter(
            "llorch_catalog_verifications_total",
            "Model weights checks (result ok|mismatch|missing|untrusted).",
            ["result", "reason"],
            registry=r,
        )
        self.activations = Counter(
            "llorch_pool_activations_total",
            "Autoscaled pools started from zero because a task came.",
            ["pool_id"],
            registry=r,
        )
        self.evictions = Counter(
            "llorch_pool_evictions_total",
            "Idle replicas stopped to make room for another pool, by reason.",
            ["pool_id", "reason"],
            registry=r,
        )
        self.cold_starts = Histogram(
            "llorch_pool_cold_start_seconds",
            "A replica's spawn to Ready.",
            ["pool_id"],
            buckets=COLD_START_BUCKETS_S,
            registry=r,
        )
        self.restarts = Counter(
            "llorch_replica_restarts_total",
            "Replica restarts scheduled after a crash, a failed probe or a hang (CrashLoopBackOff).",
            ["pool_id"],
            registry=r,
        )
        if inventory is not None:
            r.register(GpuCollector(inventory))

    # -- data plane events ----------------------------------------------------------------------

    def enqueued(self, pool: str) -> None:
        self.tasks_enqueued.labels(pool).inc()

    def rejected(self, pool: str, code: str) -> None:
        self.tasks_rejected.labels(pool, code).inc()

    def backpressured(self, pool: str, policy: str) -> None:
        self.backpressure.labels(pool, policy).inc()

    def canceled(self, pool: str, reason: str) -> None:
        self.tasks_canceled.labels(pool, reason).inc()

    def started(self, pool: str, replica_id: str, engine: str) -> Counter:
        """Count a start; returns the pool's `tokens_out` child, for one `.inc()` per token."""
        self.tasks_started.labels(pool, replica_id, engine).inc()
        return self.tokens_out.labels(pool)

    def ended(self, task: Task) -> None:
        """A task's run is over: prompt tokens and latencies from its `end` frame, the code from
        its `error` frame (a cancel is counted by its own reason, not here)."""
        with task.changed:
            last = task.frames[-1] if task.finished and task.frames else None
        if last is None:
            return
        data = last.data
        if last.event == "error":
            code = data.get("code")
            if isinstance(code, str) and code != ErrorCode.CANCELED:
                self.tasks_failed.labels(task.pool, code).inc()
            return
        if last.event != "end":
            return
        tokens_in = data.get("tokens_in")
        if isinstance(tokens_in, int) and tokens_in > 0:
            self.tokens_in.labels(task.pool).inc(tokens_in)
        if not data.get("tokens_out"):
            return  # no token came: neither latency means anything
        ttft, decode = data.get("ttft_ms"), data.get("decode_ms")
        if isinstance(ttft, int | float):
            self.latency_first_token.labels(task.pool).observe(ttft / 1000)
        if isinstance(decode, int | float):
            self.latency_decode.labels(task.pool).observe(decode / 1000)

    # -- control plane events (passed to the controllers as callbacks) --------------------------

    def placement(self, placed: bool, pinned: bool) -> None:
        """llorch never falls back from a pin it cannot honour, so `fallback` is always "false"."""
        self.placements.labels("placed" if placed else "unschedulable", _bool(pinned), "false").inc()

    def verification(self, result: str, reason: str) -> None:
        self.verifications.labels(result, reason).inc()

    def activation(self, pool: str) -> None:
        self.activations.labels(pool).inc()

    def eviction(self, pool: str, reason: str) -> None:
        self.evictions.labels(pool, reason).inc()

    def cold_start(self, pool: str, seconds: float) -> None:
        self.cold_starts.labels(pool).observe(seconds)

    def restart(self, pool: str) -> None:
        self.restarts.labels(pool).inc()

    def watch_replicas(self, phases: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        """Expose replicas per pool and phase, read from the controller on every scrape."""
        self.registry.register(ReplicaPhaseCollector(phases))

    # -- state, read on scrape ------------------------------------------------------------------

    def watch(self, *, store: ManifestStore, replicas: ReplicaRegistry, queue_depths: QueueDepths) -> None:
        """Expose queue depths, slots, model states and what each engine says of itself, read
        from these objects (and the engines) on every scrape."""
        self.registry.register(StateCollector(store, replicas, queue_depths))
        self.registry.register(EngineCollector(replicas))


class _Measured(Protocol):
    @property
    def metrics(self) -> Metrics | None: ...


S = TypeVar("S", bound=_Measured)


# A full queue refuses with the code of the Policy's overflow rule.
BACKPRESSURE = {ErrorCode.ADMISSION_REJECT: "reject", ErrorCode.QUEUE_FULL_DROP_LRU: "drop-lru"}


def counts_admission(submit: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Decorates `TaskService.submit`: llorch_tasks_enqueued_total when it returns; when it raises
    a DataplaneError, llorch_tasks_rejected_total{reason=code} (and a backpressure event for a
    full queue).

    `submit` takes the resolved Pool as the keyword `pool`, so its name is always a bounded label.
    """

    @functools.wraps(submit)
    def counted(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        metrics = self.metrics
        pool = kwargs.get("pool")
        if metrics is None or not isinstance(pool, Pool):
            return submit(self, *args, **kwargs)
        name = pool.metadata.name
        try:
            admitted = submit(self, *args, **kwargs)
        except DataplaneError as exc:
            metrics.rejected(name, exc.code)
            if exc.code in BACKPRESSURE:
                metrics.backpressured(name, BACKPRESSURE[exc.code])
            raise
        metrics.enqueued(name)
        return admitted

    return counted


class StateCollector(Collector):
    """Queue depth, slots and model state, computed from the live objects."""

    def __init__(self, store: ManifestStore, replicas: ReplicaRegistry, queue_depths: QueueDepths) -> None:
        self._store = store
        self._replicas = replicas
        self._queue_depths = queue_depths

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        queue, busy, total, model = self._families()
        depths = dict(self._queue_depths())
        for entry in self._store.entries("Pool"):
            if isinstance(entry.obj, Pool):
                for priority in PRIORITIES:
                    depths.setdefault((entry.obj.metadata.name, priority), 0)
        for (pool, priority), depth in sorted(depths.items()):
            queue.add_metric([pool, priority], depth)
        for replica in self._replicas.replicas():
            busy.add_metric([replica.pool, replica.id], replica.busy)
            total.add_metric([replica.pool, replica.id], replica.slots)
        for entry in self._store.entries("Model"):
            if isinstance(entry.obj, Model):
                current = entry.obj.spec.lifecycle
                for state in Lifecycle:
                    model.add_metric([entry.obj.metadata.name, state.value], 1 if state is current else 0)
        return [queue, busy, total, model]

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(
                "llorch_queue_depth",
                "Tasks waiting for a slot, per pool and priority.",
                labels=["pool_id", "priority"],
            ),
            GaugeMetricFamily(
                "llorch_replica_slots_busy",
                "Slots of a replica leased to running tasks.",
                labels=["pool_id", "replica_id"],
            ),
            GaugeMetricFamily(
                "llorch_replica_slots",
                "Slots (parallel sequences) of a ready replica.",
                labels=["pool_id", "replica_id"],
            ),
            GaugeMetricFamily(
                "llorch_model_state",
                "1 for a Model's current lifecycle state (Active|Retired), 0 for the other.",
                labels=["model_id", "state"],
            ),
        ]


class ReplicaPhaseCollector(Collector):
    """llorch_replicas{pool_id,phase}: every phase of every pool with replicas, 0 where none."""

    def __init__(self, phases: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        self._phases = phases

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        family = self._family()
        counts = dict(self._phases())
        for pool in sorted({pool for pool, _ in counts}):
            for phase in REPLICA_PHASES:
                family.add_metric([pool, phase], counts.get((pool, phase), 0))
        return [family]

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "llorch_replicas", "Replicas per pool and phase.", labels=["pool_id", "phase"]
        )


class EngineCollector(Collector):
    """llorch_engine_up and llorch_kv_cache_usage_ratio per registered replica.

    Up is 1 while the replica serves and 0 once the data plane found its engine silent mid-task
    (its controller restarts it). KV cache use is the engine's own numbers, asked for on each
    scrape (llama-server's /metrics or /slots, vLLM's /metrics); no sample where the engine
    does not say (TGI, Triton).
    """

    def __init__(self, replicas: ReplicaRegistry) -> None:
        self._replicas = replicas
        self._http = httpx.Client()

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        up, kv = self._families()
        for replica in self._replicas.replicas():
            labels = [replica.pool, replica.id, replica.engine]
            up.add_metric(labels, 0 if replica.unhealthy else 1)
            usage = self._kv_usage(replica)
            if usage is not None:
                kv.add_metric(labels, usage)
        return [up, kv]

    def _kv_usage(self, replica: Replica) -> float | None:
        try:
            return replica.adapter.kv_cache_usage(self._http, replica.upstream)
        except Exception:  # a scrape must not fail because one engine answered oddly
            log.exception("replica %s: reading its KV cache use failed during a metrics scrape", replica.id)
            return None

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        labels = ["pool_id", "replica_id", "engine"]
        return [
            GaugeMetricFamily(
                "llorch_engine_up",
                "1 while a registered replica's engine serves, 0 once found hung.",
                labels=labels,
            ),
            GaugeMetricFamily(
                "llorch_kv_cache_usage_ratio",
                "Fraction of the replica's KV cache in use (0-1), as its engine reports it.",
                labels=labels,
            ),
        ]


class GpuCollector(Collector):
    """Utilization and memory per GPU, as NVML reports them now; nothing on a CPU box."""

    def __init__(self, inventory: GpuInventory) -> None:
        self._inventory = inventory

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        utilization, used, total = self._families()
        try:
            gpus = self._inventory.gpus()
        except Exception:  # a scrape must not fail because NVML did
            log.exception("GPU inventory failed during a metrics scrape")
            gpus = []
        for gpu in gpus:
            device = str(gpu.index)
            if gpu.utilization_pct is not None:
                utilization.add_metric([device], gpu.utilization_pct / 100)
            used.add_metric([device], gpu.used_bytes)
            total.add_metric([device], gpu.total_bytes)
        return [utilization, used, total]

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(
                "llorch_gpu_utilization_ratio",
                "Fraction of the last sample period the GPU was busy (0-1), per NVML index.",
                labels=["device"],
            ),
            GaugeMetricFamily(
                "llorch_vram_used_bytes", "GPU memory in use, per NVML index.", labels=["device"]
            ),
            GaugeMetricFamily(
                "llorch_vram_total_bytes", "GPU memory in all, per NVML index.", labels=["device"]
            ),
        ]


def _bool(value: bool) -> str:
    return "true" if value else "false"
