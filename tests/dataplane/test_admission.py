from __future__ import annotations

import pytest

from llorch.dataplane.admission import AdmissionQueue, QueueFull
from llorch.dataplane.tasks import Task
from llorch.runtime.engines.base import CompletionRequest


def task(id_: str, priority: str = "interactive") -> Task:
    return Task(id=id_, pool="demo", request=CompletionRequest(prompt="x", max_tokens=1), priority=priority)


def test_interactive_goes_before_batch_and_fifo_within() -> None:
    queue = AdmissionQueue()
    b1, i1, b2, i2 = task("b1", "batch"), task("i1"), task("b2", "batch"), task("i2")
    assert [queue.push(t, 10) for t in (b1, i1, b2, i2)] == [0, 0, 2, 1]
    assert [queue.position(t) for t in (i1, i2, b1, b2)] == [0, 1, 2, 3]
    order = []
    while (head := queue.peek("demo")) is not None:
        assert queue.pop("demo", head)
        order.append(head.id)
    assert order == ["i1", "i2", "b1", "b2"]


def test_capacity_and_removal_move_the_rest_up() -> None:
    queue = AdmissionQueue()
    a, b, c = task("a"), task("b"), task("c")
    queue.push(a, 2)
    queue.push(b, 2)
    with pytest.raises(QueueFull):
        queue.push(c, 2)
    assert queue.remove(a) and not queue.remove(a)
    assert queue.position(b) == 0 and queue.depth("demo") == 1
    assert not queue.pop("demo", a), "a task that left is not handed out"


def test_drop_lru_evicts_the_longest_waiting_of_the_lowest_priority_it_outranks() -> None:
    queue = AdmissionQueue()
    i1, b1, b2 = task("i1"), task("b1", "batch"), task("b2", "batch")
    for t in (i1, b1, b2):
        queue.push(t, 10)
    assert queue.evict_for(task("new-i")) is b1, "an interactive task drops the oldest batch task"
    assert queue.evict_for(task("new-b", "batch")) is b2
    assert queue.evict_for(task("late-b", "batch")) is None, "a batch task never drops an interactive one"
    assert queue.evict_for(task("new-i2")) is i1
