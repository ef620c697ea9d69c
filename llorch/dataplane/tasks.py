"""A task's life: its request, state, and the frames its stream replays to every subscriber."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from llorch.resources.errors import LlorchError
from llorch.runtime.engines.base import CompletionRequest
from llorch.runtime.engines.relay import RelayRequest
from llorch.store.db import TaskRecord


class Stoppable(Protocol):
    def close(self) -> None:
        """Drop the upstream request so the engine stops decoding; safe from another thread."""


@dataclass(frozen=True)
class Frame:
    id: int
    event: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Budget:
    """What the task's session had left when it was admitted; None means no such budget."""

    tokens: int | None = None
    time_ms: float | None = None
    cost: float | None = None
    cost_per_1k: float = 0.0

    def token_limit(self) -> int | None:
        """Tokens this task may generate before it ends with finish_reason "budget"."""
        limits = [self.tokens] if self.tokens is not None else []
        if self.cost is not None and self.cost_per_1k > 0:
            limits.append(int(self.cost / self.cost_per_1k * 1000))
        return min(limits) if limits else None

    def remaining(self, tokens: int, elapsed_ms: float) -> dict[str, float | int | None]:
        return {
            "tokens_budget_remaining": None if self.tokens is None else max(0, self.tokens - tokens),
            "time_budget_remaining_ms": None
            if self.time_ms is None
            else max(0.0, round(self.time_ms - elapsed_ms)),
            "cost_budget_remaining": None
            if self.cost is None
            else max(0.0, round(self.cost - tokens / 1000 * self.cost_per_1k, 6)),
        }


@dataclass
class Task:
    id: str
    pool: str
    # A native task's request, or a relayed OpenAI/Anthropic one (its frames are then `relay`
    # frames of the engine's own bytes, `raw`, instead of `token` frames).
    request: CompletionRequest | RelayRequest
    priority: str = "interactive"
    session_id: str | None = None
    correlation_id: str | None = None
    created_at: float = field(default_factory=time.time)
    state: str = "queued"  # queued | running | succeeded | failed | canceled
    replica_id: str | None = None
    queue_position: int = 0
    predicted_start_ms: int = 0
    budget: Budget = field(default_factory=Budget)
    # Strict determinism: run alone on a replica, so batching cannot change the tokens.
    strict: bool = False
    # time.time() by which the task must end (deadline_ms after admission); None: no deadline.
    deadline_at: float | None = None
    # Its pool's decodeTimeoutSeconds: how long the engine may send nothing once tokens flow.
    decode_timeout: float | None = None
    # time.monotonic() of the engine's last token; None until the first.
    last_token_at: float | None = None
    # Tokens streamed so far: what the start predictions of tasks behind it count on.
    tokens_out: int = 0
    expected_tokens: int | None = None
    # Its Policy's admission.activationTimeoutSeconds: how long it may wait for a replica to exist.
    activation_timeout: float | None = None
    # A slot was free when it was admitted: its start measures what dispatching costs.
    slot_free_at_admission: bool = False
    frames: list[Frame] = field(default_factory=list)
    started_at: float | None = None
    ended_at: float | None = None
    stream: Stoppable | None = None
    changed: threading.Condition = field(default_factory=threading.Condition)
    on_finish: Callable[[Task, dict[str, Any]], None] | None = None
    # The trace context of its admission (llorch.runtime.tracing): the parent of its later spans.
    trace_context: Any = None

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
            self.ended_at = time.time()
            if self.on_finish is not None:
                # Before the last frame goes out: a client that reads `end` and asks at once
                # (its session's budget, say) sees the turn already counted.
                self.on_finish(self, data)
            self.frames.append(Frame(id=len(self.frames), event=event, data=data))
            self.state = state
            self.changed.notify_all()
            return True

    def fail(self, state: str, error: LlorchError) -> bool:
        """End with an `error` frame carrying `error` (state: failed or canceled)."""
        return self.finish(state, "error", error.frame())

    @property
    def finished(self) -> bool:
        return self.ended_at is not None

    def wait_frames(self, after: int, timeout: float) -> tuple[list[Frame], bool]:
        """Frames with id > `after` (waiting up to `timeout` for one), and whether the task ended."""
        with self.changed:
            if len(self.frames) <= after + 1 and not self.finished:
                self.changed.wait(timeout)
            return self.frames[after + 1 :], self.finished

    def wait_end(self, timeout: float) -> bool:
        """Whether the task has ended, waiting up to `timeout` for it."""
        with self.changed:
            return self.changed.wait_for(lambda: self.finished, timeout)

    def record(self) -> TaskRecord:
        """What outlives the task in sqlite."""
        with self.changed:
            end = self.frames[-1].data if self.finished and self.frames else {}
            return TaskRecord(
                id=self.id,
                pool=self.pool,
                replica_id=self.replica_id,
                state=self.state,
                correlation_id=self.correlation_id,
                session_id=self.session_id,
                created_at=self.created_at,
                ended_at=self.ended_at,
                tokens_in=end.get("tokens_in"),
                tokens_out=end.get("tokens_out"),
                ttft_ms=end.get("ttft_ms"),
                decode_ms=end.get("decode_ms"),
                finish_reason=end.get("finish_reason"),
                error_code=end.get("code"),
            )

    def summary(self) -> dict[str, Any]:
        """The record's summary, with what only a live task knows; `result` is its whole last frame."""
        with self.changed:
            return {
                **self.record().summary(),
                "queue_position": self.queue_position,
                "predicted_start_ms": self.predicted_start_ms,
                "frames": len(self.frames),
                "result": self.frames[-1].data if self.finished and self.frames else {},
            }
