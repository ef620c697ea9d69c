"""Secrets never at rest: after a real llorchd has used keys, an endpoint pool's authHeaderEnv
value, a tool call with an Authorization header and a URL with ?api_key=, none of them is in the
state folder, in any log (JSON lines or text, llorchd's and the replicas'), or in any answer."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.conftest import (
    TEST_CONFIG,
    free_port,
    read_sse,
    start_llorchd,
    stop_llorchd,
    wait_for,
)
from tests.upstream import upstream

pytestmark = [pytest.mark.engine, pytest.mark.slow]

ADMIN_KEY = "llorch_admin-key-never-at-rest-0001"
AGENT_KEY = "llorch_agent-key-never-at-rest-0002"
LEGACY_TOKEN = "legacy-token-never-at-rest-0003"
ENDPOINT_KEY = "endpoint-key-never-at-rest-0004"
TOOL_BEARER = "tool-bearer-never-at-rest-0005"
TOOL_QUERY_KEY = "tool-query-key-never-at-rest-0006"
BAD_TOKEN = "bad-token-never-at-rest-0007"
SECRETS = (ADMIN_KEY, AGENT_KEY, LEGACY_TOKEN, ENDPOINT_KEY, TOOL_BEARER, TOOL_QUERY_KEY, BAD_TOKEN)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def engine(tmp_path: Path, llama_server_bin: Path, demo_model: Path) -> Iterator[str]:
    """An engine someone else runs, that wants a key: llama-server with --api-key."""
    port = free_port()
    with open(tmp_path / "external.log", "ab") as out:
        proc = subprocess.Popen(
            [str(llama_server_bin), "-m", str(demo_model), "--host", "127.0.0.1", "--port", str(port),
             "-c", "1024", "-np", "2", "--n-gpu-layers", "0", "--threads", "1", "--api-key", ENDPOINT_KEY],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(url + "/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for("the external llama-server", up, timeout=30)
    yield url
    proc.terminate()
    proc.wait(10)


def manifests(engine_url: str, tool_port: int) -> str:
    return f"""\
apiVersion: llorch.dev/v1
kind: Pool
metadata: {{name: outside, labels: {{tier: agents}}}}
spec:
  model: tiny-llama
  slots: 2
  context: 512
  endpoint: {{url: {engine_url}, authHeaderEnv: ENDPOINT_AUTH}}
---
apiVersion: llorch.dev/v1
kind: Policy
metadata: {{name: agents}}
spec:
  selector: {{matchLabels: {{tier: agents}}}}
  budgets: {{tokens: 100000}}
  httpTools:
    allow: [{{name: echo, host: 127.0.0.1, ports: [{tool_port}], schemes: [http], methods: [GET, POST]}}]
"""


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_no_secret_is_written_or_answered(tmp_path: Path, engine: str, log_format: str) -> None:
    answers: list[str] = []

    def keep(response: httpx.Response) -> None:
        response.read()
        answers.append(str(response.headers) + response.text)

    config = {
        **TEST_CONFIG,
        "auth": {
            "keys": [
                {"name": "ops", "sha256": sha(ADMIN_KEY), "scopes": ["admin"]},
                {"name": "agent", "sha256": sha(AGENT_KEY), "scopes": ["read", "submit"]},
            ]
        },
    }
    manifests_dir, state = tmp_path / "manifests", tmp_path / "state"
    manifests_dir.mkdir()
    env = {"LLORCH_TOKENS": LEGACY_TOKEN, "ENDPOINT_AUTH": f"Bearer {ENDPOINT_KEY}"}
    with upstream() as tools:
        daemon = start_llorchd(tmp_path, manifests_dir, state, config, log_format=log_format, env=env)
        try:

            def client(**headers: str) -> httpx.Client:
                return httpx.Client(
                    base_url=daemon.url, headers=headers, timeout=30, event_hooks={"response": [keep]}
                )

            admin = client(Authorization=f"Bearer {ADMIN_KEY}")
            agent = client(**{"X-API-Key": AGENT_KEY})
            legacy = client(Authorization=f"Bearer {LEGACY_TOKEN}")
            applied = admin.post(
                "/v1/manifests",
                content=manifests(engine, tools.port),
                headers={"Content-Type": "application/yaml"},
            )
            assert applied.status_code == 200, applied.text
            wait_for(
                "the endpoint pool Ready",
                lambda: admin.get("/v1/pools/outside").json()["status"].get("readyReplicas") == 1,
            )

            admitted = agent.post(
                "/v1/tasks", json={"pool": "outside", "prompt": "Hello", "max_tokens": 8, "session_id": "s-1"}
            )
            assert admitted.status_code == 202, admitted.text
            frames = read_sse(agent, admitted.json()["streams"]["sse"])
            assert frames[-1][0] == "end", frames[-1]

            called = agent.post(
                "/v1/tools/http",
                json={
                    "pool": "outside",
                    "method": "POST",
                    "url": tools.url(f"/echo?api_key={TOOL_QUERY_KEY}"),
                    "headers": {"Authorization": f"Bearer {TOOL_BEARER}"},
                    "body": "hi",
                    "task_id": admitted.json()["task_id"],
                },
            )
            assert called.status_code == 200 and called.json()["status"] == 200, called.text
            assert tools.seen[0][2]["Authorization"] == f"Bearer {TOOL_BEARER}", "the upstream did get it"
            bad = httpx.get(
                daemon.url + f"/v1/pools?api_key={BAD_TOKEN}",
                headers={"Authorization": f"Bearer {BAD_TOKEN}"},
            )
            assert bad.status_code == 401
            answers.append(str(bad.headers) + bad.text)
            assert legacy.post("/v1/pools/outside/reload", json={}).status_code == 202

            task = admitted.json()["task_id"]
            for path in (
                "/v1/pools", "/v1/pools/outside", "/v1/pools/outside/health", "/v1/policies/agents",
                f"/v1/tasks/{task}", "/v1/sessions/s-1", "/v1/capabilities", "/v1/replicasets", "/v1/audit",
                "/metrics", "/v1/models",
            ):  # fmt: skip
                assert admin.get(path).status_code == 200, path
            actors = {entry["actor"] for entry in admin.get("/v1/audit").json()["items"]}
            assert {
                "token:ops",
                "token:agent",
                f"token:{sha(LEGACY_TOKEN)[:6]}",
                f"token:{sha(BAD_TOKEN)[:6]}",
            } <= actors
        finally:
            stop_llorchd(daemon)
    at_rest = {path: path.read_bytes() for path in state.rglob("*") if path.is_file()}
    at_rest[daemon.log] = daemon.log.read_bytes()
    assert any(p.name.startswith("state.sqlite") for p in at_rest), "the state folder was read"
    if log_format == "json":
        assert all(yaml.safe_load(line) for line in daemon.logs().splitlines() if line.startswith("{"))
    for secret in SECRETS:
        for path, content in at_rest.items():
            assert secret.encode() not in content, f"{secret} is in {path}"
        for answer in answers:
            assert secret not in answer, f"{secret} was answered: {answer[:300]}"
