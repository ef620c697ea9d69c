"""Prometheus metrics: event counters at their call sites, state gauges read on scrape, one registry each."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from llorch.controllers.model import ModelController
from llorch.dataplane.errors import DataplaneError
from llorch.dataplane.metrics import Metrics
from llorch.dataplane.service import TaskService
from llorch.dataplane.tasks import Task
from llorch.resources import Pool
from llorch.runtime.engines.base import (
    CompletionRequest,
    Finished,
    Launch,
    LaunchRequest,
    StreamEvent,
    Token,
    Upstream,
)
from llorch.runtime.gpus import Gpu, SimulatedInventory
from llorch.runtime.registry import Replica, ReplicaRegistry
from llorch.store.db import StateDB
from llorch.store.manifests import ManifestStore

Labels = dict[str, str]


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition text, keyed by (sample name, sorted labels)."""
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, tuple(sorted(labels.items()))))


def families(metrics: Metrics) -> dict[str, str]:
    """Family name -> type, as a scraper sees them."""
    text = generate_latest(metrics.registry).decode()
    return {f.name: f.type for f in text_string_to_metric_families(text)}


# -- events ------------------------------------------------------------------------------------


def test_each_metrics_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.enqueued("chat")
    assert value(first, "llorch_tasks_enqueued_total", pool_id="chat") == 1
    assert value(second, "llorch_tasks_enqueued_total", pool_id="chat") is None


def test_event_counters_carry_bounded_labels() -> None:
    metrics = Metrics()
    metrics.enqueued("chat")
    metrics.enqueued("chat")
    metrics.rejected("chat", "POOL_UNREADY")
    metrics.backpressured("chat", "reject")
    metrics.canceled("chat", "client")
    tokens = metrics.started("chat", "chat-0", "llamacpp")
    tokens.inc()
    tokens.inc()
    metrics.placement(placed=True, pinned=False)
    metrics.placement(placed=False, pinned=True)
    metrics.verification("mismatch", "DigestMismatch")
    assert value(metrics, "llorch_tasks_enqueued_total", pool_id="chat") == 2
    assert value(metrics, "llorch_tasks_rejected_total", pool_id="chat", reason="POOL_UNREADY") == 1
    assert value(metrics, "llorch_admission_backpressure_events_total", pool_id="chat", policy="reject") == 1
    assert value(metrics, "llorch_tasks_canceled_total", pool_id="chat", reason="client") == 1
    started = value(
        metrics, "llorch_tasks_started_total", pool_id="chat", replica_id="chat-0", engine="llamacpp"
    )
    assert started == 1
    assert value(metrics, "llorch_tokens_out_total", pool_id="chat") == 2
    placed = {"outcome": "placed", "pinned": "false", "fallback": "false"}
    unschedulable = {"outcome": "unschedulable", "pinned": "true", "fallback": "false"}
    assert value(metrics, "llorch_placement_decisions_total", **placed) == 1
    assert value(metrics, "llorch_placement_decisions_total", **unschedulable) == 1
    assert (
        value(metrics, "llorch_catalog_verifications_total", result="mismatch", reason="DigestMismatch") == 1
    )


def _task(pool: str = "chat") -> Task:
    return Task(id="t-1", pool=pool, request=CompletionRequest(prompt="hi", max_tokens=8))


def test_a_finished_task_feeds_tokens_in_and_both_latency_histograms() -> None:
    metrics = Metrics()
    task = _task()
    task.finish(
        "succeeded",
        "end",
        {"tokens_out": 5, "tokens_in": 12, "ttft_ms": 42.0, "decode_ms": 3000.0, "finish_reason": "stop"},
    )
    metrics.ended(task)
    assert value(metrics, "llorch_tokens_in_total", pool_id="chat") == 12
    assert value(metrics, "llorch_latency_first_token_seconds_count", pool_id="chat") == 1
    assert value(metrics, "llorch_latency_first_token_seconds_sum", pool_id="chat") == 0.042
    assert value(metrics, "llorch_latency_first_token_seconds_bucket", pool_id="chat", le="0.05") == 1
    assert value(metrics, "llorch_latency_first_token_seconds_bucket", pool_id="chat", le="0.025") == 0
    assert value(metrics, "llorch_latency_decode_seconds_bucket", pool_id="chat", le="2.5") == 0
    assert value(metrics, "llorch_latency_decode_seconds_bucket", pool_id="chat", le="5.0") == 1


