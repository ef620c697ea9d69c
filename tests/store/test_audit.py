"""The audit trail in sqlite: who did what, filtered and bounded."""

from __future__ import annotations

import contextvars
import time
from pathlib import Path

import pytest

from llorch.store import audit as audit_module
from llorch.store.audit import Actor, AuditLog, acting
from llorch.store.db import StateDB


def test_entries_carry_the_acting_identity_and_filter(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "state.sqlite")
    log = AuditLog(tmp_path / "state.sqlite")
    # A fresh context: whatever an earlier test's request left on this thread is not here.
    contextvars.Context().run(log.record, "pool.reload", "Pool/a")
    token = acting.set(Actor("token:ops", "cid-1"))
    try:
        log.record("pool.drain", "Pool/a", reason="deadline 1000 ms")
        log.record("tool.http", "GET http://x/", decision="deny", reason="default deny")
    finally:
        acting.reset(token)
    db.put_session("s", {}, time.time() + 60)  # StateDB keeps writing beside the trail
    newest = log.entries()
    assert [(e.actor, e.action, e.decision) for e in newest] == [
        ("token:ops", "tool.http", "deny"),
        ("token:ops", "pool.drain", "allow"),
        ("system", "pool.reload", "allow"),
    ]
    assert newest[0].correlation_id == "cid-1"
    assert [e.action for e in log.entries(decision="deny")] == ["tool.http"]
    assert [e.action for e in log.entries(actor="system")] == ["pool.reload"]
    assert log.entries(since=time.time() + 10) == []
    assert len(log.entries(limit=1)) == 1
    wire = newest[1].to_wire()
    assert wire["at"].endswith("Z") and wire["reason"] == "deadline 1000 ms"
    log.close()
    db.close()


def test_the_trail_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_module, "KEEP_ENTRIES", 10)
    monkeypatch.setattr(audit_module, "_PRUNE_EVERY", 5)
    log = AuditLog(tmp_path / "state.sqlite")
    for i in range(23):
        log.record("x", f"t{i}")
    kept = log.entries(limit=100)
    assert len(kept) <= 15 and kept[0].target == "t22"
    log.close()


def test_the_trail_survives_a_restart(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "state.sqlite")
    log.record("artifact.put", "Artifact/abc")
    log.close()
    assert [e.target for e in AuditLog(tmp_path / "state.sqlite").entries()] == ["Artifact/abc"]
