"""What only the vLLM adapter does, against vLLM's wire format replayed from fixtures (vLLM cannot run
here). The shapes every engine shares are in test_wire_fixture.py."""

from __future__ import annotations

import httpx
import pytest

from llorch.runtime.engines.base import ChatTurn, CompletionRequest, Finished, Token, Upstream
from llorch.runtime.engines.chatml import render
from llorch.runtime.errors import EngineError
from tests.runtime.engines.replay import (
    REQUEST,
    ReplayServer,
    collect,
    held,
    json_reply,
    stream_reply,
    upstream,
)
from tests.runtime.engines.wires import VLLM

ADAPTER = VLLM.adapter


def test_a_chat_goes_to_the_chat_endpoint_with_its_turns(server: ReplayServer, client: httpx.Client) -> None:
    server.route("POST", "/v1/chat/completions", stream_reply("vllm", "chat_stream_ok.sse"))
    turns = (ChatTurn("system", "Be brief."), ChatTurn("user", "Capital of France?"))
    chat = CompletionRequest(prompt=render(turns), max_tokens=16, seed=42, messages=turns)
    events = collect(ADAPTER.complete(client, upstream(server), chat))
    # completion_tokens is 6: the EOS token had no text and becomes one empty frame.
    assert [e.text for e in events if isinstance(e, Token)] == ["Paris", " is", " the", " capital", ".", ""]
    assert events[-1] == Finished(tokens_out=6, tokens_in=14, finish_reason="stop")
    (sent,) = server.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.body == {
        "model": "tiny",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Capital of France?"},
        ],
        "max_tokens": 16,
        "stream": True,
        "stream_options": {"include_usage": True},
        "seed": 42,
    }, "vLLM applies the model's own template: no ChatML, no ChatML stops"


def test_context_per_slot_is_read_from_the_served_models_card_only(
    server: ReplayServer, client: httpx.Client
) -> None:
    server.route("GET", "/v1/models", json_reply("vllm", "models.json"))
    other = Upstream(base_url=server.base_url, model="not-served")
    assert ADAPTER.context_per_slot(client, other) is None, "another model's card says nothing of this one"


def test_a_late_close_cannot_touch_a_connection_another_stream_reuses(
    server: ReplayServer, client: httpx.Client
) -> None:
    # An error reply is read to the end, so its keep-alive connection goes back to the pool and
    # the next stream takes it; cancelling the finished first stream must not shut it down.
    server.route("POST", VLLM.path, json_reply("vllm", "error_400_context.json", status=400))
    first = ADAPTER.complete(client, upstream(server), REQUEST)
    with pytest.raises(EngineError):
        collect(first)
    server.route("POST", VLLM.path, held("vllm", "stream_ok.sse", 2))
    second = iter(ADAPTER.complete(client, upstream(server), REQUEST))
    assert next(second) == Token(" Paris")
    first.close()
    assert not server.client_left.wait(0.3)
    assert next(second) == Token(".")
