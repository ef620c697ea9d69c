"""The control plane's Prometheus metrics: reconciles per controller and the work queue, named
and meant as controller-runtime's `controller_runtime_reconcile_*` and client-go's `workqueue_*`
(under llorch's namespace), on the daemon's registry."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Seconds. A reconcile that only reads state takes milliseconds; one that spawns or stops a
# process, or hashes weights, takes seconds.
RECONCILE_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# client-go's buckets for queue and work durations: 10^-8 s to 10 s, by factors of ten.
WORKQUEUE_BUCKETS_S = tuple(10.0**exponent for exponent in range(-8, 2))

# How a reconcile ended, as controller-runtime labels it.
RESULTS = ("success", "error", "requeue_after")


class ControlMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self._reconciles = Counter(
            "llorch_reconcile_total",
            "Reconciles per controller, by result (success|error|requeue_after).",
            ["controller", "result"],
            registry=registry,
        )
        self._errors = Counter(
            "llorch_reconcile_errors_total",
            "Reconciles that failed (retried with backoff, or left until the object changes).",
            ["controller"],
            registry=registry,
        )
        self._durations = Histogram(
            "llorch_reconcile_duration_seconds",
            "How long one reconcile took, per controller.",
            ["controller"],
            buckets=RECONCILE_BUCKETS_S,
            registry=registry,
        )
        self._depth = Gauge(
            "llorch_workqueue_depth", "Keys waiting in the work queue.", ["name"], registry=registry
        )
        self._adds = Counter(
            "llorch_workqueue_adds_total",
            "Keys added to the work queue (an add of a key already waiting is not counted).",
            ["name"],
            registry=registry,
        )
        self._retries = Counter(
            "llorch_workqueue_retries_total",
            "Keys put back with backoff after a failed reconcile.",
            ["name"],
            registry=registry,
        )
        self._queue_durations = Histogram(
            "llorch_workqueue_queue_duration_seconds",
            "How long a key waited in the queue before a worker took it.",
            ["name"],
            buckets=WORKQUEUE_BUCKETS_S,
            registry=registry,
        )
        self._work_durations = Histogram(
            "llorch_workqueue_work_duration_seconds",
            "How long a worker held a key, from taking it to done.",
            ["name"],
            buckets=WORKQUEUE_BUCKETS_S,
            registry=registry,
        )

    def queue(self, name: str) -> NamedQueueMetrics:
        """The metrics of the queue called `name`; `watch_depth` then reads its depth on scrape."""
        return NamedQueueMetrics(self, name)

    def reconciled(self, controller: str, seconds: float, result: str) -> None:
        self._durations.labels(controller).observe(seconds)
        self._reconciles.labels(controller, result).inc()
        if result == "error":
            self._errors.labels(controller).inc()


class NamedQueueMetrics:
    """llorch.controllers.workqueue.QueueMetrics for one queue."""

    def __init__(self, parent: ControlMetrics, name: str) -> None:
        self._adds = parent._adds.labels(name)
        self._retries = parent._retries.labels(name)
        self._queue = parent._queue_durations.labels(name)
        self._work = parent._work_durations.labels(name)
        self._depth = parent._depth.labels(name)

    def watch_depth(self, depth: Callable[[], int]) -> None:
        self._depth.set_function(depth)

    def added(self) -> None:
        self._adds.inc()

    def retried(self) -> None:
        self._retries.inc()

    def waited(self, seconds: float) -> None:
        self._queue.observe(seconds)

    def worked(self, seconds: float) -> None:
        self._work.observe(seconds)
