"""A relayed task's answer: the engine's bytes, from the task's `relay` frames, as they come.

The HTTP status waits for the engine: an engine that refuses the request (400 for a tool the
model cannot call, 500 for a crash) is answered with its own status, in the client's error
shape. Once the first bytes went out, an error can only end the stream: the engine's own error
event is already relayed; one of llorch's (canceled, drained, the session budget spent) is
written as an error event of the client's shape.

A client that goes away, while its task waits for a slot or while it runs, abandons it: the
task is canceled and its slot freed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import falcon

from llorch.api import sse
from llorch.api.errors import answer_headers
from llorch.api.relay.shapes import Dialect, engine_error_json, error_json, stream_error_event
from llorch.dataplane.service import TaskService
from llorch.dataplane.tasks import Frame, Task
from llorch.resources.errors import ErrorCode, LlorchError

RELAY = "relay"
BUDGET_SPENT = LlorchError(
    ErrorCode.BUDGET_EXCEEDED, "the session's budget ran out before the engine finished"
)


def first_frames(task: Task, tasks: TaskService, gone: sse.ClientGone) -> list[Frame]:
    """The task's frames up to its first engine bytes or its end; raises sse.ClientLeft (the task
    abandoned) if the client leaves first, while the task waits for a slot or its first token."""
    seen: list[Frame] = []
    after = -1
    try:
        while True:
            frames, ended = sse.next_frames(task, after, gone)
            for frame in frames:
                seen.append(frame)
                after = frame.id
                if frame.event in (RELAY, "end", "error"):
                    return seen
            if ended and not frames:
                return seen
    except BaseException:
        tasks.abandon(task)
        raise


def raw_bytes(frame: Frame) -> bytes:
    """A relay frame's engine bytes, exactly (the dispatcher decoded them with surrogateescape)."""
    return str(frame.data["raw"]).encode("utf-8", "surrogateescape")


def failure(dialect: Dialect, frame: Frame) -> tuple[int, dict[str, Any], LlorchError]:
    """A terminal frame that is no success: status, body in the client's shape, and the error."""
    data = frame.data
    if frame.event == "end":
        return BUDGET_SPENT.code.http_status, error_json(dialect, BUDGET_SPENT), BUDGET_SPENT
    error = LlorchError.from_frame(data)
    upstream = data.get("upstream")
    if isinstance(upstream, dict):
        status = int(data.get("status") or 500)
        return status, engine_error_json(dialect, status, upstream), error
    return error.code.http_status, error_json(dialect, error), error


def is_success(frame: Frame) -> bool:
    return frame.event == RELAY or (frame.event == "end" and frame.data.get("finish_reason") != "budget")


def relay_stream(
    task: Task, tasks: TaskService, dialect: Dialect, opening: list[Frame], gone: sse.ClientGone
) -> Iterator[bytes]:
    """The engine's SSE bytes, written as they arrive; the task abandoned if the client leaves."""
    done = False
    try:
        frames = opening
        after = frames[-1].id if frames else -1
        while True:
            out: list[bytes] = []
            for frame in frames:
                after = frame.id
                if frame.event == RELAY:
                    out.append(raw_bytes(frame))
                elif frame.event in ("end", "error"):
                    done = True
                    if not is_success(frame) and not frame.data.get("relayed"):
                        out.append(stream_error_event(dialect, failure(dialect, frame)[1]))
            if out:
                yield b"".join(out)
            if done:
                return
            frames, _ = sse.next_frames(task, after, gone)
            if not frames:
                yield sse.comment("heartbeat")
    except sse.ClientLeft:
        return
    finally:
        if not done:
            tasks.abandon(task)


def whole(task: Task, tasks: TaskService, gone: sse.ClientGone) -> list[Frame]:
    """Wait for the task's end (raises sse.ClientLeft, the task abandoned, if the client leaves)."""
    try:
        while not task.wait_end(sse.CLIENT_CHECK_SECONDS):
            if gone():
                raise sse.ClientLeft
    except BaseException:
        tasks.abandon(task)
        raise
    frames, _ = task.wait_frames(-1, 0)
    return frames


def respond_failure(resp: falcon.Response, dialect: Dialect, frame: Frame) -> None:
    """The status and the error in the client's shape, with when to try again."""
    status, body, error = failure(dialect, frame)
    resp.status = falcon.code_to_http_status(status)
    resp.media = body
    resp.set_headers(answer_headers(error))
    if error.retry_after_ms is not None and dialect is Dialect.OPENAI:
        resp.set_header("retry-after-ms", str(int(error.retry_after_ms)))
    resp.set_header("x-should-retry", "true" if error.retriable else "false")


def respond_whole(resp: falcon.Response, dialect: Dialect, frames: list[Frame]) -> None:
    """The engine's whole body as it sent it, or the failure."""
    last = frames[-1]
    if last.event == "end" and is_success(last):
        resp.content_type = falcon.MEDIA_JSON
        resp.data = b"".join(raw_bytes(f) for f in frames if f.event == RELAY)
        return
    respond_failure(resp, dialect, last)
