"""Contract tests: /v1/capabilities and /v1/replicasets answer what schema/ says they do."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from tests.api.test_app import Api, serve

REPO = Path(__file__).resolve().parents[2]

MANIFESTS = """\
apiVersion: llorch.dev/v1
kind: Pool
metadata:
  name: chat
  labels: {tier: interactive}
spec:
  model: m
  slots: 4
  context: 4096
  capabilities: {maxTokensOut: 1024, chat: true}
---
apiVersion: llorch.dev/v1
kind: Pool
metadata:
  name: plain
spec:
  model: m
---
apiVersion: llorch.dev/v1
kind: Pool
metadata:
  name: hf
spec:
  model: m
  engine: tgi
  endpoint: {url: "http://127.0.0.1:9"}
---
apiVersion: llorch.dev/v1
kind: Pool
metadata:
  name: vectors
spec:
  model: m
  workload: embedding
---
apiVersion: llorch.dev/v1
kind: Pool
metadata:
  name: triton-openai
spec:
  model: m
  engine: triton
  capabilities: {openaiFrontend: true}
---
apiVersion: llorch.dev/v1
kind: Policy
metadata:
  name: interactive
spec:
  selector: {matchLabels: {tier: interactive}}
  admission: {queueCapacity: 16, overflow: drop-lru}
  budgets: {tokens: 5000}
  determinism: {default: strict}
"""


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    for api in serve(tmp_path):
        resp = api.http.post(
            api.url + "/v1/manifests", content=MANIFESTS, headers={"Content-Type": "application/yaml"}
        )
        assert resp.status_code == 200, resp.text
        yield api


def schema(name: str) -> dict[str, object]:
    return dict(json.loads((REPO / "schema" / f"{name}.schema.json").read_text()))


def test_capabilities_follow_the_schema_and_the_bound_policy(api: Api) -> None:
    body = api.http.get(api.url + "/v1/capabilities").json()
    jsonschema.validate(body, schema("capabilities"))
    pools = {p["pool"]: p for p in body["pools"]}
    chat = pools["chat"]
    assert chat["ctx_max"] == 4096 and chat["max_tokens_out"] == 1024 and chat["slots_per_replica"] == 4
    assert chat["features"]["chat"] is True and chat["features"]["determinism"] == "strict"
    assert chat["rate_limits"] == {"queue_capacity": 16, "overflow": "drop-lru"}
    assert chat["budgets"]["tokens"] == 5000 and chat["policy"] == "interactive"
    assert chat["slots_total"] == 0 and chat["replicas_ready"] == 0, "nothing is running in this test"
    plain = pools["plain"]
    assert plain["policy"] is None and plain["rate_limits"]["queue_capacity"] == 64
    assert plain["max_tokens_out"] == plain["ctx_max"] == 2048
    assert plain["features"]["structured_outputs"] == ["grammar", "json_schema"]
    assert pools["hf"]["features"]["structured_outputs"] == ["json_schema"], "TGI has no GBNF"


def test_capabilities_say_each_pools_workload_and_the_endpoints_its_engine_serves(api: Api) -> None:
    pools = {p["pool"]: p for p in api.http.get(api.url + "/v1/capabilities").json()["pools"]}
    assert pools["plain"]["workload"] == "completion" and pools["plain"]["endpoints"] == [
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/messages",
        "/v1/messages/count_tokens",
        "/v1/responses",
    ]
    assert pools["vectors"]["workload"] == "embedding"
    assert pools["vectors"]["supported_workloads"] == ["embedding"]
    assert pools["vectors"]["endpoints"] == ["/v1/embeddings"]
    assert pools["triton-openai"]["endpoints"] == ["/v1/chat/completions", "/v1/completions"]


def test_replicasets_follow_the_schema(api: Api) -> None:
    body = api.http.get(api.url + "/v1/replicasets").json()
    jsonschema.validate(body, schema("replicasets"))
    assert {r["id"] for r in body["replicasets"]} == {"chat", "plain", "vectors", "triton-openai", "hf"}
    assert all(r["load"] == 0.0 and r["slots_total"] == 0 for r in body["replicasets"])


def test_the_schema_rejects_a_drifted_answer(api: Api) -> None:
    body = api.http.get(api.url + "/v1/capabilities").json()
    del body["pools"][0]["slots_total"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, schema("capabilities"))
