"""Following a task's frames for a client: replay, batching, heartbeats, and a client that leaves."""

from __future__ import annotations

import threading

import pytest

from llorch.api import sse
from llorch.dataplane.tasks import Task
from llorch.runtime.engines.base import CompletionRequest


@pytest.fixture(autouse=True)
def quick_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse, "HEARTBEAT_SECONDS", 0.3)
    monkeypatch.setattr(sse, "CLIENT_CHECK_SECONDS", 0.05)


def new_task() -> Task:
    return Task(id="t-1", pool="demo", request=CompletionRequest(prompt="hi", max_tokens=8))


def never() -> bool:
    return False


def test_frames_already_there_come_back_at_once() -> None:
    task = new_task()
    task.emit("started", {"replica": "demo-0"})
    task.emit("token", {"t": "a", "i": 0})
    frames, ended = sse.next_frames(task, -1, never)
    assert [f.event for f in frames] == ["started", "token"] and not ended
    frames, ended = sse.next_frames(task, 0, never)
    assert [f.id for f in frames] == [1]


def test_nothing_new_returns_empty_after_the_heartbeat_interval() -> None:
    frames, ended = sse.next_frames(new_task(), -1, never)
    assert frames == [] and not ended


def test_a_client_that_left_is_noticed_while_waiting() -> None:
    asked: list[bool] = []

    def gone() -> bool:
        asked.append(True)
        return len(asked) >= 2

    with pytest.raises(sse.ClientLeft):
        sse.next_frames(new_task(), -1, gone)
    assert len(asked) == 2


def test_a_frame_arriving_later_wakes_the_waiter() -> None:
    task = new_task()
    timer = threading.Timer(0.1, lambda: task.emit("token", {"t": "b", "i": 0}))
    timer.start()
    frames, _ = sse.next_frames(task, -1, never)
    timer.join()
    assert [f.data["t"] for f in frames] == ["b"]


def test_task_stream_replays_waiting_frames_in_one_write_and_ends_after_the_last() -> None:
    task = new_task()
    task.emit("started", {"replica": "demo-0"})
    task.emit("token", {"t": "a", "i": 0})
    task.finish("succeeded", "end", {"tokens_out": 1})
    abandoned: list[bool] = []
    writes = list(sse.task_stream(task, -1, never, on_abandon=lambda: abandoned.append(True)))
    assert writes[0] == sse.comment("stream open")
    assert writes[1] == b"".join(sse.encode(f) for f in task.frames)
    assert len(writes) == 2 and not abandoned


def test_task_stream_sends_heartbeats_while_nothing_happens() -> None:
    stream = sse.task_stream(new_task(), -1, never, on_abandon=lambda: None)
    assert next(stream) == sse.comment("stream open")
    assert next(stream) == sse.comment("heartbeat")
    stream.close()


def test_task_stream_abandons_the_task_when_its_client_leaves_while_queued() -> None:
    abandoned: list[bool] = []
    flag = threading.Event()
    stream = sse.task_stream(new_task(), -1, flag.is_set, on_abandon=lambda: abandoned.append(True))
    next(stream)
    flag.set()
    assert list(stream) == [] and abandoned == [True]


def test_under_a_server_without_the_waitress_check_nobody_leaves() -> None:
    assert sse.client_gone({})() is False
    assert sse.client_gone({"waitress.client_disconnected": lambda: True})() is True
