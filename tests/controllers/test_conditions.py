from __future__ import annotations

from llorch.controllers.conditions import set_condition
from llorch.resources.status import condition, is_true, stamp


def test_transition_time_moves_only_when_status_flips() -> None:
    conditions = set_condition([], "Ready", False, "Starting", "0/1", now=10.0)
    conditions = set_condition(conditions, "Ready", False, "Starting", "still 0/1", now=20.0)
    ready = condition(conditions, "Ready")
    assert ready is not None
    assert ready.last_transition_time == stamp(10.0) and ready.message == "still 0/1"
    conditions = set_condition(conditions, "Ready", True, "AllReplicasReady", "1/1", now=30.0)
    ready = condition(conditions, "Ready")
    assert ready is not None and ready.last_transition_time == stamp(30.0) and ready.status == "True"
    assert is_true(conditions, "Ready")


def test_conditions_of_other_types_are_kept_in_order() -> None:
    conditions = set_condition([], "Ready", True, "A", now=1.0)
    conditions = set_condition(conditions, "Degraded", False, "Healthy", now=1.0)
    conditions = set_condition(conditions, "Ready", False, "B", now=2.0)
    assert [c.type for c in conditions] == ["Ready", "Degraded"]
    assert not is_true(conditions, "Ready") and not is_true(conditions, "Progressing")


def test_transition_times_are_rfc3339_on_the_wire() -> None:
    (ready,) = set_condition([], "Ready", True, "A", now=1796150636.59)
    assert ready.to_wire()["lastTransitionTime"] == "2026-12-01T18:43:56Z"
