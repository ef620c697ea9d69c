"""The TGI adapter against TGI's wire format, replayed from fixtures (TGI cannot run here)."""

from __future__ import annotations

import httpx
import pytest

from llorch.runtime.engines.base import CompletionRequest, Finished, Token, Upstream
from llorch.runtime.engines.tgi import Tgi
from llorch.runtime.errors import EngineError
from tests.runtime.engines.replay import (
    REQUEST,
    ReplayServer,
    Reply,
    closed_port,
    collect,
    fixture,
    json_reply,
    stream_reply,
    upstream,
)

PATH = "/generate_stream"
ADAPTER = Tgi()


def sent_parameters(server: ReplayServer) -> dict[str, object]:
    parameters = server.requests[-1].body["parameters"]
    assert isinstance(parameters, dict)
    return parameters


def test_full_stream_maps_tokens_counts_and_finish(server: ReplayServer, client: httpx.Client) -> None:
    server.route("POST", PATH, stream_reply("tgi", "stream_ok.sse"))
    events = collect(ADAPTER.complete(client, upstream(server), REQUEST))
    texts = [e.text for e in events if isinstance(e, Token)]
    # The EOS token is a generated token, but its "</s>" is not text the client should see.
    assert texts == [" Paris", ".", " The", " E", "iff", "el", " Tower", ""]
    assert events[-1] == Finished(tokens_out=8, tokens_in=7, finish_reason="stop")
    assert sum(isinstance(e, Finished) for e in events) == 1


def test_length_finish_across_a_keepalive_comment(server: ReplayServer, client: httpx.Client) -> None:
    server.route("POST", PATH, stream_reply("tgi", "stream_length.sse"))
    events = collect(ADAPTER.complete(client, upstream(server), REQUEST))
    assert "".join(e.text for e in events if isinstance(e, Token)) == " Paris, France'"
    assert events[-1] == Finished(tokens_out=4, tokens_in=7, finish_reason="length")


def test_request_body_and_headers(server: ReplayServer, client: httpx.Client) -> None:
    server.route("POST", PATH, stream_reply("tgi", "stream_ok.sse"))
    collect(ADAPTER.complete(client, upstream(server), REQUEST))
    (sent,) = server.requests
    assert sent.method == "POST" and sent.path == PATH
    assert sent.body == {
        "inputs": "The capital of France is",
        "parameters": {
            "max_new_tokens": 16,
            "details": True,
            "do_sample": True,
            "seed": 42,
            "temperature": 0.7,
            "top_p": 0.9,
            "top_k": 40,
            "stop": ["\n\n"],
        },
    }
    assert sent.headers["authorization"] == "Bearer s3cret"
    assert sent.headers["x-correlation-id"] == "corr-123"


def test_temperature_zero_is_greedy(server: ReplayServer, client: httpx.Client) -> None:
    # TGI rejects temperature 0 and samples whenever top_p/top_k are set, so greedy sends none.
    server.route("POST", PATH, stream_reply("tgi", "stream_ok.sse"))
    greedy = CompletionRequest(prompt="hi", max_tokens=8, seed=7, temperature=0.0, top_p=0.9, top_k=40)
    collect(ADAPTER.complete(client, upstream(server), greedy))
    assert sent_parameters(server) == {"max_new_tokens": 8, "details": True, "do_sample": False, "seed": 7}


def test_values_tgi_forbids_but_others_read_as_off_are_dropped(
    server: ReplayServer, client: httpx.Client
) -> None:
    server.route("POST", PATH, stream_reply("tgi", "stream_ok.sse"))
    request = CompletionRequest(prompt="hi", max_tokens=8, temperature=1.0, top_p=1.0, top_k=-1)
    collect(ADAPTER.complete(client, upstream(server), request))
    expected = {"max_new_tokens": 8, "details": True, "do_sample": True, "temperature": 1.0}
    assert sent_parameters(server) == expected


def test_unset_temperature_leaves_sampling_off(server: ReplayServer, client: httpx.Client) -> None:
    server.route("POST", PATH, stream_reply("tgi", "stream_ok.sse"))
    collect(ADAPTER.complete(client, upstream(server), CompletionRequest(prompt="hi", max_tokens=8)))
    assert sent_parameters(server) == {"max_new_tokens": 8, "details": True, "do_sample": False}


