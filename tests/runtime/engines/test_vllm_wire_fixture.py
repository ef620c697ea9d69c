"""The vLLM adapter against vLLM's wire format, replayed from fixtures (vLLM cannot run here)."""

from __future__ import annotations

import httpx
import pytest

from llorch.runtime.engines.base import ChatTurn, CompletionRequest, Finished, Token, Upstream
from llorch.runtime.engines.chatml import render
from llorch.runtime.engines.vllm import VLlm
from llorch.runtime.errors import EngineError
from tests.runtime.engines.replay import (
    REQUEST,
    ReplayServer,
    Reply,
    closed_port,
    collect,
    held,
    json_reply,
    stream_reply,
    upstream,
)

PATH = "/v1/completions"
ADAPTER = VLlm()


def test_full_stream_maps_tokens_counts_and_finish(server: ReplayServer, client: httpx.Client) -> None:
    server.route("POST", PATH, stream_reply("vllm", "stream_ok.sse"))
    events = collect(ADAPTER.complete(client, upstream(server), REQUEST))
    texts = [e.text for e in events if isinstance(e, Token)]
    # usage.completion_tokens is 9: the EOS token had no text and becomes one empty frame.
    assert texts == [" Paris", ".", " The", " Eiffel", " Tower", " is", " there", ".", ""]
    assert events[-1] == Finished(tokens_out=9, tokens_in=6, finish_reason="stop")
    assert sum(isinstance(e, Finished) for e in events) == 1


def test_length_finish(server: ReplayServer, client: httpx.Client) -> None:
    server.route("POST", PATH, stream_reply("vllm", "stream_length.sse"))
    events = collect(ADAPTER.complete(client, upstream(server), REQUEST))
    assert "".join(e.text for e in events if isinstance(e, Token)) == " Paris, France's"
    assert events[-1] == Finished(tokens_out=4, tokens_in=6, finish_reason="length")


def test_request_body_and_headers(server: ReplayServer, client: httpx.Client) -> None:
    server.route("POST", PATH, stream_reply("vllm", "stream_ok.sse"))
    collect(ADAPTER.complete(client, upstream(server), REQUEST))
    (sent,) = server.requests
    assert sent.method == "POST" and sent.path == PATH
    assert sent.body == {
        "model": "tiny",
        "prompt": "The capital of France is",
        "max_tokens": 16,
        "stream": True,
        "stream_options": {"include_usage": True},
        "seed": 42,
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 40,
        "stop": ["\n\n"],
    }
    assert sent.headers["authorization"] == "Bearer s3cret"
    assert sent.headers["x-correlation-id"] == "corr-123"


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


def test_unset_sampling_params_are_left_to_the_engine(server: ReplayServer, client: httpx.Client) -> None:
    server.route("POST", PATH, stream_reply("vllm", "stream_ok.sse"))
    collect(ADAPTER.complete(client, upstream(server), CompletionRequest(prompt="hi", max_tokens=8)))
    body = server.requests[0].body
    assert set(body) == {"model", "prompt", "max_tokens", "stream", "stream_options"}
    assert "x-correlation-id" not in server.requests[0].headers


@pytest.mark.parametrize(
    ("name", "status", "code", "retriable"),
    [
        ("error_400_context.json", 400, "INVALID_PARAMS", False),
        ("error_400_legacy.json", 400, "INVALID_PARAMS", False),
        ("error_404_model.json", 404, "POOL_UNAVAILABLE", False),
        ("error_400_context.json", 429, "REPLICA_EXHAUSTED", True),
        ("error_400_context.json", 503, "REPLICA_EXHAUSTED", True),
        ("error_400_context.json", 500, "INTERNAL", False),
    ],
)
def test_error_bodies_map_to_contract_codes(
    server: ReplayServer, client: httpx.Client, name: str, status: int, code: str, retriable: bool
) -> None:
    server.route("POST", PATH, json_reply("vllm", name, status=status))
    with pytest.raises(EngineError) as caught:
        collect(ADAPTER.complete(client, upstream(server), REQUEST))
    assert (caught.value.code, caught.value.retriable, caught.value.engine) == (code, retriable, "vllm")
    if status == 400:
        assert "maximum context length is 2048" in caught.value.message


def test_error_after_the_stream_started(server: ReplayServer, client: httpx.Client) -> None:
    server.route("POST", PATH, stream_reply("vllm", "stream_error.sse"))
    seen: list[object] = []
    with pytest.raises(EngineError) as caught:
        for event in ADAPTER.complete(client, upstream(server), REQUEST):
            seen.append(event)
    assert seen == [Token(" Paris"), Token(".")]
    assert caught.value.code == "INTERNAL"


def test_close_before_iterating_sends_nothing(server: ReplayServer, client: httpx.Client) -> None:
    stream = ADAPTER.complete(client, upstream(server), REQUEST)
    stream.close()
    assert collect(stream) == []
    assert server.requests == []


def test_healthy(server: ReplayServer, client: httpx.Client) -> None:
    server.route("GET", "/health", Reply(status=200))
    assert ADAPTER.healthy(client, upstream(server))
    assert server.requests[0].headers["authorization"] == "Bearer s3cret"
    server.route("GET", "/health", Reply(status=503))
    assert not ADAPTER.healthy(client, upstream(server))
    assert not ADAPTER.healthy(client, Upstream(base_url=f"http://127.0.0.1:{closed_port()}", model="tiny"))


def test_version(server: ReplayServer, client: httpx.Client) -> None:
    server.route("GET", "/version", json_reply("vllm", "version.json"))
    assert ADAPTER.version(client, upstream(server)) == "0.11.0"
    server.route("GET", "/version", Reply(status=404, body=b'{"detail":"Not Found"}'))
    assert ADAPTER.version(client, upstream(server)) is None


def test_context_per_slot_from_the_served_models_card(server: ReplayServer, client: httpx.Client) -> None:
    server.route("GET", "/v1/models", json_reply("vllm", "models.json"))
    assert ADAPTER.context_per_slot(client, upstream(server)) == 2048
    other = Upstream(base_url=server.base_url, model="not-served")
    assert ADAPTER.context_per_slot(client, other) is None, "another model's card says nothing of this one"
    server.route("GET", "/v1/models", Reply(status=500, body=b"oops"))
    assert ADAPTER.context_per_slot(client, upstream(server)) is None


def test_a_late_close_cannot_touch_a_connection_another_stream_reuses(
    server: ReplayServer, client: httpx.Client
) -> None:
    # An error reply is read to the end, so its keep-alive connection goes back to the pool and
    # the next stream takes it; cancelling the finished first stream must not shut it down.
    server.route("POST", PATH, json_reply("vllm", "error_400_context.json", status=400))
    first = ADAPTER.complete(client, upstream(server), REQUEST)
    with pytest.raises(EngineError):
        collect(first)
    server.route("POST", PATH, held("vllm", "stream_ok.sse", 2))
    second = iter(ADAPTER.complete(client, upstream(server), REQUEST))
    assert next(second) == Token(" Paris")
    first.close()
    assert not server.client_left.wait(0.3)
    assert next(second) == Token(".")
