"""The test shapes every remote engine (vLLM, TGI, Triton) passes against its replayed wire format:
a stream's tokens and finish, the request sent, error replies, health, version and context probes.
Each table holds every engine's expected answer; what only one engine does is in its own file."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from llorch.runtime.engines.base import CompletionRequest, Finished, Token, Upstream
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
from tests.runtime.engines.wires import TGI, TRITON, VLLM, Wire


def per_engine(*rows: tuple[Any, ...]) -> list[Any]:
    """Parameter sets named for the engine each row starts with."""
    return [pytest.param(*row, id=row[0].engine) for row in rows]


# -- streams ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "texts", "finished"),
    per_engine(
        # usage.completion_tokens is 9: the EOS token had no text and becomes one empty frame.
        (
            VLLM,
            [" Paris", ".", " The", " Eiffel", " Tower", " is", " there", ".", ""],
            Finished(tokens_out=9, tokens_in=6, finish_reason="stop"),
        ),
        # The EOS token is a generated token, but its "</s>" is not text the client should see.
        (
            TGI,
            [" Paris", ".", " The", " E", "iff", "el", " Tower", ""],
            Finished(tokens_out=8, tokens_in=7, finish_reason="stop"),
        ),
        # "é" came with num_output_tokens 2 and the EOS with 1 and no text: both add empty frames.
        (
            TRITON,
            [" Paris", ".", " Try", " the", " caf", "", "é", " au", " lait", ""],
            Finished(tokens_out=10, tokens_in=6, finish_reason="stop"),
        ),
    ),
)
def test_full_stream_maps_tokens_counts_and_finish(
    server: ReplayServer, client: httpx.Client, wire: Wire, texts: list[str], finished: Finished
) -> None:
    server.route("POST", wire.path, stream_reply(wire.engine, "stream_ok.sse"))
    events = collect(wire.adapter.complete(client, upstream(server), REQUEST))
    assert [e.text for e in events if isinstance(e, Token)] == texts
    assert events[-1] == finished
    assert sum(isinstance(e, Finished) for e in events) == 1


@pytest.mark.parametrize(
    ("wire", "text", "tokens_in"),
    per_engine(
        (VLLM, " Paris, France's", 6),
        (TGI, " Paris, France'", 7),  # the fixture has a keep-alive comment mid-stream
        (TRITON, " Paris, France's", 6),
    ),
)
def test_length_finish(
    server: ReplayServer, client: httpx.Client, wire: Wire, text: str, tokens_in: int
) -> None:
    server.route("POST", wire.path, stream_reply(wire.engine, "stream_length.sse"))
    events = collect(wire.adapter.complete(client, upstream(server), REQUEST))
    assert "".join(e.text for e in events if isinstance(e, Token)) == text
    assert events[-1] == Finished(tokens_out=4, tokens_in=tokens_in, finish_reason="length")


@pytest.mark.parametrize(
    ("wire", "name", "message"),
    per_engine(
        (VLLM, "stream_error.sse", None),
        (TGI, "stream_generation_error.sse", "CUDA out of memory"),
        (TRITON, "stream_error.sse", None),
    ),
)
def test_error_after_the_stream_started(
    server: ReplayServer, client: httpx.Client, wire: Wire, name: str, message: str | None
) -> None:
    server.route("POST", wire.path, stream_reply(wire.engine, name))
    seen: list[object] = []
    with pytest.raises(EngineError) as caught:
        for event in wire.adapter.complete(client, upstream(server), REQUEST):
            seen.append(event)
    assert seen == [Token(" Paris"), Token(".")]
    assert caught.value.code == "INTERNAL"
    if message is not None:
        assert message in caught.value.message


# -- what is sent ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "body"),
    per_engine(
        (
            VLLM,
            {
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
            },
        ),
        (
            TGI,
            {
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
            },
        ),
        (
            TRITON,
            {
                "text_input": "The capital of France is",
                "stream": True,
                "exclude_input_in_output": True,
                "return_finish_reason": True,
                "return_num_input_tokens": True,
                "return_num_output_tokens": True,
                "sampling_parameters": {
                    "max_tokens": 16,
                    "seed": 42,
                    "temperature": 0.7,
                    "top_p": 0.9,
                    "top_k": 40,
                    "stop": ["\n\n"],
                },
            },
        ),
    ),
)
def test_request_body_and_headers(
    server: ReplayServer, client: httpx.Client, wire: Wire, body: dict[str, Any]
) -> None:
    server.route("POST", wire.path, stream_reply(wire.engine, "stream_ok.sse"))
    collect(wire.adapter.complete(client, upstream(server), REQUEST))
    (sent,) = server.requests
    assert sent.method == "POST" and sent.path == wire.path
    assert wire.sent(sent) == body
    assert sent.headers["authorization"] == "Bearer s3cret"
    assert sent.headers["x-correlation-id"] == "corr-123"


@pytest.mark.parametrize(
    ("wire", "body"),
    per_engine(
        (
            VLLM,
            {
                "model": "tiny",
                "prompt": "hi",
                "max_tokens": 8,
                "stream": True,
                "stream_options": {"include_usage": True},
            },
        ),
        # TGI samples only when asked to: no temperature leaves sampling off.
        (TGI, {"inputs": "hi", "parameters": {"max_new_tokens": 8, "details": True, "do_sample": False}}),
        (
            TRITON,
            {
                "text_input": "hi",
                "stream": True,
                "exclude_input_in_output": True,
                "return_finish_reason": True,
                "return_num_input_tokens": True,
                "return_num_output_tokens": True,
                "sampling_parameters": {"max_tokens": 8},
            },
        ),
    ),
)
def test_unset_sampling_params_are_left_to_the_engine(
    server: ReplayServer, client: httpx.Client, wire: Wire, body: dict[str, Any]
) -> None:
    server.route("POST", wire.path, stream_reply(wire.engine, "stream_ok.sse"))
    collect(wire.adapter.complete(client, upstream(server), CompletionRequest(prompt="hi", max_tokens=8)))
    assert wire.sent(server.requests[0]) == body
    assert "x-correlation-id" not in server.requests[0].headers


# -- errors ----------------------------------------------------------------------------------------


def case(
    wire: Wire,
    status: int,
    body: str | bytes,
    code: str,
    retriable: bool = False,
    message: str | None = None,
    content_type: str = "application/json",
) -> Any:
    """One row of the error table: the engine answers `status` with `body` (a fixture's name, or the
    bytes of the reply), and the adapter raises `code`, retriable or not, with `message` in it."""
    if isinstance(body, bytes):
        reply, name = Reply(status=status, body=body, content_type=content_type), "bytes"
    elif body.endswith(".sse"):
        reply, name = stream_reply(wire.engine, body, status=status), body.removesuffix(".sse")
    else:
        reply, name = json_reply(wire.engine, body, status=status), body.removesuffix(".json")
    return pytest.param(wire, reply, code, retriable, message, id=f"{wire.engine}-{status}-{name}")


def tgi_case(status: int, body: bytes, code: str, retriable: bool = False) -> Any:
    """A row of TGI's error replies, sent as text/plain."""
    return case(TGI, status, body, code, retriable, content_type="text/plain; charset=utf-8")


