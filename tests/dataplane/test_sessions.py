"""Sessions in sqlite: sliding TTL (driven with freezegun), turn limits, budgets, restarts."""

from __future__ import annotations

from pathlib import Path

import pytest
from freezegun import freeze_time

from llorch.dataplane.errors import DataplaneError
from llorch.dataplane.sessions import SessionStore
from llorch.resources import Policy, parse_object
from llorch.store.db import StateDB


def policy(**spec: object) -> Policy:
    obj = parse_object(
        {"apiVersion": "llorch.dev/v1", "kind": "Policy", "metadata": {"name": "p"}, "spec": spec}
    )
    assert isinstance(obj, Policy)
    return obj


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    return SessionStore(StateDB(tmp_path / "s.sqlite"))


def test_ttl_slides_with_each_turn_and_expiry_ends_the_session(store: SessionStore) -> None:
    with freeze_time("2026-01-01 12:00:00") as clock:
        store.open("s1", "demo", policy(sessions={"ttlSeconds": 600, "maxTurns": 8}), None)
        clock.tick(540)
        store.charge("s1", tokens=10, wall_ms=5, cost_per_1k=0)
        clock.tick(540)
        session = store.get("s1")
        assert session is not None and session.turns == 1, "the turn at 9 min pushed expiry to 19 min"
        assert session.view(1767269880.0)["ttl_ms_remaining"] == 60_000
        clock.tick(61)
        assert store.get("s1") is None
        fresh = store.open("s1", "demo", None, None)
        assert fresh.turns == 0, "the same id starts a new session after expiry"


def test_defaults_without_a_policy_are_ten_minutes_and_eight_turns(store: SessionStore) -> None:
    session = store.open("s", "demo", None, None)
    assert session.ttl_seconds == 600 and session.max_turns == 8
    assert session.tokens_remaining() is None


def test_turn_limit_and_budgets_refuse_up_front(store: SessionStore) -> None:
    rules = policy(sessions={"maxTurns": 2}, budgets={"tokens": 100, "cost": 1.0})
    session = store.open("s", "demo", rules, None)
    store.check(session, rules)
    store.charge("s", tokens=60, wall_ms=10, cost_per_1k=2.0)
    session = store.get("s")
    assert session is not None
    assert session.tokens_remaining() == 40 and session.cost_remaining() == pytest.approx(0.88)
    store.check(session, rules)
    store.charge("s", tokens=50, wall_ms=10, cost_per_1k=2.0)
    refused = refusal(store, rules)
    assert refused.code == "BUDGET_EXCEEDED"
    assert refused.policy_label == "Policy/p: sessions.maxTurns, budgets.tokens"
    assert "2 turns" in refused.message and "token budget of 100" in refused.message
    assert refused.retry_after_ms is not None and refused.retry_after_ms > 0


def refusal(store: SessionStore, rules: Policy | None) -> DataplaneError:
    """Why session `s` may not take another turn."""
    session = store.get("s")
    assert session is not None
    with pytest.raises(DataplaneError) as refused:
        store.check(session, rules)
    return refused.value


def test_without_a_policy_the_label_says_the_defaults_refused(store: SessionStore) -> None:
    store.open("s", "demo", None, None)
    for _ in range(8):
        store.charge("s", tokens=1, wall_ms=1, cost_per_1k=0)
    assert refusal(store, None).policy_label == "no Policy selects Pool/demo: sessions.maxTurns"


def test_sessions_survive_a_restart(tmp_path: Path) -> None:
    first = SessionStore(StateDB(tmp_path / "s.sqlite"))
    first.open("s", "demo", policy(budgets={"tokens": 10}), "cid-1")
    first.charge("s", tokens=4, wall_ms=1, cost_per_1k=0)
    again = SessionStore(StateDB(tmp_path / "s.sqlite")).get("s")
    assert again is not None and again.tokens_used == 4 and again.correlation_id == "cid-1"


def test_delete_is_idempotent(store: SessionStore) -> None:
    store.open("s", "demo", None, None)
    store.delete("s")
    store.delete("s")
    assert store.get("s") is None
