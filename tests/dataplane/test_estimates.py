"""Moving estimates of service time: per task, and per token for tasks that say how long they are."""

from __future__ import annotations

import pytest

from llorch.dataplane.estimates import INITIAL_SERVICE_SECONDS, ServiceTimes


def test_nothing_is_predicted_before_anything_was_measured() -> None:
    times = ServiceTimes()
    assert times.predicted_service_ms("chat", None) is None
    assert times.predicted_service_ms("chat", 100) is None
    assert times.seconds("chat") == INITIAL_SERVICE_SECONDS, "queue predictions still need a guess"


def test_the_first_sample_is_taken_whole_then_moves_slowly() -> None:
    times = ServiceTimes()
    times.observe("chat", 2.0, tokens=100)
    assert times.predicted_service_ms("chat", None) == 2000
    times.observe("chat", 4.0, tokens=100)
    assert times.seconds("chat") == pytest.approx(2.4)


def test_a_task_that_says_its_length_is_priced_per_token() -> None:
    times = ServiceTimes()
    times.observe("chat", 1.0, tokens=200)
    assert times.predicted_service_ms("chat", 1000) == 5000
    assert times.predicted_service_ms("chat", None) == 1000


def test_tasks_that_did_not_finish_say_nothing_per_token() -> None:
    times = ServiceTimes()
    times.observe("chat", 0.3)
    assert times.predicted_service_ms("chat", 1000) == 300, "falls back to the per-task figure"
