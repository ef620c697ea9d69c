"""The Falcon app over real loopback HTTP (llorchd's own waitress server), with a real store, sqlite
and data plane."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from llorch.api.app import body_limit, create_app
from llorch.api.auth.oidc import OidcVerifier
from llorch.api.context import AppContext
from llorch.api.sse import encode
from llorch.daemon.http import LimitedServer, create_server
from llorch.dataplane.metrics import Metrics
from llorch.dataplane.tasks import Frame
from llorch.resources import ServerConfig
from llorch.resources.version import this_version
from llorch.store.manifests import ManifestStore
from tests.api.appctx import app_context, close

POOL = """\
apiVersion: llorch.dev/v1
kind: Pool
metadata:
  name: demo
spec:
  model: tiny-llama
  replicas: 1
"""


@dataclass
class Api:
    url: str
    http: httpx.Client
    store: ManifestStore
    folder: Path
    ctx: AppContext
    port: int


def serve(
    tmp_path: Path,
    tokens: tuple[str, ...] = (),
    max_body: int = 1_048_576,
    metrics: Metrics | None = None,
    config: dict[str, Any] | None = None,
    oidc: OidcVerifier | None = None,
    threads: int = 4,
) -> Iterator[Api]:
    """`config` is llorch.yaml's content (server.maxBodyBytes is `max_body` unless it says)."""
    settings = dict(config or {})
    settings["server"] = {"maxBodyBytes": max_body, **settings.get("server", {})}
    server_config = ServerConfig.model_validate(settings)
    ctx = app_context(tmp_path, config=server_config, tokens=tokens, metrics=metrics, oidc=oidc)
    app = create_app(ctx, metrics=metrics.registry if metrics is not None else None)
    server = create_server(
        app, server_config, body_limit(server_config), host="127.0.0.1", port=0, threads=threads
    )
    assert isinstance(server, LimitedServer)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    port = server.effective_port  # type: ignore[attr-defined]
    with httpx.Client(timeout=10) as http:
        yield Api(f"http://127.0.0.1:{port}", http, ctx.store, tmp_path / "manifests", ctx, port)
    # waitress's loop owns its sockets: close them from inside the loop, not from this thread.
    server.trigger.pull_trigger(server.close)  # type: ignore[attr-defined]
    thread.join(5)
    close(ctx)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from serve(tmp_path)


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Api]:
    yield from serve(tmp_path, tokens=("s3cret",))


def test_correlation_id_is_echoed_or_generated(api: Api) -> None:
    resp = api.http.get(api.url + "/healthz", headers={"X-Correlation-Id": "req-42"})
    assert resp.status_code == 200 and resp.headers["X-Correlation-Id"] == "req-42"
    generated = api.http.get(api.url + "/v1/pools").headers["X-Correlation-Id"]
    assert len(generated) == 36


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v1/nothing-here", 404, "NOT_FOUND"),
        ("GET", "/v1/pools/absent", 404, "NOT_FOUND"),
        ("GET", "/v1/tasks/absent", 404, "NOT_FOUND"),
        ("POST", "/v1/tasks/absent/cancel", 404, "NOT_FOUND"),
        ("PUT", "/v1/pools", 405, "METHOD_NOT_ALLOWED"),
    ],
)
def test_errors_use_one_envelope(api: Api, method: str, path: str, status: int, code: str) -> None:
    resp = api.http.request(method, api.url + path, headers={"X-Correlation-Id": "c-1"})
    assert resp.status_code == status
    body = resp.json()
    assert set(body) >= {
        "code",
        "message",
        "retriable",
        "retry_after_ms",
        "policy_label",
        "engine",
        "correlation_id",
    }
    assert body["code"] == code and body["correlation_id"] == "c-1"


def test_task_for_a_pool_without_ready_replicas_is_refused_with_backoff(api: Api) -> None:
    api.http.post(api.url + "/v1/manifests", content=POOL, headers={"Content-Type": "application/yaml"})
    resp = api.http.post(api.url + "/v1/tasks", json={"pool": "demo", "prompt": "hi"})
    assert resp.status_code == 503
    assert resp.json()["code"] == "POOL_UNREADY" and resp.json()["retriable"] is True
    assert resp.headers["Retry-After"] == "1" and resp.headers["X-Backoff-Ms"] == "1000"


