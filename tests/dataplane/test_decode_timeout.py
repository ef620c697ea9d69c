"""A replica whose engine goes silent mid-stream: the task ends with DECODE_TIMEOUT (retriable)
and the replica is reported hung. The engine is a test double (a stream that yields one token,
then blocks until closed), the rest is real: store, sqlite, registry, dispatcher."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx

from llorch.dataplane.service import TaskService
from llorch.resources import Pool
from llorch.runtime.engines.base import CompletionRequest, Finished, StreamEvent, Token, Upstream
from llorch.runtime.engines.llamacpp import LlamaCpp
from llorch.runtime.registry import Replica, ReplicaRegistry
from llorch.store.db import StateDB
from llorch.store.manifests import ManifestStore

POOL = """\
apiVersion: llorch.dev/v1
kind: Pool
metadata: {name: demo}
spec: {model: m, slots: 1, decodeTimeoutSeconds: 0.3}
"""


class OneTokenThenSilence:
    def __init__(self) -> None:
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[StreamEvent]:
        yield Token("hello")
        self.closed.wait(30)
        if not self.closed.is_set():
            yield Finished(tokens_out=1, tokens_in=1, finish_reason="stop")

    def close(self) -> None:
        self.closed.set()


class HangingEngine(LlamaCpp):
    def __init__(self) -> None:
        self.streams: list[OneTokenThenSilence] = []

    def complete(
        self, client: httpx.Client, upstream: Upstream, request: CompletionRequest
    ) -> OneTokenThenSilence:  # type: ignore[override]
        stream = OneTokenThenSilence()
        self.streams.append(stream)
        return stream

    def kv_cache_usage(self, client: httpx.Client, upstream: Upstream) -> float | None:
        return None

    def busy_slots(self, client: httpx.Client, upstream: Upstream) -> int | None:
        return None


def test_an_engine_silent_mid_stream_ends_the_task_with_decode_timeout(tmp_path: Path) -> None:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "pool.yaml").write_text(POOL)
    store = ManifestStore(folder)
    store.load()
    engine = HangingEngine()
    registry = ReplicaRegistry()
    hung: list[str] = []
    registry.on_unhealthy(lambda replica: hung.append(f"{replica.id}: {replica.unhealthy}"))
    registry.add(Replica("demo-0", "demo", "llamacpp", Upstream("http://127.0.0.1:9", "m"), 1, engine))
    tasks = TaskService(store=store, db=StateDB(tmp_path / "s.sqlite"), registry=registry)
    tasks.start()
    try:
        entry = store.get("Pool/demo")
        assert entry is not None and isinstance(entry.obj, Pool)
        task = tasks.submit(CompletionRequest(prompt="x", max_tokens=8), pool=entry.obj).task
        assert task.wait_end(10), "the stalled task ends"
        last = task.frames[-1]
        assert [f.event for f in task.frames] == ["started", "token", "error"]
        assert last.data["code"] == "DECODE_TIMEOUT" and last.data["retriable"] is True
        assert "sent nothing for 0.3s mid-stream" in last.data["message"]
        assert engine.streams[0].closed.is_set(), "the engine request is dropped"
        assert hung == ["demo-0: sent nothing for 0.3s mid-stream"]
        assert registry.serving("demo") == 0, "no more work to the hung replica"
    finally:
        tasks.stop()
