"""TaskService admission with a real store, sqlite and registry (no engine: tasks stay queued)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llorch.dataplane.errors import DataplaneError, TaskNotFound
from llorch.dataplane.service import TaskService
from llorch.resources import Pool
from llorch.runtime.engines.base import CompletionRequest, Upstream
from llorch.runtime.engines.llamacpp import LlamaCpp
from llorch.runtime.registry import Replica, ReplicaRegistry
from llorch.store.db import StateDB
from llorch.store.manifests import ManifestStore

MANIFESTS = """\
apiVersion: llorch.dev/v1
kind: Pool
metadata: {{name: demo}}
spec: {{model: m, slots: 1}}
---
apiVersion: llorch.dev/v1
kind: Policy
metadata: {{name: p}}
spec:
  admission: {{queueCapacity: 2, overflow: {overflow}}}
"""


def service(tmp_path: Path, overflow: str) -> Iterator[tuple[TaskService, Pool]]:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "all.yaml").write_text(MANIFESTS.format(overflow=overflow))
    store = ManifestStore(folder)
    store.load()
    registry = ReplicaRegistry()
    registry.add(Replica("demo-0", "demo", "llamacpp", Upstream("http://127.0.0.1:9", "m"), 1, LlamaCpp()))
    tasks = TaskService(store=store, db=StateDB(tmp_path / "s.sqlite"), registry=registry)
    entry = store.get("Pool/demo")
    assert entry is not None and isinstance(entry.obj, Pool)
    yield tasks, entry.obj
    tasks.stop()


@pytest.fixture
def drop_lru(tmp_path: Path) -> Iterator[tuple[TaskService, Pool]]:
    yield from service(tmp_path, "drop-lru")


@pytest.fixture
def reject(tmp_path: Path) -> Iterator[tuple[TaskService, Pool]]:
    yield from service(tmp_path, "reject")


def submit(tasks: TaskService, pool: Pool, priority: str = "interactive") -> str:
    request = CompletionRequest(prompt="x", max_tokens=4)
    return tasks.submit(request, pool=pool, priority=priority).task.id


def test_reject_refuses_past_capacity_plus_free_slots(reject: tuple[TaskService, Pool]) -> None:
    tasks, pool = reject
    for _ in range(3):  # one for the free slot, two for the queue
        submit(tasks, pool)
    with pytest.raises(DataplaneError) as refused:
        submit(tasks, pool)
    assert refused.value.code == "ADMISSION_REJECT" and refused.value.retry_after_ms
    assert refused.value.policy_label == "Policy/p: admission.queueCapacity"


def test_drop_lru_drops_the_oldest_batch_task_and_admits_the_new_one(
    drop_lru: tuple[TaskService, Pool],
) -> None:
    tasks, pool = drop_lru
    oldest = submit(tasks, pool, "batch")
    submit(tasks, pool, "batch")
    submit(tasks, pool, "batch")
    newest = submit(tasks, pool)
    dropped = tasks.get(oldest)
    assert dropped.finished and dropped.frames[-1].data["code"] == "QUEUE_FULL_DROP_LRU"
    assert dropped.frames[-1].data["retriable"] is True
    assert tasks.queue_position(tasks.get(newest)) == 0, "interactive goes first"


def test_drop_lru_refuses_a_batch_task_when_interactive_work_fills_the_queue(
    drop_lru: tuple[TaskService, Pool],
) -> None:
    tasks, pool = drop_lru
    for _ in range(3):
        submit(tasks, pool)
    with pytest.raises(DataplaneError) as refused:
        submit(tasks, pool, "batch")
    assert refused.value.code == "QUEUE_FULL_DROP_LRU"


def test_cancel_stays_idempotent_after_the_task_left_memory(tmp_path: Path) -> None:
    for tasks, pool in service(tmp_path, "reject"):
        task_id = submit(tasks, pool)
        tasks.cancel(task_id)
        # A later llorchd on the same state knows the task only from its record.
        later = TaskService(store=ManifestStore(tmp_path / "manifests"), db=StateDB(tmp_path / "s.sqlite"),
                            registry=ReplicaRegistry())  # fmt: skip
        try:
            later.cancel(task_id)
            with pytest.raises(TaskNotFound):
                later.cancel("never-was")
        finally:
            later.stop()


def test_a_deadline_measurements_say_cannot_be_met_is_refused_up_front(tmp_path: Path) -> None:
    for tasks, pool in service(tmp_path, "reject"):
        request = CompletionRequest(prompt="x", max_tokens=40)
        assert tasks.submit(request, pool=pool, deadline_ms=10).queue_position == 0, "no evidence yet"
        # 100 tokens/s: the task ahead and this one take about 0.45 s each, past 400 ms.
        tasks._service_times.observe("demo", 0.5, tokens=50)
        with pytest.raises(DataplaneError) as caught:
            tasks.submit(request, pool=pool, deadline_ms=400)
        assert caught.value.code == "DEADLINE_UNMET" and "deadline_ms 400" in caught.value.message
        assert tasks.queue_depth("demo") == 1, "the refused task never queued"
        short = tasks.submit(request, pool=pool, deadline_ms=60_000, expected_tokens=10)
        assert short.queue_position == 1


def test_a_queued_task_whose_deadline_passes_ends_with_deadline_unmet(tmp_path: Path) -> None:
    for tasks, pool in service(tmp_path, "reject"):
        request = CompletionRequest(prompt="x", max_tokens=4)
        late = tasks.submit(request, pool=pool, deadline_ms=50).task
        patient = tasks.submit(request, pool=pool, deadline_ms=60_000).task
        assert 0 < tasks._expire_deadlines() <= 0.05, "the loop wakes for the nearest deadline"
        time.sleep(0.06)
        assert tasks._expire_deadlines() <= 1.0
        assert late.state == "canceled" and late.frames[-1].data["code"] == "DEADLINE_UNMET"
        assert patient.state == "queued" and tasks.queue_position(patient) == 0