@pytest.mark.parametrize(
    "body",
    [
        {"prompt": "hi"},
        {"pool": "demo", "prompt": "hi", "inputs": ["hi"]},
        {"pool": "demo", "inputs": ["one", "two"]},
        {"pool": "demo", "inputs": [""]},
        {"pool": "demo", "workload": "embedding", "prompt": "hi"},
        {"pool": "demo", "prompt": "hi", "sampler_profile_version": "v9"},
        {"pool": "demo", "prompt": "hi", "ctx": 10, "max_tokens": 20},
        {"pool": "demo", "prompt": "hi", "placement": {"mode": "sometimes"}},
        {"pool": "demo", "prompt": "hi", "kv_hint": "lukewarm"},
        {"pool": "demo", "prompt": ""},
        {"pool": "demo", "prompt": "hi", "max_tokens": 0},
        {"pool": "demo", "prompt": "hi", "surprise": True},
    ],
)
def test_bad_task_bodies_are_invalid_params(api: Api, body: dict[str, object]) -> None:
    resp = api.http.post(api.url + "/v1/tasks", json=body)
    assert resp.status_code == 400 and resp.json()["code"] == "INVALID_PARAMS"


def test_apply_writes_the_file_and_dry_run_does_not(api: Api) -> None:
    headers = {"Content-Type": "application/yaml"}
    dry = api.http.post(api.url + "/v1/manifests?dryRun=true&source=pool.yaml", content=POOL, headers=headers)
    assert dry.status_code == 200
    assert dry.json()["results"][0]["action"] == "created"
    assert not list(api.folder.iterdir())
    real = api.http.post(api.url + "/v1/manifests", content=POOL, headers=headers)
    assert real.json()["results"][0]["action"] == "created"
    written = api.folder / real.json()["results"][0]["file"]
    assert written.read_text() == POOL
    listed = api.http.get(api.url + "/v1/pools").json()
    assert [item["metadata"]["name"] for item in listed["items"]] == ["demo"]
    assert api.http.delete(api.url + "/v1/pools/demo").json()["action"] == "deleted"
    assert not written.exists()


def test_invalid_apply_names_line_and_field(api: Api) -> None:
    bad = POOL.replace("replicas: 1", "replicas: -3")
    resp = api.http.post(
        api.url + "/v1/manifests?source=mine.yaml", content=bad, headers={"Content-Type": "application/yaml"}
    )
    assert resp.status_code == 400
    body = resp.json()
    assert body["code"] == "INVALID_PARAMS"
    assert body["details"][0]["file"] == "mine.yaml"
    assert body["details"][0]["line"] == 7 and body["details"][0]["field"] == "spec.replicas"
    assert not list(api.folder.iterdir())


def test_apply_needs_yaml(api: Api) -> None:
    resp = api.http.post(api.url + "/v1/manifests", json={"a": 1})
    assert resp.status_code == 415


def test_tokens_are_required_when_configured(secured: Api) -> None:
    assert secured.http.get(secured.url + "/healthz").status_code == 200, "health stays open for supervisors"
    version = secured.http.get(secured.url + "/version")
    assert version.status_code == 200, "so does the version a client compares first"
    assert version.json() == this_version().model_dump(mode="json")
    missing = secured.http.get(secured.url + "/v1/pools")
    assert missing.status_code == 401 and missing.json()["code"] == "MISSING_TOKEN"
    bad = secured.http.get(secured.url + "/v1/pools", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.json()["code"] == "BAD_TOKEN"
    ok = secured.http.get(secured.url + "/v1/pools", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    assert secured.http.get(secured.url + "/v1/pools", headers={"X-API-Key": "s3cret"}).status_code == 200


def test_bodies_over_the_limit_are_refused(tmp_path: Path) -> None:
    for api in serve(tmp_path, max_body=2048):
        resp = api.http.post(api.url + "/v1/tasks", json={"pool": "demo", "prompt": "x" * 5000})
        assert resp.status_code == 413 and resp.json()["code"] == "PAYLOAD_TOO_LARGE"


def test_sse_frames_survive_unicode_line_separators() -> None:
    raw = encode(Frame(id=3, event="token", data={"t": "a\u2028b\x85c\r\nd", "i": 3})).decode()
    assert raw.isascii() and raw.count("\n") == 4, "id, event, data, blank line: nothing else breaks a line"
    assert json.loads(raw.splitlines()[2][len("data: ") :])["t"] == "a\u2028b\x85c\r\nd"
