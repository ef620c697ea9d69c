"""/v1/artifacts through the Falcon app, with a real sqlite and artifact folder."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import falcon.testing
import pytest

from llorch.api.app import create_app
from llorch.resources import ServerConfig
from tests.api.appctx import app_context, close

MAX_BYTES = 4096
MAX_BODY = 1024
PLAN = "1. read\r\n2. write ✓\n"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[falcon.testing.TestClient]:
    config = ServerConfig.model_validate(
        {"artifacts": {"maxBytes": MAX_BYTES}, "server": {"maxBodyBytes": MAX_BODY}}
    )
    ctx = app_context(tmp_path, config=config)
    yield falcon.testing.TestClient(create_app(ctx))
    close(ctx)


def put(client: falcon.testing.TestClient, **body: Any) -> falcon.testing.Result:
    return client.simulate_post("/v1/artifacts", json=body)


def error(result: falcon.testing.Result, status: int, code: str) -> str:
    assert result.status_code == status, result.text
    assert result.json["code"] == code and result.json["correlation_id"]
    return str(result.json["message"])


def test_a_put_is_201_then_200_for_the_same_content(client: falcon.testing.TestClient) -> None:
    first = put(client, kind="plan", content=PLAN, tags=["a"], metadata={"agent": "coder"})
    assert first.status_code == 201, first.text
    digest = hashlib.sha256(PLAN.encode()).hexdigest()
    assert first.headers["Location"] == f"/v1/artifacts/{digest}"
    assert first.json == {
        "id": digest,
        "kind": "plan",
        "digest": f"sha256:{digest}",
        "size_bytes": len(PLAN.encode()),
        "created_ms": first.json["created_ms"],
        "tags": ["a"],
        "parent": None,
        "metadata": {"agent": "coder"},
    }
    again = put(client, kind="diff", content=PLAN, tags=["b", "a"])
    assert again.status_code == 200 and again.headers["Location"] == first.headers["Location"]
    assert again.json == {**first.json, "tags": ["a", "b"]}


def test_get_answers_the_content_exactly(client: falcon.testing.TestClient) -> None:
    stored = put(client, kind="trace", content=PLAN).json
    got = client.simulate_get(f"/v1/artifacts/{stored['id']}")
    assert got.status_code == 200
    assert got.json == {**stored, "content": PLAN}


@pytest.mark.parametrize(
    "artifact_id", ["A" * 64, "abc", "..", "%2e%2e", "..%2Fstate.sqlite", "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd"]
)
def test_malformed_ids_are_refused(client: falcon.testing.TestClient, artifact_id: str) -> None:
    # tests/api/test_artifact_ids.py sends the whole attack list over a real socket.
    error(client.simulate_get(f"/v1/artifacts/{artifact_id}"), 400, "INVALID_PARAMS")


def test_an_unknown_id_is_not_found(client: falcon.testing.TestClient) -> None:
    error(client.simulate_get(f"/v1/artifacts/{'0' * 64}"), 404, "NOT_FOUND")


def test_content_over_the_limit_is_413_naming_the_setting(client: falcon.testing.TestClient) -> None:
    assert put(client, kind="other", content="x" * MAX_BYTES).status_code == 201
    message = error(put(client, kind="other", content="é" * (MAX_BYTES // 2 + 1)), 413, "PAYLOAD_TOO_LARGE")
    assert f"{MAX_BYTES + 2} bytes" in message and str(MAX_BYTES) in message
    assert "artifacts.maxBytes" in message


def test_the_artifact_path_takes_bodies_past_the_server_limit(client: falcon.testing.TestClient) -> None:
    """Content of the artifact limit fits however JSON escapes it; other paths keep their limit."""
    escaped = "\x01" * MAX_BYTES
    assert len(json.dumps({"content": escaped})) > 6 * MAX_BYTES > MAX_BODY
    assert put(client, kind="other", content=escaped).status_code == 201
    huge = put(client, kind="other", content="x" * (7 * MAX_BYTES + MAX_BODY))
    assert "artifacts.maxBytes" in error(huge, 413, "PAYLOAD_TOO_LARGE")
    task = client.simulate_post("/v1/tasks", json={"pool": "demo", "prompt": "x" * MAX_BODY})
    assert "server.maxBodyBytes" in error(task, 413, "PAYLOAD_TOO_LARGE")


def test_a_missing_parent_is_400_naming_it(client: falcon.testing.TestClient) -> None:
    missing = "f" * 64
    assert missing in error(put(client, kind="diff", content="+", parent=missing), 400, "INVALID_PARAMS")
    parent = put(client, kind="plan", content=PLAN).json["id"]
    child = put(client, kind="diff", content="+", parent=parent)
    assert child.status_code == 201 and child.json["parent"] == parent


@pytest.mark.parametrize(
    "body",
    [
        {"content": "x"},
        {"kind": "plan"},
        {"kind": "essay", "content": "x"},
        {"kind": "plan", "content": "x", "surprise": True},
        {"kind": "plan", "content": "x", "tags": "not-a-list"},
        {"kind": "plan", "content": "x", "tags": [""]},
        {"kind": "plan", "content": "x", "metadata": ["not", "a", "map"]},
        ["not", "an", "object"],
    ],
)
def test_bad_bodies_are_invalid_params(client: falcon.testing.TestClient, body: Any) -> None:
    error(client.simulate_post("/v1/artifacts", json=body), 400, "INVALID_PARAMS")


def test_a_body_that_is_not_json_or_a_lone_surrogate_is_invalid_params(
    client: falcon.testing.TestClient,
) -> None:
    headers = {"Content-Type": "application/json"}
    for raw in ("{not json", '{"kind": "plan", "content": "\\ud800"}'):
        error(client.simulate_post("/v1/artifacts", body=raw, headers=headers), 400, "INVALID_PARAMS")
    error(client.simulate_post("/v1/artifacts"), 400, "INVALID_PARAMS")
    assert client.simulate_get("/v1/artifacts").json == {"items": []}


def test_listing_filters_and_leaves_content_out(client: falcon.testing.TestClient) -> None:
    plan = put(client, kind="plan", content="p", tags=["run-1"]).json
    diff = put(client, kind="diff", content="d", tags=["run-1"]).json
    other = put(client, kind="plan", content="q", tags=["run-2"]).json

    def listed(query: str | None = None) -> list[dict[str, Any]]:
        result = client.simulate_get("/v1/artifacts", query_string=query)
        assert result.status_code == 200, result.text
        items: list[dict[str, Any]] = result.json["items"]
        return items

    assert listed() == [other, diff, plan]
    assert listed("kind=plan") == [other, plan]
    assert listed("tag=run-1") == [diff, plan]
    assert listed("kind=diff&tag=run-2") == []
    assert listed("limit=2") == [other, diff]
    for query in ("kind=essay", "limit=0", "limit=1001", "limit=many"):
        error(client.simulate_get("/v1/artifacts", query_string=query), 400, "INVALID_PARAMS")


def test_tokens_guard_artifacts_too(tmp_path: Path) -> None:
    ctx = app_context(tmp_path, tokens=("s3cret",))
    client = falcon.testing.TestClient(create_app(ctx))
    try:
        error(put(client, kind="plan", content=PLAN), 401, "MISSING_TOKEN")
        error(client.simulate_get("/v1/artifacts"), 401, "MISSING_TOKEN")
        ok = client.simulate_get("/v1/artifacts", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
    finally:
        close(ctx)
