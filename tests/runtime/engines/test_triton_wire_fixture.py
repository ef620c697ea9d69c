"""The Triton adapter (vLLM backend, generate extension) against Triton's wire format, replayed
from fixtures (Triton cannot run here)."""

from __future__ import annotations

import json

import httpx
import pytest

from llorch.runtime.engines.base import CompletionRequest, Finished, Token, Upstream
from llorch.runtime.engines.triton import Triton
from llorch.runtime.errors import EngineError
from tests.runtime.engines.replay import (
    REQUEST,
    ReplayServer,
    Reply,
    closed_port,
    collect,
    json_reply,
    stream_reply,
    upstream,
)

PATH = "/v2/models/tiny/generate_stream"
ADAPTER = Triton()


def test_full_stream_maps_tokens_counts_and_finish(server: ReplayServer, client: httpx.Client) -> None:
    server.route("POST", PATH, stream_reply("triton", "stream_ok.sse"))
    events = collect(ADAPTER.complete(client, upstream(server), REQUEST))
    texts = [e.text for e in events if isinstance(e, Token)]
    # "é" came with num_output_tokens 2 and the EOS with 1 and no text: both add empty frames.
    assert texts == [" Paris", ".", " Try", " the", " caf", "", "é", " au", " lait", ""]
    assert events[-1] == Finished(tokens_out=10, tokens_in=6, finish_reason="stop")
    assert sum(isinstance(e, Finished) for e in events) == 1


def test_length_finish(server: ReplayServer, client: httpx.Client) -> None:
    server.route("POST", PATH, stream_reply("triton", "stream_length.sse"))
    events = collect(ADAPTER.complete(client, upstream(server), REQUEST))
    assert "".join(e.text for e in events if isinstance(e, Token)) == " Paris, France's"
    assert events[-1] == Finished(tokens_out=4, tokens_in=6, finish_reason="length")


@pytest.mark.parametrize(("max_tokens", "reason"), [(4, "length"), (16, "stop")])
def test_backend_without_counts_counts_one_token_per_event(
    server: ReplayServer, client: httpx.Client, max_tokens: int, reason: str
) -> None:
    server.route("POST", PATH, stream_reply("triton", "stream_text_only.sse"))
    request = CompletionRequest("p", max_tokens=max_tokens)
    events = collect(ADAPTER.complete(client, upstream(server), request))
    assert [e.text for e in events if isinstance(e, Token)] == [" Paris", ",", " France", "'s"]
    assert events[-1] == Finished(tokens_out=4, tokens_in=None, finish_reason=reason)


def test_request_body_and_headers(server: ReplayServer, client: httpx.Client) -> None:
    server.route("POST", PATH, stream_reply("triton", "stream_ok.sse"))
    collect(ADAPTER.complete(client, upstream(server), REQUEST))
    (sent,) = server.requests
    assert sent.method == "POST" and sent.path == PATH
    sampling = json.loads(sent.body.pop("sampling_parameters"))
    assert sent.body == {
        "text_input": "The capital of France is",
        "stream": True,
        "exclude_input_in_output": True,
        "return_finish_reason": True,
        "return_num_input_tokens": True,
        "return_num_output_tokens": True,
    }
    assert sampling == {
        "max_tokens": 16,
        "seed": 42,
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 40,
        "stop": ["\n\n"],
    }
    assert sent.headers["authorization"] == "Bearer s3cret"
    assert sent.headers["x-correlation-id"] == "corr-123"


def test_unset_sampling_params_are_left_to_the_engine(server: ReplayServer, client: httpx.Client) -> None:
    server.route("POST", PATH, stream_reply("triton", "stream_ok.sse"))
    collect(ADAPTER.complete(client, upstream(server), CompletionRequest(prompt="hi", max_tokens=8)))
    assert json.loads(server.requests[0].body["sampling_parameters"]) == {"max_tokens": 8}


@pytest.mark.parametrize(
    ("reply", "code", "retriable"),
    [
        (json_reply("triton", "error_400_unknown_model.json", status=400), "POOL_UNAVAILABLE", False),
        (json_reply("triton", "error_400_input.json", status=400), "INVALID_PARAMS", False),
        (json_reply("triton", "error_503_unavailable.json", status=503), "REPLICA_EXHAUSTED", True),
        (json_reply("triton", "error_503_unavailable.json", status=429), "REPLICA_EXHAUSTED", True),
        (stream_reply("triton", "error_500_context.sse", status=500), "INVALID_PARAMS", False),
        (Reply(status=404, body=b'{"error":"Not Found"}'), "POOL_UNAVAILABLE", False),
        (Reply(status=500, body=b'{"error":"failed to load"}'), "INTERNAL", False),
    ],
)
def test_error_replies_map_to_contract_codes(
    server: ReplayServer, client: httpx.Client, reply: Reply, code: str, retriable: bool
) -> None:
    server.route("POST", PATH, reply)
    with pytest.raises(EngineError) as caught:
        collect(ADAPTER.complete(client, upstream(server), REQUEST))
    assert (caught.value.code, caught.value.retriable, caught.value.engine) == (code, retriable, "triton")


def test_context_error_sent_as_the_first_event_keeps_its_message(
    server: ReplayServer, client: httpx.Client
) -> None:
    server.route("POST", PATH, stream_reply("triton", "error_500_context.sse", status=500))
    with pytest.raises(EngineError) as caught:
        collect(ADAPTER.complete(client, upstream(server), REQUEST))
    assert "longer than the maximum model length of 2048" in caught.value.message


def test_error_after_the_stream_started(server: ReplayServer, client: httpx.Client) -> None:
    server.route("POST", PATH, stream_reply("triton", "stream_error.sse"))
    seen: list[object] = []
    with pytest.raises(EngineError) as caught:
        for event in ADAPTER.complete(client, upstream(server), REQUEST):
            seen.append(event)
    assert seen == [Token(" Paris"), Token(".")]
    assert caught.value.code == "INTERNAL"


def test_healthy_needs_the_server_and_the_model_ready(server: ReplayServer, client: httpx.Client) -> None:
    server.route("GET", "/v2/health/ready", Reply(status=200))
    server.route("GET", "/v2/models/tiny/ready", Reply(status=200))
    assert ADAPTER.healthy(client, upstream(server))
    assert [r.path for r in server.requests] == ["/v2/health/ready", "/v2/models/tiny/ready"]
    assert all(r.headers["authorization"] == "Bearer s3cret" for r in server.requests)
    server.route("GET", "/v2/models/tiny/ready", Reply(status=400, body=b'{"error":"unknown model"}'))
    assert not ADAPTER.healthy(client, upstream(server))
    server.route("GET", "/v2/models/tiny/ready", Reply(status=200))
    server.route("GET", "/v2/health/ready", Reply(status=400))
    assert not ADAPTER.healthy(client, upstream(server))
    assert not ADAPTER.healthy(client, Upstream(base_url=f"http://127.0.0.1:{closed_port()}", model="tiny"))


def test_version_from_server_metadata(server: ReplayServer, client: httpx.Client) -> None:
    server.route("GET", "/v2", json_reply("triton", "server.json"))
    assert ADAPTER.version(client, upstream(server)) == "2.59.0"
    server.route("GET", "/v2", Reply(status=503, body=b""))
    assert ADAPTER.version(client, upstream(server)) is None


def test_context_per_slot_is_not_said_over_kserve_v2(server: ReplayServer, client: httpx.Client) -> None:
    assert ADAPTER.context_per_slot(client, upstream(server)) is None
    assert not server.requests, "nothing to ask"
