"""The relay against vLLM's, TGI's and Triton's OpenAI-shaped streams, replayed from wire fixtures
by a loopback double of each engine (none of them can run here): the bytes come through
unchanged, and what llorch reads of them (steps, usage, finish) is the engine's own count."""

from __future__ import annotations

import socket
import threading

import httpx
import pytest

from llorch.runtime.engines.base import Finished, Upstream
from llorch.runtime.engines.relay import CHAT, Chunk, RelayError, RelayRequest, RelayStream
from tests.runtime.engines.replay import ReplayServer, Reply, fixture, json_reply, stream_reply, upstream

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
BODY = {"model": "client-name", "messages": [{"role": "user", "content": "Weather?"}], "tools": TOOLS}

# (engine, fixture, decode steps streamed, the engine's usage: completion, prompt)
STREAMS = [
    ("vllm", "chat_stream_tool_calls.sse", 4, 17, 182),
    ("vllm", "chat_stream_logprobs.sse", 2, 3, 14),
    ("tgi", "chat_stream_tool_calls.sse", 4, 12, 241),
    ("tgi", "chat_stream_logprobs.sse", 2, 3, 15),
    ("triton", "openai_chat_stream_tool_calls.sse", 2, 15, 196),
    ("triton", "openai_chat_stream_logprobs.sse", 2, 2, 14),
]


def relay(
    server: ReplayServer, client: httpx.Client, *, strip: bool = False, stream: bool = True
) -> RelayStream:
    request = RelayRequest(
        path=CHAT,
        body={**BODY, "stream": stream},
        stream=stream,
        max_tokens=64,
        strip_usage=strip,
        correlation_id="corr-9",
    )
    return RelayStream(client, upstream(server), request, "vllm")


def split(events: list[Chunk | Finished]) -> tuple[bytes, int, Finished]:
    *chunks, end = events
    assert isinstance(end, Finished) and all(isinstance(c, Chunk) for c in chunks)
    return (
        b"".join(c.raw for c in chunks if isinstance(c, Chunk)),
        sum(c.tokens for c in chunks if isinstance(c, Chunk)),
        end,
    )


@pytest.mark.parametrize(("engine", "name", "steps", "completion", "prompt"), STREAMS)
def test_tool_call_and_logprob_streams_come_through_byte_for_byte(
    server: ReplayServer,
    client: httpx.Client,
    engine: str,
    name: str,
    steps: int,
    completion: int,
    prompt: int,
) -> None:
    server.route("POST", CHAT, stream_reply(engine, name))
    raw, streamed, end = split(list(relay(server, client)))
    assert raw == fixture(engine, name), "relayed as the engine sent it"
    assert streamed == steps
    assert end.tokens_out == completion and end.tokens_in == prompt, "the engine's usage counts"
    assert end.finish_reason == "stop"

    # Again, with the usage chunk llorch asked for and the client did not: left out, still read.
    raw, _, end = split(list(relay(server, client, strip=True)))
    kept = [e for e in fixture(engine, name).split(b"\n\n") if b'"choices":[],' not in e]
    assert raw == b"\n\n".join(kept), "every other event as it was, [DONE] included"
    assert b'"usage":{' not in raw and end.tokens_out == completion


def test_the_body_goes_out_as_the_client_wrote_it_with_the_engines_model_name(
    server: ReplayServer, client: httpx.Client
) -> None:
    server.route("POST", CHAT, stream_reply("vllm", "chat_stream_tool_calls.sse"))
    list(relay(server, client))
    (sent,) = server.requests
    assert sent.body == {**BODY, "model": "tiny", "stream": True}
    assert sent.headers["x-correlation-id"] == "corr-9"
    assert sent.headers["authorization"] == "Bearer s3cret", "the endpoint's credentials"


def test_a_whole_answer_is_one_chunk_and_its_usage(server: ReplayServer, client: httpx.Client) -> None:
    body = (
        b'{"id":"c1","object":"chat.completion","choices":[{"index":0,"finish_reason":"tool_calls",'
        b'"message":{"role":"assistant","tool_calls":[]}}],"usage":{"prompt_tokens":9,"completion_tokens":4}}'
    )
    server.route("POST", CHAT, Reply(body=body))
    events = list(relay(server, client, stream=False))
    assert events == [Chunk(body, 0), Finished(tokens_out=4, tokens_in=9, finish_reason="stop")]


def test_an_engine_refusal_keeps_its_status_and_its_error(server: ReplayServer, client: httpx.Client) -> None:
    server.route("POST", CHAT, json_reply("vllm", "error_400_tools.json", status=400))
    with pytest.raises(RelayError) as refused:
        list(relay(server, client))
    error = refused.value
    assert error.status == 400 and error.upstream["type"] == "BadRequestError"
    assert "--enable-auto-tool-choice" in error.message
    frame = error.frame()
    assert frame["status"] == 400 and frame["upstream"] == error.upstream and frame["relayed"] is False


def test_an_error_inside_the_stream_is_relayed_then_raised(
    server: ReplayServer, client: httpx.Client
) -> None:
    server.route("POST", CHAT, stream_reply("vllm", "stream_error.sse"))
    chunks: list[bytes] = []
    with pytest.raises(RelayError) as failed:
        for event in relay(server, client):
            assert isinstance(event, Chunk)
            chunks.append(event.raw)
    assert b'"error"' in b"".join(chunks), "the client sees the engine's own error event"
    assert failed.value.relayed


def test_close_from_another_thread_ends_a_stream_the_engine_holds_open(
    server: ReplayServer, client: httpx.Client
) -> None:
    unfinished = stream_reply("vllm", "chat_stream_logprobs.sse").events or ()
    server.route("POST", CHAT, Reply(content_type="text/event-stream", events=unfinished[:2], hold=True))
    stream = relay(server, client)
    seen: list[Chunk | Finished] = []
    reader = threading.Thread(target=lambda: seen.extend(stream))
    reader.start()
    assert server.streaming.wait(5)
    stream.close()
    reader.join(5)
    assert not reader.is_alive()
    assert not any(isinstance(e, Finished) for e in seen), "a closed stream has no end of its own"
    assert server.client_left.wait(5), "the engine saw the connection go"


def test_a_connection_the_engine_dropped_unanswered_is_tried_once_more() -> None:
    # A loopback double of an engine ending a kept-alive connection as it is reused (llama-server
    # does, on its own keep-alive clock): the first connection closes with no answer, the second
    # answers.
    answer = b'{"object": "chat.completion", "choices": []}'
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        first, _ = listener.accept()
        first.recv(65536)
        first.close()
        second, _ = listener.accept()
        second.recv(65536)
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(
            answer
        )
        second.sendall(head + answer)
        second.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    request = RelayRequest(path=CHAT, body=BODY, stream=False, max_tokens=8)
    with httpx.Client() as client:
        events = list(
            RelayStream(
                client, Upstream(base_url=f"http://127.0.0.1:{port}", model="tiny"), request, "llamacpp"
            )
        )
    thread.join(5)
    listener.close()
    raw, _, _ = split(events)
    assert raw == answer