CONTEXT_2048 = "maximum context length is 2048"
INCOMPLETE_GENERATION = b'{"error":"Incomplete generation","error_type":"incomplete_generation"}'


@pytest.mark.parametrize(
    ("wire", "reply", "code", "retriable", "message"),
    [
        case(VLLM, 400, "error_400_context.json", "INVALID_PARAMS", message=CONTEXT_2048),
        case(VLLM, 400, "error_400_legacy.json", "INVALID_PARAMS", message=CONTEXT_2048),
        case(VLLM, 404, "error_404_model.json", "POOL_UNAVAILABLE"),
        case(VLLM, 429, "error_400_context.json", "REPLICA_EXHAUSTED", True),
        case(VLLM, 503, "error_400_context.json", "REPLICA_EXHAUSTED", True),
        case(VLLM, 500, "error_400_context.json", "INTERNAL"),
        # TGI reports a bad request and an overload inside a 200 stream.
        case(TGI, 200, "stream_validation.sse", "INVALID_PARAMS", message="must be <= 2048"),
        case(TGI, 200, "stream_overloaded.sse", "REPLICA_EXHAUSTED", True),
        tgi_case(422, fixture("tgi", "error_422_body.txt"), "INVALID_PARAMS"),
        tgi_case(
            429, b'{"error":"Model is overloaded","error_type":"overloaded"}', "REPLICA_EXHAUSTED", True
        ),
        tgi_case(503, fixture("tgi", "health_unhealthy.json"), "REPLICA_EXHAUSTED", True),
        tgi_case(404, b"", "POOL_UNAVAILABLE"),
        tgi_case(500, INCOMPLETE_GENERATION, "WORKER_RESET", True),
        tgi_case(502, b"<html>bad gateway</html>", "INTERNAL"),
        case(TRITON, 400, "error_400_unknown_model.json", "POOL_UNAVAILABLE"),
        case(TRITON, 400, "error_400_input.json", "INVALID_PARAMS"),
        case(TRITON, 503, "error_503_unavailable.json", "REPLICA_EXHAUSTED", True),
        case(TRITON, 429, "error_503_unavailable.json", "REPLICA_EXHAUSTED", True),
        # Triton sends a context error as the first event of a 500 stream.
        case(
            TRITON,
            500,
            "error_500_context.sse",
            "INVALID_PARAMS",
            message="longer than the maximum model length of 2048",
        ),
        case(TRITON, 404, b'{"error":"Not Found"}', "POOL_UNAVAILABLE"),
        case(TRITON, 500, b'{"error":"failed to load"}', "INTERNAL"),
    ],
)
def test_error_replies_map_to_contract_codes(
    server: ReplayServer,
    client: httpx.Client,
    wire: Wire,
    reply: Reply,
    code: str,
    retriable: bool,
    message: str | None,
) -> None:
    server.route("POST", wire.path, reply)
    with pytest.raises(EngineError) as caught:
        collect(wire.adapter.complete(client, upstream(server), REQUEST))
    assert (caught.value.code, caught.value.retriable, caught.value.engine) == (code, retriable, wire.engine)
    if message is not None:
        assert message in caught.value.message


