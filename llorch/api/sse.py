"""Server-sent events: frames encoded with sse_starlette's encoder, comments to open and keep alive."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sse_starlette.event import ServerSentEvent

from llorch.dataplane.tasks import Frame, Task

# A comment at least this often: neither waitress's channel timeout (120 s) nor a proxy may
# take a long prompt phase for a dead connection.
HEARTBEAT_SECONDS = 15.0

# How often a response waiting on its task looks whether the client is still there, so that a
# client leaving during a long queue wait or prompt phase frees its place within a second rather
# than at the next heartbeat.
CLIENT_CHECK_SECONDS = 0.5

ClientGone = Callable[[], bool]

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


class ClientLeft(Exception):
    """The client closed its connection while its response was still being made."""


def client_gone(env: Mapping[str, Any]) -> ClientGone:
    """waitress's own check for a closed connection (it needs `channel_request_lookahead`, set in
    server.py); under a WSGI server without one, a client is never seen leaving while idle."""
    check: ClientGone | None = env.get("waitress.client_disconnected")
    return check if check is not None else (lambda: False)


def next_frames(task: Task, after: int, gone: ClientGone) -> tuple[list[Frame], bool]:
    """`task`'s frames with id > `after` once there are any, or none after HEARTBEAT_SECONDS; and
    whether the task ended. Raises ClientLeft if the client has gone away."""
    deadline = time.monotonic() + HEARTBEAT_SECONDS
    while True:
        if gone():
            raise ClientLeft
        left = deadline - time.monotonic()
        frames, ended = task.wait_frames(after, max(0.0, min(CLIENT_CHECK_SECONDS, left)))
        if frames or ended or left <= CLIENT_CHECK_SECONDS:
            return frames, ended


def task_stream(task: Task, after: int, gone: ClientGone, on_abandon: Callable[[], None]) -> Iterator[bytes]:
    """Replay `task`'s frames with id > `after`, then follow it live until its last frame.

    The opening comment makes waitress send the headers at once (it sends them with the first
    non-empty chunk). Frames that are already there go out in one write. If the client goes away
    before the end, `on_abandon` runs: an unwatched task is canceled rather than left burning a
    slot.
    """
    yield comment("stream open")
    finished = False
    try:
        while True:
            frames, ended = next_frames(task, after, gone)
            if frames:
                yield b"".join(encode(frame) for frame in frames)
                after = frames[-1].id
            if ended and not task.wait_frames(after, 0)[0]:
                finished = True
                return
            if not frames:
                yield comment("heartbeat")
    except ClientLeft:
        return
    finally:
        if not finished:
            on_abandon()
