"""POST /v1/tasks with the contract's routing, hint and output-constraint fields, in-process with no
engine: the replicas are registered by hand (the TGI pool's is an endpoint never dialled) and the
dispatcher never runs, so admitted tasks stay queued."""

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
from llorch.runtime.engines.tgi import Tgi
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
---
apiVersion: llorch.dev/v1
kind: Pool
metadata: {name: tgi}
spec: {model: m, engine: tgi, endpoint: {url: "http://127.0.0.1:9"}}
"""


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[AppContext]:
    ctx = app_context(tmp_path)
    (tmp_path / "manifests" / "pools.yaml").write_text(POOLS)
    ctx.store.load()
    for pool, slots, gpu in (("big", 2, 0), ("small", 4, 1)):
        upstream = Upstream("http://127.0.0.1:9", "m")
        ctx.registry.add(Replica(f"{pool}-0", pool, "llamacpp", upstream, slots, LlamaCpp(), devices=(gpu,)))
    ctx.registry.add(Replica("tgi-0", "tgi", "tgi", Upstream("http://127.0.0.1:9", "m"), 1, Tgi()))
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


# -- output constraints ------------------------------------------------------------------------------

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
GRAMMAR = 'root ::= "yes" | "no"'


def test_the_constraint_reaches_the_queued_task(client: falcon.testing.TestClient, ctx: AppContext) -> None:
    schema = post(client, pool="big", json_schema=SCHEMA)
    assert schema.status_code == 202, schema.text
    assert ctx.tasks.get(schema.json["task_id"]).request.json_schema == SCHEMA
    grammar = post(client, pool="big", grammar=GRAMMAR)
    assert grammar.status_code == 202, grammar.text
    request = ctx.tasks.get(grammar.json["task_id"]).request
    assert request.grammar == GRAMMAR and request.json_schema is None
    assert post(client, pool="tgi", json_schema=SCHEMA).status_code == 202, "TGI has a JSON grammar"


def test_a_grammar_is_refused_at_admission_where_the_engine_has_no_equivalent(
    client: falcon.testing.TestClient, ctx: AppContext
) -> None:
    answer = post(client, pool="tgi", grammar=GRAMMAR)
    assert answer.status_code == 400, answer.text
    assert answer.json["code"] == "INVALID_PARAMS" and answer.json["engine"] == "tgi"
    assert "pool 'tgi' runs engine tgi, which has no equivalent of grammar" in answer.json["message"]
    assert "llamacpp, vllm, triton" in answer.json["message"], "says where the grammar can go"
    assert ctx.tasks.queue_depths() == {}, "refused before it was queued"


def test_routing_by_model_asks_the_engine_of_the_pool_it_picked(client: falcon.testing.TestClient) -> None:
    avoid = {"avoid_pools": ["big", "small"]}
    answer = post(client, model_ref="m", grammar=GRAMMAR, placement=avoid)
    assert answer.status_code == 400 and answer.json["engine"] == "tgi"
    assert post(client, model_ref="m", grammar=GRAMMAR).json["pool"] == "small"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"json_schema": SCHEMA, "grammar": GRAMMAR}, "give json_schema or grammar, not both"),
        ({"json_schema": {"type": "no-such-type"}}, "json_schema is not a valid JSON Schema at type"),
        ({"json_schema": {"properties": {"a": {"minLength": -1}}}}, "at properties/a/minLength"),
        ({"json_schema": "an object"}, "json_schema"),
        ({"grammar": ""}, "grammar"),
    ],
)
def test_bad_constraints_are_refused_with_the_reason(
    client: falcon.testing.TestClient, body: dict[str, Any], says: str
) -> None:
    answer = post(client, pool="big", **body)
    assert answer.status_code == 400 and answer.json["code"] == "INVALID_PARAMS"
    assert says in answer.json["message"]
