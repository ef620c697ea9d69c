"""Relayed requests as tasks: the dispatcher runs them on a replica like any other task, turns the
engine's bytes into `relay` frames, and ends them with the engine's own counts. The replica is a
loopback double of a vLLM server replaying vLLM's wire fixtures (vLLM cannot run here)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from llorch.dataplane.service import TaskService
from llorch.dataplane.tasks import Task
from llorch.resources import Pool
from llorch.runtime.engines.base import Upstream
from llorch.runtime.engines.relay import CHAT, RelayRequest
from llorch.runtime.engines.vllm import VLlm
from llorch.runtime.registry import Replica, ReplicaRegistry
from llorch.store.db import StateDB
from llorch.store.manifests import ManifestStore
from tests.runtime.engines.replay import ReplayServer, Reply, fixture, json_reply, stream_reply

MANIFESTS = """\
apiVersion: llorch.dev/v1
kind: Pool
metadata: {name: v}
spec: {model: m, engine: vllm, slots: 1}
---
apiVersion: llorch.dev/v1
kind: Policy
metadata: {name: p}
spec:
  budgets: {tokens: 200}
"""


@pytest.fixture
def vllm_double() -> Iterator[ReplayServer]:
    with ReplayServer() as server:
        yield server


@pytest.fixture
def tasks(tmp_path: Path, vllm_double: ReplayServer) -> Iterator[tuple[TaskService, Pool]]:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "all.yaml").write_text(MANIFESTS)
    store = ManifestStore(folder)
    store.load()
    registry = ReplicaRegistry()
    registry.add(Replica("v-0", "v", "vllm", Upstream(vllm_double.base_url, "served"), 1, VLlm()))
    service = TaskService(store=store, db=StateDB(tmp_path / "s.sqlite"), registry=registry)
    service.start()
    entry = store.get("Pool/v")
    assert entry is not None and isinstance(entry.obj, Pool)
    yield service, entry.obj
    service.stop()


def run(tasks: tuple[TaskService, Pool], session: str | None = None) -> Task:
    service, pool = tasks
    request = RelayRequest(path=CHAT, body={"messages": []}, stream=True, max_tokens=64)
    task = service.submit(request, pool=pool, session_id=session).task
    assert task.wait_end(10)
    return task


def test_a_relayed_task_streams_the_engines_bytes_and_ends_with_its_counts(
    tasks: tuple[TaskService, Pool], vllm_double: ReplayServer
) -> None:
    vllm_double.route("POST", CHAT, stream_reply("vllm", "chat_stream_tool_calls.sse"))
    task = run(tasks, session="s-1")
    events = [f.event for f in task.frames]
    assert events[0] == "started" and events[-1] == "end" and set(events[1:-1]) <= {"relay", "metrics"}
    relayed = "".join(f.data["raw"] for f in task.frames if f.event == "relay")
    assert relayed.encode() == fixture("vllm", "chat_stream_tool_calls.sse")
    end = task.frames[-1].data
    assert end["tokens_out"] == 17 and end["tokens_in"] == 182 and end["finish_reason"] == "stop"
    session = tasks[0].sessions.get("s-1")
    assert session is not None and session.tokens_used == 17 + 182, "charged the engine's usage"


def test_a_sessions_token_budget_ends_a_relayed_task_mid_stream(
    tasks: tuple[TaskService, Pool], vllm_double: ReplayServer
) -> None:
    vllm_double.route("POST", CHAT, stream_reply("vllm", "chat_stream_tool_calls.sse"))
    first = run(tasks, session="s-2")  # 17 + 182 of the Policy's 200 tokens: one left
    assert first.frames[-1].data["finish_reason"] == "stop"
    pieces = stream_reply("vllm", "chat_stream_tool_calls.sse").events or ()
    vllm_double.route("POST", CHAT, Reply(content_type="text/event-stream", events=pieces[:4], hold=True))
    cut = run(tasks, session="s-2")
    assert cut.state == "succeeded" and cut.frames[-1].data["finish_reason"] == "budget"
    assert vllm_double.client_left.wait(5), "the engine was told to stop"


def test_an_engine_refusal_fails_the_task_with_the_engines_status(
    tasks: tuple[TaskService, Pool], vllm_double: ReplayServer
) -> None:
    vllm_double.route("POST", CHAT, json_reply("vllm", "error_400_tools.json", status=400))
    task = run(tasks)
    assert task.state == "failed"
    error = task.frames[-1]
    assert error.event == "error" and error.data["status"] == 400 and error.data["code"] == "INVALID_PARAMS"
    assert error.data["upstream"]["type"] == "BadRequestError" and error.data["relayed"] is False
