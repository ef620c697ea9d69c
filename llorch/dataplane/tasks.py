"""A task's life: its request, state, and the frames its stream replays to every subscriber."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from llorch.runtime.engines.base import CompletionRequest, CompletionStream

TERMINAL_EVENTS = ("end", "error")


@dataclass(frozen=True)
class Frame:
    id: int
    event: str
    data: dict[str, Any]


@dataclass
class Task:
    id: str
    pool: str
    request: CompletionRequest
    priority: str = "interactive"
    session_id: str | None = None
    correlation_id: str | None = None
    created_at: float = field(default_factory=time.time)
    state: str = "queued"  # queued | running | succeeded | failed | canceled
    replica_id: str | None = None
    queue_position: int = 0
    predicted_start_ms: int = 0
    frames: list[Frame] = field(default_factory=list)
    ended_at: float | None = None
    stream: CompletionStream | None = None
    changed: threading.Condition = field(default_factory=threading.Condition)

    def emit(self, event: str, data: dict[str, Any]) -> bool:
        """Append a frame; False (and nothing appended) once the task has ended.

        The terminal check and the append happen under one lock, which is what makes cancel
        race-free: after `finish` returns, no token frame can follow.
        """
        with self.changed:
            if self.finished:
                return False
            self.frames.append(Frame(id=len(self.frames), event=event, data=data))
            self.changed.notify_all()
            return True

    def finish(self, state: str, event: str, data: dict[str, Any]) -> bool:
        with self.changed:
            if self.finished:
                return False
            self.frames.append(Frame(id=len(self.frames), event=event, data=data))
            self.state = state
            self.ended_at = time.time()
            self.changed.notify_all()
            return True

    @property
    def finished(self) -> bool:
        return self.ended_at is not None

    def wait_frames(self, after: int, timeout: float) -> tuple[list[Frame], bool]:
        """Frames with id > `after` (waiting up to `timeout` for one), and whether the task ended."""
        with self.changed:
            if len(self.frames) <= after + 1 and not self.finished:
                self.changed.wait(timeout)
            return self.frames[after + 1 :], self.finished

    def summary(self) -> dict[str, Any]:
        with self.changed:
            end = self.frames[-1].data if self.finished and self.frames else {}
            return {
                "task_id": self.id,
                "pool": self.pool,
                "state": self.state,
                "replica": self.replica_id,
                "correlation_id": self.correlation_id,
                "created_ms": int(self.created_at * 1000),
                "ended_ms": int(self.ended_at * 1000) if self.ended_at else None,
                "queue_position": self.queue_position,
                "predicted_start_ms": self.predicted_start_ms,
                "frames": len(self.frames),
                "result": end,
            }
