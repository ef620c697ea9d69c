"""The OpenAI-compatible front door against the app with no engine: listing, errors, validation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.api.test_app import Api, serve

BASE = "/openai/v1"

MODEL_AND_POOL = """\
apiVersion: llorch.dev/v1
kind: Model
metadata:
  name: tiny-llama
spec:
  source:
    builtin: tiny-llama
  format: gguf
---
apiVersion: llorch.dev/v1
kind: Pool
metadata:
  name: demo
spec:
  model: tiny-llama
  replicas: 1
"""

SECOND_POOL = """\
apiVersion: llorch.dev/v1
kind: Pool
metadata:
  name: demo-b
spec:
  model: tiny-llama
  replicas: 1
"""


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from serve(tmp_path)


def apply(api: Api, text: str) -> None:
    resp = api.http.post(
        api.url + "/v1/manifests", content=text, headers={"Content-Type": "application/yaml"}
    )
    assert resp.status_code == 200, resp.text


def assert_openai_error(resp: httpx.Response, status: int, type_: str, code: str | None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == type_ and error["code"] == code and error["message"]
    assert resp.headers["X-Correlation-Id"]
    return dict(error)


def client(api: Api) -> openai.OpenAI:
    return openai.OpenAI(base_url=api.url + BASE, api_key="unused", max_retries=0, timeout=10)


def test_models_list_pools_and_models_one_pool_serves(api: Api) -> None:
    assert api.http.get(api.url + BASE + "/models").json() == {"object": "list", "data": []}
    apply(api, MODEL_AND_POOL)
    listed = api.http.get(api.url + BASE + "/models").json()
    assert listed["object"] == "list"
    assert [m["id"] for m in listed["data"]] == ["demo", "tiny-llama"]
    for model in listed["data"]:
        assert model["object"] == "model" and model["owned_by"] == "llorch"
        assert isinstance(model["created"], int) and model["created"] > 0
    assert [m.id for m in client(api).models.list()] == ["demo", "tiny-llama"]
    assert client(api).models.retrieve("tiny-llama").id == "tiny-llama"

    apply(api, SECOND_POOL)
    ids = [m["id"] for m in api.http.get(api.url + BASE + "/models").json()["data"]]
    assert ids == ["demo", "demo-b"], "a Model behind two pools is ambiguous, so not a model id"
    resp = api.http.post(api.url + BASE + "/completions", json={"model": "tiny-llama", "prompt": "hi"})
    error = assert_openai_error(resp, 400, "invalid_request_error", "model_ambiguous")
    assert error["param"] == "model" and "demo, demo-b" in error["message"]


def test_openai_models_at_v1_and_llorch_model_objects_in_the_catalog(api: Api) -> None:
    apply(api, MODEL_AND_POOL)
    catalog = api.http.get(api.url + "/v1/catalog/models").json()
    assert catalog["kind"] == "ModelList"
    assert [m["metadata"]["name"] for m in catalog["items"]] == ["tiny-llama"]
    openai_list = api.http.get(api.url + "/v1/models").json()
    assert openai_list["object"] == "list" and openai_list == api.http.get(api.url + BASE + "/models").json()


@pytest.mark.parametrize("path", [BASE + "/completions", "/v1/completions"])
def test_unknown_model_is_404_model_not_found(api: Api, path: str) -> None:
    resp = api.http.post(
        api.url + path, json={"model": "nope", "prompt": "hi"}, headers={"X-Correlation-Id": "oa-1"}
    )
    error = assert_openai_error(resp, 404, "invalid_request_error", "model_not_found")
    assert error["param"] == "model" and resp.headers["X-Correlation-Id"] == "oa-1"
    missing = api.http.get(api.url + BASE + "/models/nope")
    assert_openai_error(missing, 404, "invalid_request_error", "model_not_found")


def test_the_sdk_raises_the_matching_errors(api: Api) -> None:
    apply(api, MODEL_AND_POOL)
    sdk = client(api)
    with pytest.raises(openai.NotFoundError) as not_found:
        sdk.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    assert not_found.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        sdk.completions.create(model="demo", prompt="hi", n=2)
    assert bad.value.code == "unsupported_value" and bad.value.param == "n"
    with pytest.raises(openai.InternalServerError) as unready:
        sdk.completions.create(model="demo", prompt="hi")
    assert unready.value.status_code == 503 and unready.value.code == "pool_unready"


def test_a_pool_without_ready_replicas_is_503_with_retry_after(api: Api) -> None:
    apply(api, MODEL_AND_POOL)
    for path, body in [
        ("/completions", {"model": "demo", "prompt": "hi"}),
        ("/completions", {"model": "tiny-llama", "prompt": ["hi"], "stream": True}),
        ("/chat/completions", {"model": "demo", "messages": [{"role": "user", "content": "hi"}]}),
    ]:
        resp = api.http.post(api.url + BASE + path, json=body)
        assert_openai_error(resp, 503, "server_error", "pool_unready")
        assert resp.headers["Retry-After"] == "1" and resp.headers["retry-after-ms"] == "1000"
        assert resp.headers["x-should-retry"] == "true"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"n": 2}, "n"),
        ({"echo": True}, "echo"),
        ({"best_of": 3}, "best_of"),
        ({"suffix": "tail"}, "suffix"),
        ({"logprobs": 1}, "logprobs"),
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"prompt": ["one", "two"]}, "prompt"),
    ],
)
def test_unimplemented_completion_values_are_refused(api: Api, body: dict[str, Any], param: str) -> None:
    apply(api, MODEL_AND_POOL)
    resp = api.http.post(api.url + BASE + "/completions", json={"model": "demo", "prompt": "hi", **body})
    error = assert_openai_error(resp, 400, "invalid_request_error", "unsupported_value")
    assert error["param"] == param


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"n": 4}, "n"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"logprobs": True}, "logprobs"),
    ],
)
def test_unimplemented_chat_values_are_refused(api: Api, body: dict[str, Any], param: str) -> None:
    apply(api, MODEL_AND_POOL)
    messages = [{"role": "user", "content": "hi"}]
    resp = api.http.post(
        api.url + BASE + "/chat/completions", json={"model": "demo", "messages": messages, **body}
    )
    error = assert_openai_error(resp, 400, "invalid_request_error", "unsupported_value")
    assert error["param"] == param


def test_off_values_are_accepted_and_ignored(api: Api) -> None:
    """What clients send by default gets past validation (to the 503 of a pool with no replica)."""
    apply(api, MODEL_AND_POOL)
    defaults = {"n": 1, "frequency_penalty": 0, "presence_penalty": 0.0, "user": "u-1", "logit_bias": {}}
    completion = {"model": "demo", "prompt": "hi", "echo": False, "best_of": 1, "suffix": None, **defaults}
    resp = api.http.post(api.url + BASE + "/completions", json=completion)
    assert resp.status_code == 503, resp.text
    chat = {
        "model": "demo",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "tool_choice": "none",
        "response_format": {"type": "text"},
        "stream": True,
        "stream_options": {"include_usage": True},
        **defaults,
    }
    resp = api.http.post(api.url + "/v1/chat/completions", json=chat)
    assert resp.status_code == 503, resp.text


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/completions", {"prompt": "hi"}, "model"),
        ("/completions", {"model": "demo"}, "prompt"),
        ("/completions", {"model": "demo", "prompt": ""}, "prompt"),
        ("/completions", {"model": "demo", "prompt": "hi", "max_tokens": 0}, "max_tokens"),
        ("/completions", {"model": "demo", "prompt": "hi", "temperature": 3}, "temperature"),
        ("/completions", {"model": "demo", "prompt": "hi", "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ("/completions", {"model": "demo", "prompt": "hi", "surprise": 1}, "surprise"),
        ("/completions", {"model": "demo", "prompt": "hi", "stream_options": {}}, "stream_options"),
        ("/chat/completions", {"model": "demo", "messages": []}, "messages"),
        ("/chat/completions", {"model": "demo", "messages": [{"role": "tool", "content": "x"}]}, None),
        (
            "/chat/completions",
            {"model": "demo", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages.0.content",
        ),
    ],
)
def test_invalid_bodies_are_400_invalid_request_error(
    api: Api, path: str, body: dict[str, Any], param: str | None
) -> None:
    apply(api, MODEL_AND_POOL)
    resp = api.http.post(api.url + BASE + path, json=body)
    error = assert_openai_error(resp, 400, "invalid_request_error", "invalid_params")
    if param is not None:
        assert error["param"] == param


def test_a_body_that_is_not_json_is_400_in_openai_shape(api: Api) -> None:
    headers = {"Content-Type": "application/json"}
    resp = api.http.post(api.url + BASE + "/completions", content=b"{not json", headers=headers)
    assert_openai_error(resp, 400, "invalid_request_error", "invalid_params")
    empty = api.http.post(api.url + BASE + "/chat/completions", headers=headers)
    assert_openai_error(empty, 400, "invalid_request_error", "invalid_params")
