from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from llorch.controllers.conditions import set_condition
from llorch.resources.status import PoolStatus
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
    status = PoolStatus(
        ready_replicas=1, conditions=set_condition([], "Ready", True, "AllReplicasReady", now=5.0)
    )
    db.put_status("Pool/a", status)
    db.close()
    again = StateDB(tmp_path / "s.sqlite")
    assert again.pool_status("a") == status
    assert again.pool_status("b") is None


def test_a_state_folder_of_an_older_llorchd_loads_with_rfc3339_times(tmp_path: Path) -> None:
    """Before typed status, times were epoch seconds; opening the folder migrates them once."""
    path = tmp_path / "s.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE status (key TEXT PRIMARY KEY, body TEXT NOT NULL, updated_at REAL NOT NULL);"
    )
    body = {
        "readyReplicas": 1,
        "drainDeadline": 1796150700.0,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "A",
                "message": "",
                "lastTransitionTime": 1796150636.59,
            }
        ],
        "replicaStatuses": [
            {
                "id": "demo-0-abcde",
                "index": 0,
                "revision": "abcde",
                "phase": "Ready",
                "startedAt": 1796150630.0,
            }
        ],
        "aFieldOfLongAgo": 3,
    }
    old.execute("INSERT INTO status VALUES ('Pool/demo', ?, 0)", (json.dumps(body),))
    old.commit()
    old.close()
    db = StateDB(path)
    status = db.pool_status("demo")
    assert status is not None and status.ready_replicas == 1
    stored = json.loads(sqlite3.connect(path).execute("SELECT body FROM status").fetchone()[0])
    assert stored["conditions"][0]["lastTransitionTime"] == "2026-12-01T18:43:56Z"
    assert stored["drainDeadline"] == "2026-12-01T18:45:00Z"
    assert stored["replicaStatuses"][0]["startedAt"] == "2026-12-01T18:43:50Z"
    assert "aFieldOfLongAgo" not in stored


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
