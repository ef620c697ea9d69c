"""The official `openai` and `anthropic` SDKs against a real llorchd relaying to real llama-server
replicas of the demo model: what the engine serves works through llorch unchanged, and what only
llorch adds (admission, sessions and budgets, cancel on disconnect, correlation ids, errors in
the client's shape) holds on every relayed route."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anthropic
import gguf
import httpx
import jsonschema
import openai
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import (
    LONG_CONTEXT,
    LONG_CONTEXT_ARGS,
    REPO,
    Llorchd,
    start_llorchd,
    stop_llorchd,
    wait_for,
    write_atomic,
)

pytestmark = [pytest.mark.engine, pytest.mark.slow]

HI: list[Any] = [{"role": "user", "content": "Say something."}]
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
POLICY = {
    "apiVersion": "llorch.dev/v1",
    "kind": "Policy",
    "metadata": {"name": "metered"},
    "spec": {"selector": {}, "budgets": {"tokens": 100000}},
}


def pool(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "llorch.dev/v1",
        "kind": "Pool",
        "metadata": {"name": name},
        "spec": {
            "model": "tiny-llama",
            "replicas": 1,
            "slots": 2,
            "context": 1024,
            "engineArgs": ["--threads", "1"],
            **spec,
        },
    }


@pytest.fixture(scope="module")
def daemon(
    tmp_path_factory: pytest.TempPathFactory, llama_server_bin: Path, demo_model: Path
) -> Iterator[Llorchd]:
    """One llorchd for the read-mostly tests: a completion pool, an embedding and a rerank pool."""
    tmp = tmp_path_factory.mktemp("relay")
    manifests = tmp / "manifests"
    manifests.mkdir()
    (manifests / "model.yaml").write_text((REPO / "manifests" / "model-demo.yaml").read_text())
    docs = [
        pool("demo"),
        pool("demo-embed", workload="embedding", pooling="mean"),
        pool("demo-rerank", workload="rerank"),
        POLICY,
    ]
    write_atomic(manifests / "pools.yaml", yaml.safe_dump_all(docs, sort_keys=False))
    llorchd = start_llorchd(tmp, manifests, tmp / "state")
    try:
        for name in ("demo", "demo-embed", "demo-rerank"):
            wait_for(f"pool {name} Ready", lambda n=name: llorchd.ready_replicas(n) == 1, timeout=120)  # type: ignore[misc]
        yield llorchd
    finally:
        stop_llorchd(llorchd)


def sdk(daemon: Llorchd, base: str = "/v1") -> openai.OpenAI:
    # No retries: a refusal must reach the test, not be retried away by the client.
    return openai.OpenAI(base_url=daemon.url + base, api_key="unused", max_retries=0, timeout=60)


def claude(daemon: Llorchd) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=daemon.url, api_key="unused", max_retries=0, timeout=60)


def demo_set(daemon: Llorchd) -> dict[str, Any]:
    """The demo pool's entry in /v1/replicasets (slots free, queue depth)."""
    return dict(next(r for r in daemon.get("/v1/replicasets")["replicasets"] if r["id"] == "demo"))


def task(daemon: Llorchd, task_id: str) -> dict[str, Any]:
    return dict(daemon.get(f"/v1/tasks/{task_id}"))


def test_tools_n_and_logprobs_reach_the_engine(daemon: Llorchd) -> None:
    raw = sdk(daemon).chat.completions.with_raw_response.create(
        model="demo",
        messages=HI,
        tools=TOOLS,
        n=2,
        logprobs=True,
        top_logprobs=2,
        max_tokens=8,
        temperature=0.8,
        seed=5,
    )
    reply = raw.parse()
    assert [c.index for c in reply.choices] == [0, 1], "n=2: two choices"
    for choice in reply.choices:
        assert choice.logprobs is not None and choice.logprobs.content
        assert all(len(t.top_logprobs) == 2 for t in choice.logprobs.content)
    ran = task(daemon, raw.headers["X-Task-Id"])
    assert ran["state"] == "succeeded" and ran["pool"] == "demo"
    assert reply.usage is not None and ran["result"]["tokens_out"] == reply.usage.completion_tokens
    assert ran["result"]["tokens_in"] == reply.usage.prompt_tokens, "the task counts what the engine counted"


ANSWER = {
    "type": "object",
    "properties": {"answer": {"enum": ["yes", "no"]}},
    "required": ["answer"],
    "additionalProperties": False,
}


def replica_url(daemon: Llorchd, name: str = "demo") -> str:
    (replica,) = daemon.pool(name)["status"]["replicaStatuses"]  # type: ignore[index]
    return str(replica["url"])


