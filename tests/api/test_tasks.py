"""POST /v1/tasks with the contract's routing and hint fields, in-process with no engine: the
replicas are registered by hand and the dispatcher never runs, so admitted tasks stay queued."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import falcon.testing
import pytest

from llorch.api.app import create_app
from llorch.api.context import AppContext
from llorch.runtime.engines.base import Upstream
from llorch.runtime.engines.llamacpp import LlamaCpp
from llorch.runtime.registry import Replica
from tests.api.appctx import app_context, close

POOLS = """\
apiVersion: llorch.dev/v1
kind: Pool
metadata: {name: big}
spec: {model: m, context: 8192, slots: 2}
---
apiVersion: llorch.dev/v1
kind: Pool
metadata: {name: small}
spec: {model: m, context: 2048, slots: 4}
---
apiVersion: llorch.dev/v1
kind: Pool
metadata: {name: idle}
spec: {model: m, replicas: 0}
"""


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[AppContext]:
    ctx = app_context(tmp_path)
    (tmp_path / "manifests" / "pools.yaml").write_text(POOLS)
    ctx.store.load()
    for pool, slots, gpu in (("big", 2, 0), ("small", 4, 1)):
        upstream = Upstream("http://127.0.0.1:9", "m")
        ctx.registry.add(Replica(f"{pool}-0", pool, "llamacpp", upstream, slots, LlamaCpp(), devices=(gpu,)))
    yield ctx
    close(ctx)


@pytest.fixture
def client(ctx: AppContext) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_app(ctx))


def post(client: falcon.testing.TestClient, **body: Any) -> falcon.testing.Result:
    prompt = {} if "inputs" in body else {"prompt": "hi"}
    return client.simulate_post("/v1/tasks", json={**prompt, **body})


def test_model_ref_goes_to_the_pool_with_most_free_slots(client: falcon.testing.TestClient) -> None:
    assert post(client, model_ref="m").json["pool"] == "small"


@pytest.mark.parametrize(
    ("body", "pool"),
    [
        ({"ctx": 4096}, "big"),
        ({"placement": {"avoid_pools": ["small"]}}, "big"),
        ({"placement": {"require_device_mask": 1}}, "big"),
        ({"placement": {"mode": "prefer", "prefer_pools": ["idle", "big"]}}, "big"),
        ({"placement": {"mode": "pin", "pin_pool_id": "big"}}, "big"),
        ({"inputs": ["hi"]}, "small"),
    ],
)
def test_routing_fields_pick_the_pool(
    client: falcon.testing.TestClient, body: dict[str, Any], pool: str
) -> None:
    answer = post(client, model_ref="m", **body)
    assert answer.status_code == 202, answer.text
    assert answer.json["pool"] == pool


def test_a_pin_without_a_model_ref_is_enough(client: falcon.testing.TestClient) -> None:
    answer = client.simulate_post(
        "/v1/tasks", json={"prompt": "hi", "placement": {"mode": "pin", "pin_pool_id": "small"}}
    )
    assert answer.status_code == 202 and answer.json["pool"] == "small"


@pytest.mark.parametrize(
    ("body", "status", "code", "says"),
    [
        ({"pool": "small", "ctx": 4096}, 400, "INVALID_PARAMS", "context 2048 < ctx 4096"),
        ({"model_ref": "m", "engine": "vllm"}, 400, "INVALID_PARAMS", "engine is llamacpp, not vllm"),
        ({"pool": "idle", "sampler_profile_version": "v1"}, 503, "POOL_UNREADY", "no ready replica"),
        (
            {
                "model_ref": "m",
                "placement": {"mode": "prefer", "prefer_pools": ["idle"], "allow_fallback": False},
            },
            503,
            "POOL_UNAVAILABLE",
            "allow_fallback",
        ),
    ],
)
def test_what_cannot_be_honoured_is_refused_with_the_reason(
    client: falcon.testing.TestClient, body: dict[str, Any], status: int, code: str, says: str
) -> None:
    answer = post(client, **body)
    assert answer.status_code == status and answer.json["code"] == code
    assert says in answer.json["message"]


def test_kv_hint_and_deadline_reach_the_task(client: falcon.testing.TestClient, ctx: AppContext) -> None:
    answer = post(client, pool="big", kv_hint="cold", deadline_ms=30_000, expected_tokens=12)
    assert answer.status_code == 202, answer.text
    task = ctx.tasks.get(answer.json["task_id"])
    assert task.request.cache_prompt is False
    assert task.deadline_at is not None and task.deadline_at - task.created_at == pytest.approx(30, abs=1)
    assert ctx.tasks.get(post(client, pool="big").json["task_id"]).request.cache_prompt is True