def test_tasks_without_a_token_or_without_an_end_record_no_latency() -> None:
    metrics = Metrics()
    empty = _task()
    empty.finish("succeeded", "end", {"tokens_out": 0, "tokens_in": 3, "ttft_ms": 900.0, "decode_ms": 0.0})
    failed = _task()
    failed.finish("failed", "error", {"code": "WORKER_RESET", "message": "x", "retriable": True})
    canceled = _task()
    canceled.finish("canceled", "error", {"code": "CANCELED", "message": "x", "retriable": False})
    for task in (empty, failed, canceled, _task()):
        metrics.ended(task)
    assert value(metrics, "llorch_tokens_in_total", pool_id="chat") == 3
    assert value(metrics, "llorch_tasks_failed_total", pool_id="chat", code="WORKER_RESET") == 1
    assert value(metrics, "llorch_tasks_failed_total", pool_id="chat", code="CANCELED") is None, (
        "a cancel is counted by llorch_tasks_canceled_total, with its reason"
    )
    assert value(metrics, "llorch_latency_first_token_seconds_count", pool_id="chat") is None
    assert value(metrics, "llorch_latency_decode_seconds_count", pool_id="chat") is None


def test_histogram_buckets_span_a_millisecond_to_a_minute_in_seconds() -> None:
    metrics = Metrics()
    metrics.latency_first_token.labels("chat").observe(0.0005)
    bounds = {
        float(dict(labels)["le"])
        for (name, labels) in samples(metrics)
        if name == "llorch_latency_first_token_seconds_bucket"
    }
    assert min(bounds) == 0.001 and 60.0 in bounds


# -- state on scrape ---------------------------------------------------------------------------

POOL = """\
apiVersion: llorch.dev/v1
kind: Pool
metadata:
  name: chat
spec:
  model: tiny
  replicas: 1
  slots: 2
---
apiVersion: llorch.dev/v1
kind: Pool
metadata:
  name: idle
spec:
  model: old
  replicas: 1
"""

MODELS = """\
apiVersion: llorch.dev/v1
kind: Model
metadata:
  name: tiny
spec:
  source:
    path: tiny.gguf
---
apiVersion: llorch.dev/v1
kind: Model
metadata:
  name: old
spec:
  source:
    path: old.gguf
  lifecycle: Retired
"""

SMALL_QUEUE = """\
apiVersion: llorch.dev/v1
kind: Policy
metadata:
  name: tight
spec:
  admission:
    queueCapacity: 2
"""


class ScriptedEngine:
    """An engine adapter whose stream is a fixed script: a few tokens, then Finished."""

    name = "scripted"

    def __init__(self, tokens: int = 3, tokens_in: int = 7) -> None:
        self.tokens = tokens
        self.tokens_in = tokens_in

    def launch(self, request: LaunchRequest) -> Launch:
        raise NotImplementedError

    def healthy(self, client: httpx.Client, upstream: Upstream) -> bool:
        return True

    def kv_cache_usage(self, client: httpx.Client, upstream: Upstream) -> float | None:
        return None

    def busy_slots(self, client: httpx.Client, upstream: Upstream) -> int | None:
        return None

    def version(self, client: httpx.Client, upstream: Upstream) -> str | None:
        return None

    def complete(
        self, client: httpx.Client, upstream: Upstream, request: CompletionRequest
    ) -> ScriptedStream:
        return ScriptedStream(self.tokens, self.tokens_in)


class ScriptedStream:
    def __init__(self, tokens: int, tokens_in: int) -> None:
        self._tokens, self._tokens_in = tokens, tokens_in

    def __iter__(self) -> Iterator[StreamEvent]:
        for i in range(self._tokens):
            time.sleep(0.002)
            yield Token(f"t{i}")
        yield Finished(tokens_out=self._tokens, tokens_in=self._tokens_in, finish_reason="stop")

    def close(self) -> None:
        pass


def replica(id_: str, pool: str = "chat", slots: int = 2) -> Replica:
    return Replica(
        id=id_,
        pool=pool,
        engine="scripted",
        upstream=Upstream(base_url="http://127.0.0.1:9", model="tiny"),
        slots=slots,
        adapter=ScriptedEngine(),
    )


class Plane:
    def __init__(self, tmp_path: Path, *extra: str) -> None:
        folder = tmp_path / "manifests"
        folder.mkdir()
        (folder / "pools.yaml").write_text(POOL)
        (folder / "models.yaml").write_text(MODELS)
        for i, text in enumerate(extra):
            (folder / f"extra{i}.yaml").write_text(text)
        self.store = ManifestStore(folder)
        self.store.load()
        assert not self.store.errors()
        self.db = StateDB(tmp_path / "state.sqlite")
        self.registry = ReplicaRegistry()
        self.metrics = Metrics()
        self.tasks = TaskService(store=self.store, db=self.db, registry=self.registry, metrics=self.metrics)

    def pool(self, name: str = "chat") -> Pool:
        entry = self.store.get(f"Pool/{name}")
        assert entry is not None and isinstance(entry.obj, Pool)
        return entry.obj

    def submit(self, pool: str = "chat", priority: str = "interactive") -> Task:
        request = CompletionRequest(prompt="hi", max_tokens=8)
        return self.tasks.submit(request, pool=self.pool(pool), priority=priority).task

    def close(self) -> None:
        self.tasks.stop()
        self.db.close()


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[Plane]:
    p = Plane(tmp_path)
    yield p
    p.close()


