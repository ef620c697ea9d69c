"""The official `openai` client against a real llorchd and a real llama-server (the demo model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import LONG_CONTEXT, LONG_CONTEXT_ARGS, REPO, Llorchd, wait_for

pytestmark = [pytest.mark.engine, pytest.mark.slow]

# Greedy decoding of the demo model runs to the length limit (no EOS), at several hundred tokens a
# second on a CPU: a task this long keeps its slot for a few seconds.
LONG = 2000


def ready_demo(llorchd: Llorchd, **spec: Any) -> None:
    llorchd.ctl("apply", "-f", str(REPO / "manifests" / "model-demo.yaml"))
    llorchd.write_pool(replicas=1, **spec)
    wait_for("the demo pool to be Ready", lambda: llorchd.ready_replicas() == 1, timeout=60)


def sdk(llorchd: Llorchd, base: str = "/v1") -> openai.OpenAI:
    # No retries: a refusal must reach the test, not be retried away by the client.
    return openai.OpenAI(base_url=llorchd.url + base, api_key="unused", max_retries=0, timeout=60)


def task_of(llorchd: Llorchd, openai_id: str) -> dict[str, Any]:
    task_id = openai_id.split("-", 1)[1]
    return dict(llorchd.get(f"/v1/tasks/{task_id}"))


def test_models_and_completions_streamed_and_not(llorchd: Llorchd) -> None:
    ready_demo(llorchd)
    client = sdk(llorchd)
    assert [m.id for m in client.models.list()] == ["demo", "tiny-llama"]

    params: dict[str, Any] = {"prompt": "Once upon a time", "max_tokens": 40, "temperature": 0, "seed": 7}
    whole = client.completions.create(model="demo", **params)
    assert whole.object == "text_completion" and whole.model == "demo"
    (choice,) = whole.choices
    assert choice.text and choice.finish_reason in ("stop", "length")
    usage = whole.usage
    assert usage is not None and usage.prompt_tokens > 0
    assert usage.completion_tokens <= 40, "the model may stop early on EOS, never late"
    if choice.finish_reason == "length":
        assert usage.completion_tokens == 40
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    task = task_of(llorchd, whole.id)
    assert task["state"] == "succeeded" and task["pool"] == "demo", "it ran as an ordinary llorch task"

    chunks = list(
        client.completions.create(
            model="tiny-llama", stream=True, stream_options={"include_usage": True}, **params
        )
    )
    *body, last, usage_chunk = chunks
    assert "".join(c.choices[0].text for c in body) == choice.text
    assert all(c.choices[0].finish_reason is None for c in body)
    assert last.choices[0].finish_reason == choice.finish_reason and last.choices[0].text == ""
    assert usage_chunk.choices == [] and usage_chunk.usage == usage
    assert len({c.id for c in chunks}) == 1 and chunks[0].id != whole.id


def test_chat_completions_streamed_and_not(llorchd: Llorchd) -> None:
    ready_demo(llorchd)
    messages: list[Any] = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Say something."},
    ]
    params: dict[str, Any] = {"messages": messages, "max_tokens": 24, "temperature": 0, "seed": 3}
    whole = sdk(llorchd).chat.completions.create(model="demo", **params)
    assert whole.object == "chat.completion"
    (choice,) = whole.choices
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert whole.usage is not None and 0 < whole.usage.completion_tokens <= 24

    # The same answer through llorch's /v1 base, which serves the two completion paths too.
    chunks = list(sdk(llorchd, "/v1").chat.completions.create(model="demo", stream=True, **params))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == choice.message.content
    assert chunks[-1].choices[0].finish_reason == choice.finish_reason


def test_a_full_queue_is_a_rate_limit_error(llorchd: Llorchd, tmp_path: Path) -> None:
    # One slot and one queue place: a running task, a queued one, and the third is refused.
    # (queueCapacity 0 would refuse even the first: every task passes through the queue.)
    policy = {
        "apiVersion": "llorch.dev/v1",
        "kind": "Policy",
        "metadata": {"name": "tight"},
        "spec": {"selector": {}, "admission": {"queueCapacity": 1, "overflow": "reject"}},
    }
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    llorchd.ctl("apply", "-f", str(path))
    ready_demo(llorchd, slots=1, context=2048)
    client = sdk(llorchd)
    long: dict[str, Any] = {
        "model": "demo",
        "prompt": "Once upon a time",
        "max_tokens": LONG,
        "temperature": 0,
    }

    running = client.completions.create(stream=True, **long)
    next(iter(running))  # a token came: it holds the pool's only slot
    queued = client.completions.create(stream=True, **long)  # admitted: the queue's one place
    try:
        with pytest.raises(openai.RateLimitError) as refused:
            client.completions.create(**long)
        assert refused.value.code == "admission_reject" and refused.value.type == "rate_limit_error"
        assert "queued" in refused.value.message
        headers = refused.value.response.headers
        assert int(headers["Retry-After"]) >= 1 and int(headers["retry-after-ms"]) >= 100
    finally:
        running.close()
        queued.close()


def test_a_client_that_goes_away_cancels_its_task(llorchd: Llorchd) -> None:
    ready_demo(llorchd, context=2048)
    # Greedy: sampled text can hit EOS or a ChatML stop string and end the task before the server
    # sees the client leave.
    stream = sdk(llorchd).chat.completions.create(
        model="demo",
        messages=[{"role": "user", "content": "Go on."}],
        max_tokens=LONG,
        temperature=0,
        seed=11,
        stream=True,
    )
    first = next(iter(stream))
    stream.close()

    def canceled() -> dict[str, Any] | None:
        task = task_of(llorchd, first.id)
        return task if task["state"] != "running" else None

    task = wait_for("the abandoned task to end", canceled, timeout=10)
    assert task["state"] == "canceled" and task["result"]["code"] == "CANCELED", task["result"]
    assert task["result"]["message"] == "the client closed the stream"


def client_cancels(llorchd: Llorchd) -> float:
    text = llorchd.http.get(llorchd.url + "/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "llorch_tasks_canceled_total"
        and sample.labels == {"pool_id": "demo", "reason": "client"}
    )


def test_a_client_that_gives_up_on_a_whole_reply_cancels_its_task(llorchd: Llorchd) -> None:
    ready_demo(llorchd, context=LONG_CONTEXT, engineArgs=LONG_CONTEXT_ARGS)
    body = {"model": "demo", "prompt": "Once upon a time", "max_tokens": LONG_CONTEXT - 100, "temperature": 0}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(llorchd.url + "/v1/completions", json=body, timeout=httpx.Timeout(5, read=0.5))
    # No tokens go to a client waiting for a whole reply: the server notices the closed connection
    # on its own.
    wait_for("the task canceled for its client", lambda: client_cancels(llorchd) == 1, timeout=5)
    (replica,) = llorchd.pool()["status"]["replicaStatuses"]  # type: ignore[index]
    idle = lambda: not any(s["is_processing"] for s in httpx.get(replica["url"] + "/slots").json())  # noqa: E731
    wait_for("the engine's slots idle", idle, timeout=2.0, every=0.05)
