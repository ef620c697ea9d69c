from __future__ import annotations

from pathlib import Path

from llorch.store.db import EVENTS_KEPT_PER_OBJECT, PoolRuntime, StateDB, TaskRecord, WorkerRecord


def test_generation_moves_only_when_the_spec_changes(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "s.sqlite")
    assert db.observe_generation("Pool/a", "h1") == 1
    assert db.observe_generation("Pool/a", "h1") == 1
    assert db.observe_generation("Pool/a", "h2") == 2
    db.forget_object("Pool/a")
    assert db.observe_generation("Pool/a", "h2") == 1


def test_status_round_trip_and_survives_reopen(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "s.sqlite")
    db.put_status("Pool/a", {"readyReplicas": 1, "conditions": []})
    db.close()
    again = StateDB(tmp_path / "s.sqlite")
    assert again.get_status("Pool/a") == {"readyReplicas": 1, "conditions": []}
    assert again.get_status("Pool/b") is None


def test_repeated_events_fold_into_a_count(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "s.sqlite")
    db.record_event("Pool/a", "Warning", "BackOff", "restart 1")
    db.record_event("Pool/a", "Warning", "BackOff", "restart 1")
    db.record_event("Pool/a", "Normal", "Started", "pid 1")
    events = db.events("Pool/a")
    assert [(e.reason, e.count) for e in events] == [("BackOff", 2), ("Started", 1)]
    assert db.events("Pool/other") == []


def test_event_history_is_bounded(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "s.sqlite")
    for i in range(EVENTS_KEPT_PER_OBJECT + 20):
        db.record_event("Pool/a", "Normal", "Started", f"pid {i}")
    events = db.events("Pool/a", limit=1000)
    assert len(events) == EVENTS_KEPT_PER_OBJECT
    assert events[-1].message == f"pid {EVENTS_KEPT_PER_OBJECT + 19}"


def test_workers_and_tasks(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "s.sqlite")
    record = WorkerRecord("demo-0", "demo", 0, 123, 1.5, 4000, "abc", "/tmp/x.log", 2.0, (0, 1), (0.67, 0.33))
    db.save_worker(record)
    assert db.workers("demo") == [record]
    db.delete_worker("demo-0")
    assert db.workers() == []
    task = TaskRecord(
        "t1", "demo", "demo-0", "succeeded", "cid", None, 1.0, 2.0, 3, 4, 5.0, 6.0, "length", None
    )
    db.save_task(task)
    assert db.get_task("t1") == task


def test_pool_runtime_defaults_and_persists(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "s.sqlite")
    assert db.pool_runtime("demo") == PoolRuntime("demo")
    db.save_pool_runtime(PoolRuntime("demo", draining=True, drain_deadline=5.0, reload_token="r1"))
    db.close()
    assert StateDB(tmp_path / "s.sqlite").pool_runtime("demo") == PoolRuntime("demo", True, 5.0, "r1")


def test_a_task_record_summarises_like_a_live_task(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "s.sqlite")
    none = (None,) * 5
    db.save_task(TaskRecord("t9", "demo", "demo-0-abc", "canceled", "c", "s", 1.0, 2.5, *none, "CANCELED"))
    record = db.get_task("t9")
    assert record is not None
    summary = record.summary()
    assert summary["task_id"] == "t9" and summary["ended_ms"] == 2500
    assert summary["result"] == {"code": "CANCELED"}
