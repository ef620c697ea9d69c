"""`GET /v1/queue` and `POST /v1/sessions` in-process, on a real store, sqlite and data plane whose
dispatcher never runs (so admitted tasks stay queued), each answer checked against the document."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
import referencing

from llorch.api.app import create_app
from llorch.runtime.engines.base import Upstream
from llorch.runtime.engines.llamacpp import LlamaCpp
from llorch.runtime.registry import Replica
from tests.api import test_openapi_contract as contract
from tests.api.appctx import app_context, close
from tests.api.test_openapi_contract import check

MANIFESTS = """\
apiVersion: llorch.dev/v1
kind: Pool
metadata: {name: demo}
spec: {model: m, slots: 1}
---
apiVersion: llorch.dev/v1
kind: Policy
metadata: {name: tight}
spec:
  sessions: {maxTurns: 3}
  budgets: {tokens: 500}
"""

# The contract test's fixtures: the document, and a registry its refs resolve in.
doc = contract.doc
registry = contract.registry


@pytest.fixture
def client(tmp_path: Path) -> Iterator[falcon.testing.TestClient]:
    ctx = app_context(tmp_path)
    (ctx.store.folder / "all.yaml").write_text(MANIFESTS)
    ctx.store.load()
    ctx.registry.add(
        Replica("demo-0", "demo", "llamacpp", Upstream("http://127.0.0.1:9", "m"), 1, LlamaCpp())
    )
    yield falcon.testing.TestClient(create_app(ctx))
    close(ctx)


def test_the_queue_in_start_order(
    client: falcon.testing.TestClient, doc: dict[str, Any], registry: referencing.Registry[Any]
) -> None:
    submitted = [
        client.simulate_post("/v1/tasks", json={"pool": "demo", "prompt": "hi", **extra}).json["task_id"]
        for extra in (
            {"priority": "batch"},
            {"priority": "batch", "session_id": "s-1"},
            {"priority": "interactive", "max_tokens": 7},
        )
    ]
    answer = client.simulate_get("/v1/queue", params={"pool": "demo"})
    check(doc, registry, answer, "/v1/queue", "get")
    items = answer.json["items"]
    # Interactive before batch, FIFO within each; nothing runs (no dispatcher), so all three wait.
    assert [i["task_id"] for i in items] == [submitted[2], submitted[0], submitted[1]]
    assert [i["position"] for i in items] == [0, 1, 2]
    assert [i["priority"] for i in items] == ["interactive", "batch", "batch"]
    assert [i["session_id"] for i in items] == [None, None, "s-1"]
    assert items[0]["max_tokens"] == 7
    starts = [i["predicted_start_ms"] for i in items]
    assert starts == sorted(starts), "a task further back starts no sooner"
    every_pool = client.simulate_get("/v1/queue").json["items"]
    assert [i["task_id"] for i in every_pool] == [i["task_id"] for i in items]
    client.simulate_post(f"/v1/tasks/{submitted[2]}/cancel")
    assert [i["task_id"] for i in client.simulate_get("/v1/queue").json["items"]] == submitted[:2]


def test_a_session_opened_up_front_shows_its_policy(
    client: falcon.testing.TestClient, doc: dict[str, Any], registry: referencing.Registry[Any]
) -> None:
    created = client.simulate_post("/v1/sessions", json={"pool": "demo", "session_id": "chat-1"})
    check(doc, registry, created, "/v1/sessions", "post")
    assert created.status_code == 201 and created.headers["Location"] == "/v1/sessions/chat-1"
    assert (created.json["max_turns"], created.json["tokens_budget_remaining"]) == (3, 500)
    again = client.simulate_post("/v1/sessions", json={"pool": "demo", "session_id": "chat-1"})
    assert again.status_code == 200 and again.json["session_id"] == "chat-1"
    fresh = client.simulate_post("/v1/sessions", json={"pool": "demo"})
    assert fresh.status_code == 201 and fresh.json["session_id"] != "chat-1"
    missing = client.simulate_post("/v1/sessions", json={"pool": "absent"})
    assert missing.status_code == 404
    check(doc, registry, missing, "/v1/sessions", "post")