def test_state_gauges_are_read_from_the_live_objects(plane: Plane) -> None:
    plane.registry.add(replica("chat-0"))
    # The dispatcher is not started: submitted tasks stay queued.
    plane.submit(priority="interactive")
    plane.submit(priority="batch")
    plane.submit(priority="batch")
    assert value(plane.metrics, "llorch_queue_depth", pool_id="chat", priority="interactive") == 1
    assert value(plane.metrics, "llorch_queue_depth", pool_id="chat", priority="batch") == 2
    assert value(plane.metrics, "llorch_queue_depth", pool_id="idle", priority="batch") == 0, (
        "every pool is listed"
    )
    assert value(plane.metrics, "llorch_replica_slots", pool_id="chat", replica_id="chat-0") == 2
    assert value(plane.metrics, "llorch_replica_slots_busy", pool_id="chat", replica_id="chat-0") == 0
    lease = plane.registry.acquire("chat")
    assert lease is not None
    assert value(plane.metrics, "llorch_replica_slots_busy", pool_id="chat", replica_id="chat-0") == 1, (
        "no drift"
    )
    plane.registry.release(lease)
    assert value(plane.metrics, "llorch_replica_slots_busy", pool_id="chat", replica_id="chat-0") == 0
    assert value(plane.metrics, "llorch_model_state", model_id="tiny", state="Active") == 1
    assert value(plane.metrics, "llorch_model_state", model_id="tiny", state="Retired") == 0
    assert value(plane.metrics, "llorch_model_state", model_id="old", state="Retired") == 1
    plane.registry.remove("chat-0")
    assert not any(name.startswith("slots_") for name, _ in samples(plane.metrics))


def test_submit_counts_admissions_and_every_refusal_by_code(plane: Plane) -> None:
    with pytest.raises(DataplaneError):
        plane.submit()  # no replica yet
    plane.registry.add(replica("chat-0"))
    plane.submit()
    with pytest.raises(DataplaneError):
        plane.tasks.submit(CompletionRequest(prompt="hi", max_tokens=10**9), pool=plane.pool())
    with pytest.raises(DataplaneError):
        plane.submit("idle")  # its model is Retired
    m = plane.metrics
    assert value(m, "llorch_tasks_enqueued_total", pool_id="chat") == 1
    assert value(m, "llorch_tasks_rejected_total", pool_id="chat", reason="POOL_UNREADY") == 1
    assert value(m, "llorch_tasks_rejected_total", pool_id="chat", reason="INVALID_PARAMS") == 1
    assert value(m, "llorch_tasks_rejected_total", pool_id="idle", reason="MODEL_RETIRED") == 1
    assert value(m, "llorch_tasks_enqueued_total", pool_id="idle") is None


def test_a_full_queue_is_a_reject_and_a_backpressure_event(tmp_path: Path) -> None:
    plane = Plane(tmp_path, SMALL_QUEUE)
    try:
        plane.registry.add(replica("chat-0", slots=1))
        for _ in range(3):  # one for the free slot, two to fill the queue's capacity
            plane.submit()
        with pytest.raises(DataplaneError) as refused:
            plane.submit()
        assert refused.value.code == "ADMISSION_REJECT"
        m = plane.metrics
        assert value(m, "llorch_tasks_rejected_total", pool_id="chat", reason="ADMISSION_REJECT") == 1
        assert value(m, "llorch_admission_backpressure_events_total", pool_id="chat", policy="reject") == 1
        assert value(m, "llorch_tasks_enqueued_total", pool_id="chat") == 3
    finally:
        plane.close()


def test_cancels_are_counted_once_with_their_reason(plane: Plane) -> None:
    plane.registry.add(replica("chat-0"))
    canceled, abandoned = plane.submit(), plane.submit()
    plane.tasks.cancel(canceled.id)
    plane.tasks.cancel(canceled.id)  # idempotent: not counted twice
    plane.tasks.abandon(abandoned)
    drained = plane.submit()
    assert plane.tasks.drain_queued("chat") == 1
    left = plane.submit()
    plane.tasks.stop()
    m = plane.metrics
    assert value(m, "llorch_tasks_canceled_total", pool_id="chat", reason="cancel") == 1
    assert value(m, "llorch_tasks_canceled_total", pool_id="chat", reason="client") == 1
    assert value(m, "llorch_tasks_canceled_total", pool_id="chat", reason="drain") == 1
    assert value(m, "llorch_tasks_canceled_total", pool_id="chat", reason="shutdown") == 1
    assert drained.state == left.state == "canceled"
    assert value(m, "llorch_queue_depth", pool_id="chat", priority="interactive") == 0


