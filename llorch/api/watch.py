"""Watches: `GET /v1/pools?watch=true` (and models, policies, events) as a server-sent event
stream of changes, the way `kubectl get -w` follows a list.

A watch starts with every object as ADDED, then sends ADDED, MODIFIED and DELETED as objects
come, change (spec, status) and go; each frame's `id` is the resource version after it, so a
client that reconnects with `Last-Event-ID` (or `?resourceVersion=`) gets only what it missed. A
client further behind than the change feed remembers gets the whole list again as ADDED, as a
Kubernetes client relists after 410 Gone. Event watches send each new or repeated event.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import falcon
from sse_starlette.event import ServerSentEvent

from llorch.api import sse
from llorch.api.context import AppContext
from llorch.api.errors import RequestError
from llorch.resources.errors import ErrorCode
from llorch.store.changes import Change, ChangeFeed

View = Callable[[str], dict[str, Any] | None]
"""The object's view now, or None when it is gone."""


def resume_version(req: falcon.Request) -> int | None:
    """Where the client left off: `Last-Event-ID` (a reconnecting EventSource) or `resourceVersion`."""
    raw = req.get_header("Last-Event-ID") or req.get_param("resourceVersion")
    if raw is None:
        return None
    try:
        version = int(raw)
    except ValueError:
        raise RequestError(
            ErrorCode.INVALID_PARAMS,
            f"resourceVersion must be a number, got {raw!r}",
            param="resourceVersion",
        ) from None
    if version < 0:
        raise RequestError(
            ErrorCode.INVALID_PARAMS, "resourceVersion must not be negative", param="resourceVersion"
        )
    return version


def start(req: falcon.Request, resp: falcon.Response, frames: Iterator[bytes]) -> None:
    resp.content_type = "text/event-stream"
    resp.set_headers(sse.HEADERS)
    resp.stream = frames


def _frame(kind: str, version: int, data: dict[str, Any]) -> bytes:
    body = json.dumps(data, separators=(",", ":"))
    return ServerSentEvent(data=body, event=kind, id=str(version), sep="\n").encode()


def objects(
    ctx: AppContext,
    kind: str,
    view: View,
    names: Callable[[], list[str]],
    since: int | None,
    gone: sse.ClientGone,
) -> Iterator[bytes]:
    """The watch of every object of `kind`: `names()` lists the keys there are now."""
    feed = ctx.db.changes
    version = feed.version
    sent: dict[str, dict[str, Any]] = {}

    def relist(at: int) -> Iterator[bytes]:
        """Every object as ADDED (and what the client had that is gone as DELETED), as of `at`."""
        present = names()
        for key in present:
            shown = view(key)
            if shown is not None:
                sent[key] = shown
                yield _frame("ADDED", at, {"type": "ADDED", "object": shown})
        for key in [k for k in sent if k not in present]:
            yield _frame("DELETED", at, {"type": "DELETED", "object": sent.pop(key)})

    yield sse.comment("watching")
    if since is None or since > version:
        yield from relist(version)
    else:
        # The client had what existed when it left off; the changes since tell the rest.
        sent.update({key: {} for key in names() if (feed.first_seen(key) or 0) <= since})
        version = since

    def on_changes(changes: list[Change] | None) -> list[bytes]:
        if changes is None:
            return list(relist(feed.version))
        return [
            frame
            for change in _latest_per_key(changes, f"{kind}/")
            for frame in _object_frame(change, view, sent)
        ]

    yield from _follow(feed, version, gone, on_changes)


def _follow(
    feed: ChangeFeed,
    version: int,
    gone: sse.ClientGone,
    on_changes: Callable[[list[Change] | None], list[bytes]],
) -> Iterator[bytes]:
    """Wait for changes after `version` and write the frames `on_changes` makes of them (given
    None when the watch fell too far behind and starts over), with a heartbeat comment while
    nothing changes, until the client leaves."""
    quiet_since = time.monotonic()
    while not gone():
        changes = feed.since(version, sse.CLIENT_CHECK_SECONDS)
        if changes is None:
            version = feed.version
        elif changes:
            version = changes[-1].version
        frames = on_changes(changes)
        if frames:
            quiet_since = time.monotonic()
            yield b"".join(frames)
        elif time.monotonic() - quiet_since >= sse.HEARTBEAT_SECONDS:
            quiet_since = time.monotonic()
            yield sse.comment("heartbeat")


def _latest_per_key(changes: list[Change], prefix: str) -> list[Change]:
    """One change per object (its newest), in the order of their newest changes."""
    latest: dict[str, Change] = {}
    for change in changes:
        if change.key.startswith(prefix):
            latest.pop(change.key, None)
            latest[change.key] = change
    return list(latest.values())


def _object_frame(change: Change, view: View, sent: dict[str, dict[str, Any]]) -> list[bytes]:
    shown = view(change.key)
    if shown is None:
        last = sent.pop(change.key, None)
        if last is None:
            return []
        gone_object = last or {
            "kind": change.key.split("/", 1)[0],
            "metadata": {"name": change.key.split("/", 1)[1]},
        }
        return [_frame("DELETED", change.version, {"type": "DELETED", "object": gone_object})]
    kind = "MODIFIED" if change.key in sent else "ADDED"
    sent[change.key] = shown
    return [_frame(kind, change.version, {"type": kind, "object": shown})]


def events(
    ctx: AppContext, keys: list[str] | None, limit: int, since: int | None, gone: sse.ClientGone
) -> Iterator[bytes]:
    """The watch of events (of `keys`, when given): the newest `limit` first, then each event as it
    is recorded or repeats (a repeat carries its new count and lastTimestamp)."""
    feed = ctx.db.changes
    version = feed.version
    yield sse.comment("watching")
    if since is None or since > version:
        backlog = [_event_frame(version, e.to_wire()) for e in ctx.db.all_events(keys=keys, limit=limit)]
        if backlog:
            yield b"".join(backlog)
    else:
        version = since

    def on_changes(changes: list[Change] | None) -> list[bytes]:
        frames = []
        for change in changes or ():
            if change.what != "event" or (keys and change.key not in keys):
                continue
            newest = ctx.db.events(change.key, limit=1)
            if newest:
                frames.append(_event_frame(change.version, newest[-1].to_wire()))
        return frames

    yield from _follow(feed, version, gone, on_changes)


def _event_frame(version: int, event: dict[str, Any]) -> bytes:
    return _frame("event", version, event)
