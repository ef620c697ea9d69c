"""The control plane's metrics with controller-runtime's and client-go's meanings (reconciles per
controller and result, the work queue's depth, adds, retries and durations), and its spans."""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from llorch.controllers.manager import Manager, Result
from llorch.controllers.metrics import ControlMetrics
from llorch.controllers.workqueue import WorkQueue
from llorch.resources.errors import ErrorCode, LlorchError
from tests.controllers.clock import FakeClock
from tests.otel import named, spans

__all__ = ["spans"]


def value(registry: CollectorRegistry, metric: str, /, **labels: str) -> float | None:
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            if sample.name == metric and sample.labels == labels:
                return float(sample.value)
    return None


class Scripted:
    """A controller whose reconciles fail, succeed or ask to be requeued, in a given order."""

    kind = "Pool"

    def __init__(self, outcomes: list[str]) -> None:
        self._outcomes = outcomes

    def reconcile(self, name: str) -> Result:
        outcome = self._outcomes.pop(0)
        if outcome == "error":
            raise LlorchError(ErrorCode.INTERNAL, "broken", retriable=True)
        return Result(requeue_after=5.0 if outcome == "requeue_after" else None)

    def known_names(self) -> Iterable[str]:
        return ()

    def dependents(self, key: str) -> Iterable[str]:
        return ()


def test_the_queue_counts_adds_once_per_waiting_key_and_times_the_wait_and_the_work() -> None:
    registry = CollectorRegistry()
    clock = FakeClock()
    metrics = ControlMetrics(registry).queue("reconcile")
    queue = WorkQueue(clock=clock, metrics=metrics)
    metrics.watch_depth(queue.__len__)
    queue.add("Pool/a")
    queue.add("Pool/a")
    queue.add("Pool/b")
    assert value(registry, "llorch_workqueue_adds_total", name="reconcile") == 2, "de-duplicated"
    assert value(registry, "llorch_workqueue_depth", name="reconcile") == 2
    clock.advance(3.0)
    assert queue.get(timeout=0) == "Pool/a"
    clock.advance(0.5)
    queue.done("Pool/a")
    assert value(registry, "llorch_workqueue_depth", name="reconcile") == 1
    assert value(registry, "llorch_workqueue_queue_duration_seconds_sum", name="reconcile") == 3.0
    assert value(registry, "llorch_workqueue_work_duration_seconds_sum", name="reconcile") == 0.5
    queue.add_rate_limited("Pool/a")
    assert value(registry, "llorch_workqueue_retries_total", name="reconcile") == 1


def test_each_reconcile_is_timed_and_counted_by_controller_and_result() -> None:
    registry = CollectorRegistry()
    control = ControlMetrics(registry)
    clock = FakeClock()
    queue = WorkQueue(backoff_base=0.5, backoff_max=4.0, clock=clock, metrics=control.queue("reconcile"))
    manager = Manager([Scripted(["error", "success", "requeue_after"])], queue, metrics=control)
    for _ in range(3):
        queue.add("Pool/p")
        clock.advance(10)
        assert manager.process_next(timeout=0) == "Pool/p"
    assert value(registry, "llorch_reconcile_total", controller="Pool", result="error") == 1
    assert value(registry, "llorch_reconcile_total", controller="Pool", result="success") == 1
    assert value(registry, "llorch_reconcile_total", controller="Pool", result="requeue_after") == 1
    assert value(registry, "llorch_reconcile_errors_total", controller="Pool") == 1
    assert value(registry, "llorch_reconcile_duration_seconds_count", controller="Pool") == 3
    assert value(registry, "llorch_workqueue_retries_total", name="reconcile") == 1


def test_each_reconcile_is_a_span_of_its_own_failed_when_the_reconcile_failed(
    spans: InMemorySpanExporter,
) -> None:
    clock = FakeClock()
    queue = WorkQueue(backoff_base=0.5, backoff_max=4.0, clock=clock)
    manager = Manager([Scripted(["error", "success"])], queue)
    for _ in range(2):
        queue.add("Pool/p")
        clock.advance(10)
        manager.process_next(timeout=0)
    failed, ok = named(spans, "reconcile Pool")
    for span in (failed, ok):
        assert span.parent is None, "a reconcile starts a trace"
        assert span.attributes is not None
        assert dict(span.attributes) == {
            "llorch.controller": "Pool",
            "llorch.key": "Pool/p",
            "llorch.pool": "p",
        }
    assert not failed.status.is_ok and "INTERNAL" in (failed.status.description or "")
    assert ok.status.is_unset
