"""Watches over real loopback HTTP (waitress, as llorchd serves): `GET /v1/pools?watch=true` and
`GET /v1/events?watch=true` follow changes as `kubectl get -w` does, and resume where they left."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent, connect_sse

from llorch.api.app import create_app
from llorch.api.context import AppContext
from llorch.resources.status import PoolStatus
from llorch.store.changes import ChangeFeed
from tests.api.appctx import app_context, close, served

POOL = """\
apiVersion: llorch.dev/v1
kind: Pool
metadata: {{name: {name}}}
spec: {{model: m}}
"""


@dataclass
class Server:
    url: str
    ctx: AppContext

    def apply(self, name: str) -> None:
        resp = httpx.post(
            self.url + "/v1/manifests",
            content=POOL.format(name=name),
            headers={"Content-Type": "application/yaml"},
        )
        assert resp.status_code == 200, resp.text


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    ctx = app_context(tmp_path)
    ctx = dataclasses.replace(ctx, changed=lambda keys: ctx.db.changes.publish(sorted(keys), "spec"))
    (ctx.store.folder / "demo.yaml").write_text(POOL.format(name="demo"))
    ctx.store.load()
    app = create_app(ctx)
    with served(app, threads=6) as url:
        yield Server(url, ctx)
    close(ctx)


class Watch:
    """A watch read in the test's own thread: `next()` waits for the next frame (its server sends
    it as the change happens); closing leaves the stream, as a client does."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.frames: list[ServerSentEvent] = []
        self._client = httpx.Client(timeout=httpx.Timeout(5, read=10))
        self._source = connect_sse(self._client, "GET", url, headers=headers or {})
        self._events = self._source.__enter__().iter_sse()

    def next(self) -> ServerSentEvent:
        frame = next(self._events)
        self.frames.append(frame)
        return frame

    def wait(self, count: int) -> list[ServerSentEvent]:
        while len(self.frames) < count:
            self.next()
        return list(self.frames)

    def close(self) -> None:
        self._source.__exit__(None, None, None)
        self._client.close()


def data(frame: ServerSentEvent) -> dict[str, Any]:
    return dict(json.loads(frame.data))


def test_a_pool_watch_sends_the_list_then_each_change(server: Server) -> None:
    watch = Watch(server.url + "/v1/pools?watch=true")
    try:
        (first,) = watch.wait(1)
        assert first.event == "ADDED" and data(first)["object"]["metadata"]["name"] == "demo"
        server.ctx.db.put_status("Pool/demo", PoolStatus(replicas=1, ready_replicas=1))
        modified = watch.wait(2)[1]
        assert modified.event == "MODIFIED" and data(modified)["object"]["status"]["readyReplicas"] == 1
        server.ctx.db.put_status("Pool/demo", PoolStatus(replicas=1, ready_replicas=1))
        server.apply("other")
        added = watch.wait(3)[2]
        assert added.event == "ADDED" and data(added)["object"]["metadata"]["name"] == "other", (
            "an unchanged status is no news"
        )
        assert httpx.delete(server.url + "/v1/pools/other").status_code == 200
        deleted = watch.wait(4)[3]
        assert deleted.event == "DELETED" and data(deleted)["object"]["metadata"]["name"] == "other"
        assert [int(f.id) for f in watch.frames[1:]] == sorted(int(f.id) for f in watch.frames[1:])
    finally:
        watch.close()


def test_a_watch_resumes_after_the_version_it_saw(server: Server) -> None:
    listed = httpx.get(server.url + "/v1/pools").json()
    version = listed["metadata"]["resourceVersion"]
    server.ctx.db.put_status("Pool/demo", PoolStatus(replicas=2))
    server.apply("late")
    watch = Watch(server.url + f"/v1/pools?watch=true&resourceVersion={version}")
    try:
        frames = watch.wait(2)
        assert [(f.event, data(f)["object"]["metadata"]["name"]) for f in frames] == [
            ("MODIFIED", "demo"),
            ("ADDED", "late"),
        ], "no relist: only what changed since"
    finally:
        watch.close()
    again = Watch(server.url + "/v1/pools?watch=true", headers={"Last-Event-ID": frames[-1].id})
    try:
        server.ctx.db.put_status("Pool/late", PoolStatus(replicas=3))
        (only,) = again.wait(1)
        assert only.event == "MODIFIED" and data(only)["object"]["metadata"]["name"] == "late"
    finally:
        again.close()


def test_a_watch_too_far_behind_gets_the_whole_list_again(server: Server) -> None:
    server.ctx.db.changes = ChangeFeed(keep=2)
    for replicas in range(5):
        server.ctx.db.put_status("Pool/demo", PoolStatus(replicas=replicas))
    watch = Watch(server.url + "/v1/pools?watch=true&resourceVersion=1")
    try:
        (relisted,) = watch.wait(1)
        assert relisted.event == "ADDED" and data(relisted)["object"]["status"]["replicas"] == 4
    finally:
        watch.close()


def test_bad_resource_versions_are_400(server: Server) -> None:
    for version in ("soon", "-1"):
        resp = httpx.get(server.url + f"/v1/pools?watch=true&resourceVersion={version}")
        assert resp.status_code == 400 and resp.json()["code"] == "INVALID_PARAMS"


def test_events_are_listed_and_watched(server: Server) -> None:
    db = server.ctx.db
    db.record_event("Pool/demo", "Normal", "Started", "replica demo-0 started")
    db.record_event("Model/m", "Warning", "Failed", "no weights")
    listed = httpx.get(server.url + "/v1/events").json()
    assert [(e["object"], e["reason"]) for e in listed["items"]] == [
        ("Pool/demo", "Started"),
        ("Model/m", "Failed"),
    ]
    only = httpx.get(server.url + "/v1/events", params={"object": "Model/m"}).json()
    assert [e["reason"] for e in only["items"]] == ["Failed"]
    watch = Watch(server.url + "/v1/events?watch=true&object=Pool/demo")
    try:
        (backlog,) = watch.wait(1)
        assert data(backlog)["reason"] == "Started"
        db.record_event("Model/m", "Warning", "Failed", "still no weights")
        db.record_event("Pool/demo", "Normal", "Started", "replica demo-0 started")
        repeat = watch.wait(2)[1]
        assert data(repeat)["reason"] == "Started" and data(repeat)["count"] == 2, "a repeat, with its count"
        assert [data(f)["object"] for f in watch.frames] == ["Pool/demo"] * 2, "another object's is not sent"
    finally:
        watch.close()