def test_a_json_schema_gives_json_valid_against_it(daemon: Llorchd) -> None:
    # llama.cpp's own `json_schema` field, which llorch has never heard of, relayed as it is.
    reply = sdk(daemon).completions.create(
        model="demo", prompt="Answer:", max_tokens=64, temperature=0, extra_body={"json_schema": ANSWER}
    )
    jsonschema.validate(json.loads(reply.choices[0].text), ANSWER)


def test_a_json_schema_response_format_answers_as_the_engine_does(daemon: Llorchd) -> None:
    """OpenAI's response_format goes to the engine untouched: what llorch answers is what the
    replica answers directly, valid JSON or the engine's own refusal with its status (this
    llama-server build cannot build the grammar of the demo model's chat turn under --jinja)."""
    body = {
        "messages": HI,
        "max_tokens": 64,
        "temperature": 0,
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": ANSWER}},
    }
    direct = httpx.post(replica_url(daemon) + "/v1/chat/completions", json=body, timeout=60)
    relayed = daemon.http.post(daemon.url + "/v1/chat/completions", json={"model": "demo", **body})
    assert relayed.status_code == direct.status_code
    if direct.status_code == 200:
        jsonschema.validate(json.loads(relayed.json()["choices"][0]["message"]["content"]), ANSWER)
    else:
        assert relayed.json()["error"]["message"] == direct.json()["error"]["message"]


def test_chat_streams_the_engines_chunks_usage_only_when_asked(daemon: Llorchd) -> None:
    params: dict[str, Any] = {
        "model": "demo",
        "messages": HI,
        "max_tokens": 12,
        "temperature": 0,
        "stream": True,
    }
    plain = list(sdk(daemon).chat.completions.create(**params))
    assert plain[0].choices[0].delta.role == "assistant"
    assert all(c.usage is None for c in plain), "llorch asked for usage; the client did not"
    assert plain[-1].choices[0].finish_reason in ("stop", "length")
    counted = list(
        sdk(daemon, "/openai/v1").chat.completions.create(**params, stream_options={"include_usage": True})
    )
    usage = counted[-1].usage
    assert counted[-1].choices == [] and usage is not None and 0 < usage.completion_tokens <= 12
    text = lambda chunks: "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)  # noqa: E731
    assert text(counted) == text(plain), "greedy: the same answer under either prefix"


def test_completions_streamed_and_not(daemon: Llorchd) -> None:
    params: dict[str, Any] = {"prompt": "Once upon a time", "max_tokens": 16, "temperature": 0, "seed": 7}
    whole = sdk(daemon).completions.create(model="demo", **params)
    assert whole.object == "text_completion" and whole.usage is not None
    chunks = list(sdk(daemon).completions.create(model="demo", stream=True, **params))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text


def test_embeddings_have_the_models_dimension(daemon: Llorchd, demo_model: Path) -> None:
    reader = gguf.GGUFReader(demo_model)
    field = reader.fields["llama.embedding_length"]
    n_embd = int(field.parts[field.data[0]][0])
    reply = sdk(daemon).embeddings.create(model="demo-embed", input=["one", "two", "three"])
    assert [len(e.embedding) for e in reply.data] == [n_embd] * 3
    assert reply.usage.prompt_tokens > 0


def test_rerank_scores_every_document(daemon: Llorchd) -> None:
    documents = ["a cat", "a dog", "a boat", "a tree"]
    resp = daemon.http.post(
        daemon.url + "/v1/rerank", json={"model": "demo-rerank", "query": "pets", "documents": documents}
    )
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    assert sorted(r["index"] for r in results) == [0, 1, 2, 3]
    assert resp.headers["X-Task-Id"], "a rerank is a task like any other"


def test_responses_whole_and_streamed(daemon: Llorchd) -> None:
    reply = sdk(daemon).responses.create(model="demo", input="Say something.", max_output_tokens=8)
    assert reply.output_text and reply.status == "completed"
    events = [
        e.type
        for e in sdk(daemon).responses.create(model="demo", input="hi", max_output_tokens=4, stream=True)
    ]
    assert events[0] == "response.created" and events[-1] == "response.completed"
    assert "response.output_text.delta" in events