def test_a_dispatched_task_counts_start_tokens_and_latencies(plane: Plane) -> None:
    plane.registry.add(replica("chat-0"))
    plane.tasks.start()
    task = plane.submit()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (task.finished and task.state == "succeeded"):
        time.sleep(0.01)
    assert task.state == "succeeded"
    m = plane.metrics
    # The run's bookkeeping (metrics included) finishes on the task's thread just after the end frame.
    while time.monotonic() < deadline and value(m, "llorch_tokens_in_total", pool_id="chat") is None:
        time.sleep(0.01)
    assert value(m, "llorch_tasks_started_total", pool_id="chat", replica_id="chat-0", engine="scripted") == 1
    assert value(m, "llorch_tokens_out_total", pool_id="chat") == 3
    assert value(m, "llorch_tokens_in_total", pool_id="chat") == 7
    assert value(m, "llorch_latency_first_token_seconds_count", pool_id="chat") == 1
    assert value(m, "llorch_latency_decode_seconds_count", pool_id="chat") == 1


def test_gpu_gauges_come_from_the_inventory_and_are_empty_without_gpus() -> None:
    gpu = Gpu(
        index=0,
        uuid="GPU-0",
        name="RTX 3090",
        total_bytes=24 * 1024**3,
        free_bytes=20 * 1024**3,
        used_bytes=4 * 1024**3,
        utilization_pct=37,
        temperature_c=50,
    )
    inventory = SimulatedInventory([gpu])
    metrics = Metrics(inventory=inventory)
    assert value(metrics, "llorch_gpu_utilization_ratio", device="0") == pytest.approx(0.37)
    assert value(metrics, "llorch_vram_used_bytes", device="0") == 4 * 1024**3
    assert value(metrics, "llorch_vram_total_bytes", device="0") == 24 * 1024**3
    inventory.set_used(0, 10 * 1024**3)
    assert value(metrics, "llorch_vram_used_bytes", device="0") == 10 * 1024**3, "read on every scrape"
    cpu_box = Metrics(inventory=SimulatedInventory([]))
    assert families(cpu_box)["llorch_gpu_utilization_ratio"] == "gauge"
    gpu_families = {"llorch_gpu_utilization_ratio", "llorch_vram_used_bytes", "llorch_vram_total_bytes"}
    assert not any(name in gpu_families for name, _ in samples(cpu_box))


# -- the Model controller's callback -----------------------------------------------------------


def test_model_verifications_are_counted_by_result(tmp_path: Path) -> None:
    folder = tmp_path / "manifests"
    folder.mkdir()
    weights = b"GGUF" + bytes(64)
    (folder / "w.gguf").write_bytes(weights)
    good = "sha256:" + hashlib.sha256(weights).hexdigest()
    docs = [("ok", f"path: w.gguf\n  digest: {good}"), ("bad", "path: w.gguf\n  digest: sha256:" + "0" * 64)]
    docs += [("plain", "path: w.gguf"), ("gone", "path: nowhere.gguf")]
    for name, source in docs:
        head = f"apiVersion: llorch.dev/v1\nkind: Model\nmetadata:\n  name: {name}\n"
        (folder / f"{name}.yaml").write_text(head + f"spec:\n  source:\n    {source}\n")
    store = ManifestStore(folder)
    store.load()
    db = StateDB(tmp_path / "state.sqlite")
    metrics = Metrics()
    controller = ModelController(store, db, tmp_path / "cache", on_verification=metrics.verification)
    for name, _ in docs:
        controller.reconcile(name)
    db.close()
    assert value(metrics, "llorch_catalog_verifications_total", result="ok", reason="DigestVerified") == 1
    assert value(metrics, "llorch_catalog_verifications_total", result="ok", reason="NoDigest") == 1
    assert (
        value(metrics, "llorch_catalog_verifications_total", result="mismatch", reason="DigestMismatch") == 1
    )
    assert value(metrics, "llorch_catalog_verifications_total", result="missing", reason="NotFound") == 1


def test_metrics_are_thread_safe_under_concurrent_events() -> None:
    metrics = Metrics()
    tokens = metrics.started("chat", "chat-0", "llamacpp")

    def work() -> None:
        for _ in range(1000):
            tokens.inc()
            metrics.enqueued("chat")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert value(metrics, "llorch_tokens_out_total", pool_id="chat") == 8000
    assert value(metrics, "llorch_tasks_enqueued_total", pool_id="chat") == 8000
