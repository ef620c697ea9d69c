"""The official `openai` client against a real llorchd relaying to a real llama-server (the demo
model): the everyday calls, with llorch's task behind each. The relay's other endpoints, the
Anthropic SDK and llorch's own behaviours on the relay (cancel, 429, budgets) are in test_relay.py."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.e2e.conftest import REPO, Llorchd, wait_for

pytestmark = [pytest.mark.engine, pytest.mark.slow]


def ready_demo(llorchd: Llorchd, **spec: Any) -> None:
    llorchd.ctl("apply", "-f", str(REPO / "manifests" / "model-demo.yaml"))
    llorchd.write_pool(replicas=1, **spec)
    wait_for("the demo pool to be Ready", lambda: llorchd.ready_replicas() == 1, timeout=60)


def sdk(llorchd: Llorchd, base: str = "/v1") -> openai.OpenAI:
    # No retries: a refusal must reach the test, not be retried away by the client.
    return openai.OpenAI(base_url=llorchd.url + base, api_key="unused", max_retries=0, timeout=60)


def test_models_and_completions_streamed_and_not(llorchd: Llorchd) -> None:
    ready_demo(llorchd)
    client = sdk(llorchd)
    assert [m.id for m in client.models.list()] == ["demo", "tiny-llama"]

    params: dict[str, Any] = {"prompt": "Once upon a time", "max_tokens": 40, "temperature": 0, "seed": 7}
    raw = client.completions.with_raw_response.create(model="demo", **params)
    whole = raw.parse()
    assert whole.object == "text_completion"
    (choice,) = whole.choices
    assert choice.text and choice.finish_reason in ("stop", "length")
    usage = whole.usage
    assert usage is not None and usage.prompt_tokens > 0
    assert usage.completion_tokens <= 40, "the model may stop early on EOS, never late"
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    task = llorchd.get(f"/v1/tasks/{raw.headers['X-Task-Id']}")
    assert task["state"] == "succeeded" and task["pool"] == "demo", "it ran as an ordinary llorch task"
    assert task["result"]["tokens_out"] == usage.completion_tokens, "counted as the engine counted"

    chunks = list(client.completions.create(model="tiny-llama", stream=True, **params))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == choice.text
    assert chunks[-1].choices[0].finish_reason == choice.finish_reason


def test_chat_completions_streamed_and_not(llorchd: Llorchd) -> None:
    ready_demo(llorchd)
    messages: list[Any] = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": [{"type": "text", "text": "Say something."}]},
    ]
    params: dict[str, Any] = {"messages": messages, "max_tokens": 24, "temperature": 0, "seed": 3}
    whole = sdk(llorchd).chat.completions.create(model="demo", **params)
    assert whole.object == "chat.completion"
    (choice,) = whole.choices
    assert choice.message.role == "assistant" and choice.message.content
    assert whole.usage is not None and 0 < whole.usage.completion_tokens <= 24

    # The same answer through the /openai/v1 mount, streamed.
    chunks = list(sdk(llorchd, "/openai/v1").chat.completions.create(model="demo", stream=True, **params))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == choice.message.content
    assert chunks[-1].choices[0].finish_reason == choice.finish_reason