def test_anthropic_messages_count_tokens_and_the_stream_event_sequence(daemon: Llorchd) -> None:
    client = claude(daemon)
    message = client.messages.create(model="demo", max_tokens=8, messages=HI)
    assert message.type == "message" and message.content[0].type == "text"
    assert message.stop_reason in ("end_turn", "max_tokens")
    counted = client.messages.count_tokens(model="demo", messages=HI)
    assert counted.input_tokens > 0
    with client.messages.stream(model="demo", max_tokens=6, messages=HI) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    raw = [k for k in kinds if k not in ("text",)]
    assert raw[0] == "message_start" and raw[-1] == "message_stop"
    assert raw[1] == "content_block_start" and "content_block_delta" in raw
    assert raw[-3:-1] == ["content_block_stop", "message_delta"]
    assert final.usage.output_tokens > 0


def test_every_answer_carries_the_correlation_id(daemon: Llorchd) -> None:
    headers = {"X-Correlation-Id": "relay-corr-1"}
    body = {"model": "demo", "messages": HI, "max_tokens": 2}
    calls = [
        ("/v1/chat/completions", body),
        ("/v1/chat/completions", {**body, "stream": True}),
        ("/openai/v1/completions", {"model": "demo", "prompt": "hi", "max_tokens": 2}),
        ("/v1/embeddings", {"model": "demo-embed", "input": "hi"}),
        ("/v1/messages", {**body, "stream": True}),
        ("/v1/chat/completions", {"model": "nope", "messages": HI}),
        ("/v1/messages", {"model": "nope", "messages": HI, "max_tokens": 1}),
    ]
    for path, sent in calls:
        resp = daemon.http.post(daemon.url + path, json=sent, headers=headers)
        assert resp.headers["X-Correlation-Id"] == "relay-corr-1", path


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"messages": "hi"}),
        ("/v1/chat/completions", {"max_tokens": 1}),
        ("/v1/messages", {"max_tokens": 1}),
        ("/v1/messages", {"messages": [{"role": "user"}], "max_tokens": 1}),
    ],
)
def test_an_engine_error_keeps_its_status_in_the_clients_shape_and_frees_the_slot(
    daemon: Llorchd, path: str, body: dict[str, Any]
) -> None:
    """What llama-server refuses (a 400, or a 500 of its own for a missing field) comes back with
    the engine's status and message, in the client's shape, and the task's slot is free again."""
    direct = httpx.post(replica_url(daemon) + path, json=body, timeout=60)
    assert direct.status_code >= 400, direct.text
    resp = daemon.http.post(daemon.url + path, json={"model": "demo", **body})
    assert resp.status_code == direct.status_code
    message = direct.json()["error"]["message"]
    if path == "/v1/messages":
        assert resp.json() == {
            "type": "error",
            "error": {"type": resp.json()["error"]["type"], "message": message},
        }
    else:
        assert resp.json()["error"]["message"] == message and {"type", "param", "code"} <= set(
            resp.json()["error"]
        )
    assert task(daemon, resp.headers["X-Task-Id"])["state"] == "failed"
    wait_for("every slot free", lambda: demo_set(daemon)["slots_free"] == 2, timeout=30)


def test_a_sessions_budget_is_charged_from_the_engines_usage(daemon: Llorchd) -> None:
    reply = sdk(daemon).chat.completions.create(
        model="demo", messages=HI, max_tokens=6, extra_headers={"X-Session-Id": "relay-s1"}
    )
    other = claude(daemon).messages.create(
        model="demo", max_tokens=5, messages=HI, extra_body={"session_id": "relay-s1"}
    )
    assert reply.usage is not None
    session = daemon.get("/v1/sessions/relay-s1")
    charged = reply.usage.prompt_tokens + reply.usage.completion_tokens
    charged += other.usage.input_tokens + other.usage.output_tokens
    assert session["tokens_used"] == charged and session["turns"] == 2
    assert session["tokens_budget_remaining"] == 100000 - charged


# -- one pool of one slot, for the tests that fill it ------------------------------------------------


@pytest.fixture
def one_slot(tmp_path: Path, llama_server_bin: Path, demo_model: Path) -> Iterator[Llorchd]:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "model.yaml").write_text((REPO / "manifests" / "model-demo.yaml").read_text())
    tight = {**POLICY, "spec": {"selector": {}, "admission": {"queueCapacity": 1, "overflow": "reject"}}}
    docs = [
        pool("demo", slots=1, context=LONG_CONTEXT, engineArgs=["--threads", "1", *LONG_CONTEXT_ARGS]),
        tight,
    ]
    write_atomic(manifests / "pools.yaml", yaml.safe_dump_all(docs, sort_keys=False))
    llorchd = start_llorchd(tmp_path, manifests, tmp_path / "state")
    try:
        wait_for("the demo pool to be Ready", lambda: llorchd.ready_replicas() == 1, timeout=120)
        yield llorchd
    finally:
        stop_llorchd(llorchd)