# -- probes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "probes"),
    per_engine(
        (VLLM, [("/health", Reply(status=503))]),
        (TGI, [("/health", json_reply("tgi", "health_unhealthy.json", status=503))]),
        # Triton: the server and the model must both be ready.
        (
            TRITON,
            [
                ("/v2/health/ready", Reply(status=400)),
                ("/v2/models/tiny/ready", Reply(status=400, body=b'{"error":"unknown model"}')),
            ],
        ),
    ),
)
def test_healthy_needs_every_probe_to_answer_ok(
    server: ReplayServer, client: httpx.Client, wire: Wire, probes: list[tuple[str, Reply]]
) -> None:
    for path, _ in probes:
        server.route("GET", path, Reply(status=200))
    assert wire.adapter.healthy(client, upstream(server))
    assert [r.path for r in server.requests] == [path for path, _ in probes]
    assert all(r.headers["authorization"] == "Bearer s3cret" for r in server.requests)
    for path, failing in probes:
        server.route("GET", path, failing)
        assert not wire.adapter.healthy(client, upstream(server)), path
        server.route("GET", path, Reply(status=200))
    gone = Upstream(base_url=f"http://127.0.0.1:{closed_port()}", model="tiny")
    assert not wire.adapter.healthy(client, gone)


@pytest.mark.parametrize(
    ("wire", "path", "answer", "version", "failing"),
    per_engine(
        (VLLM, "/version", "version.json", "0.11.0", Reply(status=404, body=b'{"detail":"Not Found"}')),
        (TGI, "/info", "info.json", "3.3.4", Reply(status=500, body=b"oops")),
        (TRITON, "/v2", "server.json", "2.59.0", Reply(status=503, body=b"")),
    ),
)
def test_version(
    server: ReplayServer,
    client: httpx.Client,
    wire: Wire,
    path: str,
    answer: str,
    version: str,
    failing: Reply,
) -> None:
    server.route("GET", path, json_reply(wire.engine, answer))
    assert wire.adapter.version(client, upstream(server)) == version
    assert server.requests[0].headers["authorization"] == "Bearer s3cret"
    server.route("GET", path, failing)
    assert wire.adapter.version(client, upstream(server)) is None


@pytest.mark.parametrize(
    ("wire", "path", "answer", "unknown"),
    per_engine(
        (VLLM, "/v1/models", "models.json", Reply(status=500, body=b"oops")),
        (TGI, "/info", "info.json", Reply(status=200, body=b'{"max_total_tokens": null}')),
    ),
)
def test_context_per_slot(
    server: ReplayServer, client: httpx.Client, wire: Wire, path: str, answer: str, unknown: Reply
) -> None:
    server.route("GET", path, json_reply(wire.engine, answer))
    assert wire.adapter.context_per_slot(client, upstream(server)) == 2048
    server.route("GET", path, unknown)
    assert wire.adapter.context_per_slot(client, upstream(server)) is None
