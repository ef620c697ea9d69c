from __future__ import annotations

from llorch.controllers.conditions import get_condition, is_true, set_condition


def test_transition_time_moves_only_when_status_flips() -> None:
    conditions = set_condition([], "Ready", False, "Starting", "0/1", now=10.0)
    conditions = set_condition(conditions, "Ready", False, "Starting", "still 0/1", now=20.0)
    ready = get_condition(conditions, "Ready")
    assert ready is not None
    assert ready["lastTransitionTime"] == 10.0 and ready["message"] == "still 0/1"
    conditions = set_condition(conditions, "Ready", True, "AllReplicasReady", "1/1", now=30.0)
    ready = get_condition(conditions, "Ready")
    assert ready is not None and ready["lastTransitionTime"] == 30.0 and ready["status"] == "True"
    assert is_true(conditions, "Ready")


def test_conditions_of_other_types_are_kept_in_order() -> None:
    conditions = set_condition([], "Ready", True, "A", now=1.0)
    conditions = set_condition(conditions, "Degraded", False, "Healthy", now=1.0)
    conditions = set_condition(conditions, "Ready", False, "B", now=2.0)
    assert [c["type"] for c in conditions] == ["Ready", "Degraded"]
    assert not is_true(conditions, "Ready") and not is_true(conditions, "Progressing")
