"""Server-sent events: frames encoded with sse_starlette's encoder, comments to open and keep alive."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

from sse_starlette.event import ServerSentEvent

from llorch.dataplane.tasks import Frame, Task

# A comment at least this often: neither waitress's channel timeout (120 s) nor a proxy may
# take a long prompt phase for a dead connection.
HEARTBEAT_SECONDS = 15.0

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def encode(frame: Frame) -> bytes:
    # ASCII-only JSON: a token may hold U+2028, U+0085 or the like, which some clients' line
    # readers split on (httpx's iter_lines does), cutting the frame's JSON in two.
    return ServerSentEvent(
        data=json.dumps(frame.data, separators=(",", ":")),
        event=frame.event,
        id=str(frame.id),
        sep="\n",
    ).encode()


def comment(text: str) -> bytes:
    return ServerSentEvent(comment=text, sep="\n").encode()


def task_stream(task: Task, after: int, on_abandon: Callable[[], None]) -> Iterator[bytes]:
    """Replay `task`'s frames with id > `after`, then follow it live until its last frame.

    The opening comment makes waitress send the headers at once (it sends them with the first
    non-empty chunk). If the client goes away before the end, `on_abandon` runs: an unwatched
    task is canceled rather than left burning a slot.
    """
    yield comment("stream open")
    finished = False
    try:
        while True:
            frames, ended = task.wait_frames(after, HEARTBEAT_SECONDS)
            for frame in frames:
                yield encode(frame)
                after = frame.id
            if ended and not task.wait_frames(after, 0)[0]:
                finished = True
                return
            if not frames:
                yield comment("heartbeat")
    finally:
        if not finished:
            on_abandon()
