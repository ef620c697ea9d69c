"""Relayed requests run as llorch tasks, against a loopback double of a vLLM server that replays
vLLM's wire fixtures (vLLM cannot run here; llama.cpp's real llama-server is in
tests/e2e/test_relay.py): the SDK gets the engine's chunks, llorch counts the engine's usage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from llorch.runtime.engines.base import Upstream
from llorch.runtime.engines.relay import CHAT
from llorch.runtime.engines.vllm import VLlm
from llorch.runtime.registry import Replica
from tests.api.relay.test_front_door import apply
from tests.api.test_app import Api, serve
from tests.e2e.conftest import wait_for
from tests.runtime.engines.replay import ReplayServer, json_reply, stream_reply

POOL = """\
apiVersion: llorch.dev/v1
kind: Pool
metadata:
  name: vpool
spec:
  model: qwen3-8b
  engine: vllm
  slots: 2
  context: 4096
"""
TOOLS: list[Any] = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
]
MESSAGES: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]


@pytest.fixture
def vllm_double() -> Iterator[ReplayServer]:
    with ReplayServer() as server:
        yield server


@pytest.fixture
def api(tmp_path: Path, vllm_double: ReplayServer) -> Iterator[Api]:
    for running in serve(tmp_path):
        apply(running, POOL)
        upstream = Upstream(base_url=vllm_double.base_url, model="Qwen/Qwen3-8B")
        running.ctx.registry.add(Replica("vpool-0", "vpool", "vllm", upstream, 2, VLlm()))
        running.ctx.tasks.start()
        yield running


def sdk(api: Api) -> openai.OpenAI:
    return openai.OpenAI(base_url=api.url + "/v1", api_key="unused", max_retries=0, timeout=10)


def task(api: Api, task_id: str) -> dict[str, Any]:
    resp = api.http.get(f"{api.url}/v1/tasks/{task_id}")
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_a_streamed_tool_call_reaches_the_sdk_and_the_task_counts_the_engines_usage(
    api: Api, vllm_double: ReplayServer
) -> None:
    vllm_double.route("POST", CHAT, stream_reply("vllm", "chat_stream_tool_calls.sse"))
    with sdk(api).chat.completions.with_streaming_response.create(
        model="vpool", messages=MESSAGES, tools=TOOLS, stream=True, extra_body={"session_id": "s-1"}
    ) as raw:
        task_id = raw.headers["X-Task-Id"]
        chunks = list(raw.parse())
    calls = [c.choices[0].delta.tool_calls for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert calls[0][0].function.name == "get_weather"  # type: ignore[index, union-attr]
    assert "".join(c[0].function.arguments or "" for c in calls) == '{"city": "Paris"}'  # type: ignore[index, union-attr]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert all(c.usage is None for c in chunks), "usage only for a client that asked for it"
    (sent,) = vllm_double.requests
    assert sent.body["model"] == "Qwen/Qwen3-8B" and sent.body["tools"] == TOOLS
    assert "session_id" not in sent.body, "llorch's own field stays with llorch"
    assert sent.body["stream_options"] == {"include_usage": True}, "llorch asked for the usage it counts"

    # The task ends just after its last bytes went out.
    ended = wait_for("the task to end", lambda: (t := task(api, task_id))["state"] != "running" and t)
    assert ended["state"] == "succeeded" and ended["pool"] == "vpool"
    assert ended["result"]["tokens_out"] == 17 and ended["result"]["tokens_in"] == 182
    session = api.http.get(api.url + "/v1/sessions/s-1").json()
    assert session["tokens_used"] == 17 + 182, "the session is charged what the engine counted"


def test_a_client_that_asks_for_usage_gets_the_engines_usage_chunk(
    api: Api, vllm_double: ReplayServer
) -> None:
    vllm_double.route("POST", CHAT, stream_reply("vllm", "chat_stream_logprobs.sse"))
    chunks = list(
        sdk(api).chat.completions.create(
            model="vpool",
            messages=MESSAGES,
            logprobs=True,
            top_logprobs=2,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None and usage.completion_tokens == 3
    tops = [
        c.choices[0].logprobs.content[0].top_logprobs for c in chunks if c.choices and c.choices[0].logprobs
    ]  # type: ignore[index, union-attr]
    assert [len(t) for t in tops] == [2, 2, 2]


def test_an_engine_refusal_reaches_the_sdk_with_its_status_and_frees_the_slot(
    api: Api, vllm_double: ReplayServer
) -> None:
    vllm_double.route("POST", CHAT, json_reply("vllm", "error_400_tools.json", status=400))
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as refused:
            sdk(api).chat.completions.create(
                model="vpool", messages=MESSAGES, tools=TOOLS, tool_choice="auto", stream=stream
            )
        assert "--enable-auto-tool-choice" in refused.value.message
        assert refused.value.type == "BadRequestError" and refused.value.code == "400"
    # The answer goes out as the task ends; its slot is given back right after.
    wait_for("the slot given back", lambda: api.ctx.registry.busy("vpool-0") == 0, timeout=10)