@pytest.mark.parametrize(
    ("name", "code", "retriable"),
    [
        ("stream_validation.sse", "INVALID_PARAMS", False),
        ("stream_overloaded.sse", "REPLICA_EXHAUSTED", True),
    ],
)
def test_errors_reported_inside_a_200_stream(
    server: ReplayServer, client: httpx.Client, name: str, code: str, retriable: bool
) -> None:
    server.route("POST", PATH, stream_reply("tgi", name))
    with pytest.raises(EngineError) as caught:
        collect(ADAPTER.complete(client, upstream(server), REQUEST))
    assert (caught.value.code, caught.value.retriable, caught.value.engine) == (code, retriable, "tgi")


def test_context_too_long_keeps_tgis_message(server: ReplayServer, client: httpx.Client) -> None:
    server.route("POST", PATH, stream_reply("tgi", "stream_validation.sse"))
    with pytest.raises(EngineError) as caught:
        collect(ADAPTER.complete(client, upstream(server), REQUEST))
    assert "must be <= 2048" in caught.value.message


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (422, fixture("tgi", "error_422_body.txt"), "INVALID_PARAMS"),
        (429, b'{"error":"Model is overloaded","error_type":"overloaded"}', "REPLICA_EXHAUSTED"),
        (503, fixture("tgi", "health_unhealthy.json"), "REPLICA_EXHAUSTED"),
        (404, b"", "POOL_UNAVAILABLE"),
        (500, b'{"error":"Incomplete generation","error_type":"incomplete_generation"}', "WORKER_RESET"),
        (502, b"<html>bad gateway</html>", "INTERNAL"),
    ],
)
def test_error_statuses_map_to_contract_codes(
    server: ReplayServer, client: httpx.Client, status: int, body: bytes, code: str
) -> None:
    server.route("POST", PATH, Reply(status=status, body=body, content_type="text/plain; charset=utf-8"))
    with pytest.raises(EngineError) as caught:
        collect(ADAPTER.complete(client, upstream(server), REQUEST))
    assert caught.value.code == code


def test_error_after_the_stream_started(server: ReplayServer, client: httpx.Client) -> None:
    server.route("POST", PATH, stream_reply("tgi", "stream_generation_error.sse"))
    seen: list[object] = []
    with pytest.raises(EngineError) as caught:
        for event in ADAPTER.complete(client, upstream(server), REQUEST):
            seen.append(event)
    assert seen == [Token(" Paris"), Token(".")]
    assert caught.value.code == "INTERNAL"
    assert "CUDA out of memory" in caught.value.message


def test_healthy(server: ReplayServer, client: httpx.Client) -> None:
    server.route("GET", "/health", Reply(status=200))
    assert ADAPTER.healthy(client, upstream(server))
    assert server.requests[0].headers["authorization"] == "Bearer s3cret"
    server.route("GET", "/health", json_reply("tgi", "health_unhealthy.json", status=503))
    assert not ADAPTER.healthy(client, upstream(server))
    assert not ADAPTER.healthy(client, Upstream(base_url=f"http://127.0.0.1:{closed_port()}", model="tiny"))


def test_version_from_info(server: ReplayServer, client: httpx.Client) -> None:
    server.route("GET", "/info", json_reply("tgi", "info.json"))
    assert ADAPTER.version(client, upstream(server)) == "3.3.4"
    assert server.requests[0].headers["authorization"] == "Bearer s3cret"
    server.route("GET", "/info", Reply(status=500, body=b"oops"))
    assert ADAPTER.version(client, upstream(server)) is None


def test_context_per_slot_from_info(server: ReplayServer, client: httpx.Client) -> None:
    server.route("GET", "/info", json_reply("tgi", "info.json"))
    assert ADAPTER.context_per_slot(client, upstream(server)) == 2048
    server.route("GET", "/info", Reply(status=200, body=b'{"max_total_tokens": null}'))
    assert ADAPTER.context_per_slot(client, upstream(server)) is None