# Greedy decoding of the demo model runs to the length limit (no EOS): a task this long holds its
# slot far longer than any test step takes.
LONG: dict[str, Any] = {
    "model": "demo",
    "prompt": "Once upon a time",
    "max_tokens": LONG_CONTEXT - 100,
    "temperature": 0,
}


def client_cancels(daemon: Llorchd) -> float:
    text = daemon.http.get(daemon.url + "/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "llorch_tasks_canceled_total"
        and sample.labels == {"pool_id": "demo", "reason": "client"}
    )


def queued(daemon: Llorchd) -> int:
    return int(demo_set(daemon)["slo"]["queue_depth"])


def raw_post(daemon: Llorchd, path: str, body: dict[str, Any]) -> socket.socket:
    """A request on a socket of its own, which the test closes to leave: the way a client goes."""
    url = urlsplit(daemon.url)
    sock = socket.create_connection((url.hostname or "127.0.0.1", url.port or 80))
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    sock.sendall(head.encode() + payload)
    return sock


def test_a_client_that_goes_away_cancels_its_task_running_and_queued(one_slot: Llorchd) -> None:
    with sdk(one_slot).completions.with_streaming_response.create(stream=True, **LONG) as running:
        task_id = running.headers["X-Task-Id"]
        lines = running.iter_lines()  # held: a dropped iterator closes the response
        next(lines)  # bytes came: it holds the pool's only slot
        waiting = raw_post(one_slot, "/v1/chat/completions", {**LONG, "messages": HI, "stream": True})
        wait_for("the second request queued", lambda: queued(one_slot) == 1, timeout=30)
        waiting.close()
        wait_for("the queued task canceled for its client", lambda: client_cancels(one_slot) == 1, timeout=30)
        assert queued(one_slot) == 0
        assert task(one_slot, task_id)["state"] == "running", "the other one went on"
    ended = wait_for(
        "the running task ended",
        lambda: (t := task(one_slot, task_id))["state"] != "running" and t,
        timeout=30,
    )
    assert ended["state"] == "canceled" and ended["result"]["code"] == "CANCELED", ended["result"]
    assert ended["result"]["message"] == "the client closed the stream"
    wait_for("both canceled for their clients", lambda: client_cancels(one_slot) == 2, timeout=30)


def test_a_full_queue_is_a_rate_limit_error_with_retry_after(one_slot: Llorchd) -> None:
    # One slot and one queue place: a running task, a queued one, and the third is refused.
    with sdk(one_slot).completions.with_streaming_response.create(stream=True, **LONG) as running:
        lines = running.iter_lines()
        next(lines)
        waiting = raw_post(one_slot, "/v1/completions", {**LONG, "stream": True})
        try:
            wait_for("the second request queued", lambda: queued(one_slot) == 1, timeout=30)
            with pytest.raises(openai.RateLimitError) as refused:
                sdk(one_slot).chat.completions.create(model="demo", messages=HI, max_tokens=4)
            assert refused.value.code == "admission_reject" and refused.value.type == "rate_limit_error"
            headers = refused.value.response.headers
            assert int(headers["Retry-After"]) >= 1 and int(headers["retry-after-ms"]) >= 100
            with pytest.raises(anthropic.RateLimitError) as limited:
                claude(one_slot).messages.create(model="demo", max_tokens=4, messages=HI)
            assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
            assert int(limited.value.response.headers["Retry-After"]) >= 1
        finally:
            waiting.close()


def test_a_client_that_gives_up_on_a_whole_reply_cancels_its_task(one_slot: Llorchd) -> None:
    """No bytes go to a client waiting for a whole reply: llorch notices the closed connection on
    its own, cancels the task and drops the engine's request. (llama-server misses a client that
    leaves a non-streamed request within its first second and decodes on; llorch holds the slot
    until the engine says it is done, so this reply is kept short enough to end by itself.)"""
    whole = {**LONG, "max_tokens": 4000}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(one_slot.url + "/v1/completions", json=whole, timeout=httpx.Timeout(5, read=0.5))
    wait_for("the task canceled for its client", lambda: client_cancels(one_slot) == 1, timeout=30)
    wait_for("the pool's slot free again", lambda: demo_set(one_slot)["slots_free"] == 1, timeout=120)
    (replica,) = one_slot.pool()["status"]["replicaStatuses"]  # type: ignore[index]
    assert not any(s["is_processing"] for s in httpx.get(replica["url"] + "/slots").json())
