"""The relay's front door against the app with no engine: model names, routing by workload, and
every refusal in the client's own shape (OpenAI's on /v1 and /openai/v1, Anthropic's on
/v1/messages), with no task admitted for a request that is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.api.test_app import Api, serve

BASE = "/openai/v1"
HI = [{"role": "user", "content": "hi"}]

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

EMBED_POOL = """\
apiVersion: llorch.dev/v1
kind: Pool
metadata:
  name: embed
spec:
  model: tiny-llama
  workload: embedding
  pooling: mean
"""

TRITON_POOL = """\
apiVersion: llorch.dev/v1
kind: Pool
metadata:
  name: triton
spec:
  model: tiny-llama
  engine: triton
"""


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from serve(tmp_path, max_body=4096)


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


def assert_anthropic_error(resp: httpx.Response, status: int, type_: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"type", "error"} and body["type"] == "error"
    assert set(body["error"]) == {"type", "message"} and body["error"]["type"] == type_
    assert resp.headers["X-Correlation-Id"]
    return str(body["error"]["message"])


def client(api: Api) -> openai.OpenAI:
    return openai.OpenAI(base_url=api.url + BASE, api_key="unused", max_retries=0, timeout=10)


def claude(api: Api) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=api.url, api_key="unused", max_retries=0, timeout=10)


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


@pytest.mark.parametrize(
    "path",
    [
        BASE + "/completions",
        "/v1/completions",
        "/v1/chat/completions",
        "/v1/embeddings",
        "/v1/rerank",
        BASE + "/responses",
    ],
)
def test_unknown_model_is_404_model_not_found(api: Api, path: str) -> None:
    resp = api.http.post(
        api.url + path, json={"model": "nope", "prompt": "hi"}, headers={"X-Correlation-Id": "oa-1"}
    )
    error = assert_openai_error(resp, 404, "invalid_request_error", "model_not_found")
    assert error["param"] == "model" and resp.headers["X-Correlation-Id"] == "oa-1"
    missing = api.http.get(api.url + BASE + "/models/nope")
    assert_openai_error(missing, 404, "invalid_request_error", "model_not_found")


def test_the_sdks_raise_the_matching_errors(api: Api) -> None:
    apply(api, MODEL_AND_POOL)
    with pytest.raises(openai.NotFoundError) as not_found:
        client(api).chat.completions.create(model="nope", messages=HI)  # type: ignore[arg-type]
    assert not_found.value.code == "model_not_found"
    with pytest.raises(openai.InternalServerError) as unready:
        client(api).completions.create(model="demo", prompt="hi", n=2, logprobs=3, echo=True)
    assert unready.value.status_code == 503 and unready.value.code == "pool_unready", (
        "fields llorch does not implement are the engine's to judge, never refused here"
    )
    with pytest.raises(anthropic.NotFoundError) as missing:
        claude(api).messages.create(model="nope", max_tokens=4, messages=HI)  # type: ignore[arg-type]
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert "does not exist" in missing.value.body["error"]["message"]  # type: ignore[index]
    with pytest.raises(anthropic.APIStatusError) as overloaded:
        claude(api).messages.count_tokens(model="demo", messages=HI)  # type: ignore[arg-type]
    assert overloaded.value.status_code == 503
    assert overloaded.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_a_pool_without_ready_replicas_is_503_with_retry_after(api: Api) -> None:
    apply(api, MODEL_AND_POOL)
    for path, body in [
        ("/completions", {"model": "demo", "prompt": "hi"}),
        ("/completions", {"model": "tiny-llama", "prompt": ["hi"], "stream": True}),
        ("/chat/completions", {"model": "demo", "messages": HI, "tools": [], "surprise": {"x": 1}}),
        ("/responses", {"model": "demo", "input": "hi"}),
    ]:
        resp = api.http.post(api.url + BASE + path, json=body)
        assert_openai_error(resp, 503, "server_error", "pool_unready")
        assert resp.headers["Retry-After"] == "1" and resp.headers["retry-after-ms"] == "1000"
        assert resp.headers["x-should-retry"] == "true"
    resp = api.http.post(api.url + "/v1/messages", json={"model": "demo", "max_tokens": 4, "messages": HI})
    assert "no ready replica" in assert_anthropic_error(resp, 503, "overloaded_error")
    assert resp.headers["Retry-After"] == "1"


def test_an_endpoint_the_pools_workload_or_engine_does_not_serve_is_refused(api: Api) -> None:
    apply(api, MODEL_AND_POOL + "---\n" + EMBED_POOL + "---\n" + TRITON_POOL)
    resp = api.http.post(api.url + "/v1/embeddings", json={"model": "demo", "input": "hi"})
    error = assert_openai_error(resp, 400, "invalid_request_error", "unsupported_endpoint")
    assert "workload completion" in error["message"] and "/v1/chat/completions" in error["message"]
    resp = api.http.post(api.url + BASE + "/chat/completions", json={"model": "embed", "messages": HI})
    error = assert_openai_error(resp, 400, "invalid_request_error", "unsupported_endpoint")
    assert "it serves /v1/embeddings" in error["message"]
    resp = api.http.post(api.url + "/v1/chat/completions", json={"model": "triton", "messages": HI})
    error = assert_openai_error(resp, 400, "invalid_request_error", "unsupported_endpoint")
    assert "none of the OpenAI or Anthropic endpoints" in error["message"], "no openaiFrontend"
    resp = api.http.post(api.url + "/v1/messages", json={"model": "embed", "max_tokens": 1, "messages": HI})
    assert "does not serve /v1/messages" in assert_anthropic_error(resp, 400, "invalid_request_error")
    assert api.ctx.tasks.queue_depths() == {}, "nothing admitted"


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/completions", {"prompt": "hi"}, "model"),
        ("/completions", {"model": "", "prompt": "hi"}, "model"),
        ("/chat/completions", {"model": ["demo"], "messages": HI}, "model"),
        ("/chat/completions", {"model": "demo", "messages": HI, "priority": "urgent"}, "priority"),
        ("/embeddings", {"model": "demo", "input": "hi", "deadline_ms": 0}, "deadline_ms"),
        ("/responses", {"model": "demo", "input": "hi", "session_id": "not a name"}, "session_id"),
    ],
)
def test_what_llorch_reads_of_a_body_is_checked(
    api: Api, path: str, body: dict[str, Any], param: str
) -> None:
    apply(api, MODEL_AND_POOL)
    resp = api.http.post(api.url + BASE + path, json=body)
    error = assert_openai_error(resp, 400, "invalid_request_error", "invalid_params")
    assert error["param"] == param


@pytest.mark.parametrize("path", [BASE + "/completions", "/v1/embeddings", "/v1/messages"])
def test_a_body_that_is_not_a_json_object_is_400_in_the_clients_shape(api: Api, path: str) -> None:
    headers = {"Content-Type": "application/json"}
    for content in (b"{not json", b"", b"[1, 2]", b"[" * 200 + b"]" * 200):
        resp = api.http.post(api.url + path, content=content, headers=headers)
        if path == "/v1/messages":
            assert_anthropic_error(resp, 400, "invalid_request_error")
        else:
            assert_openai_error(resp, 400, "invalid_request_error", "invalid_params")
    assert api.ctx.tasks.queue_depths() == {}, "nothing admitted"


@pytest.mark.parametrize("path", ["/v1/chat/completions", BASE + "/embeddings", "/v1/messages"])
def test_a_body_over_the_limit_is_413_in_the_clients_shape(api: Api, path: str) -> None:
    # llorchd's HTTP server refuses it from its Content-Length, before reading it.
    body = {"model": "demo", "input": "x" * 8192}
    resp = api.http.post(api.url + path, json=body, headers={"X-Correlation-Id": "big-1"})
    assert resp.headers["X-Correlation-Id"] == "big-1"
    if path == "/v1/messages":
        assert "exceeds 4096" in assert_anthropic_error(resp, 413, "request_too_large")
    else:
        error = assert_openai_error(resp, 413, "invalid_request_error", "payload_too_large")
        assert "server.maxBodyBytes" in error["message"]
