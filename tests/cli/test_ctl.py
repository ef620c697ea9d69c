"""llorchctl end to end against fake_llorchd, a stand-in for llorchd on a real loopback socket.

fake_llorchd answers the documented API shapes (lists, objects, manifests, tasks, an SSE stream,
the error envelope) from canned data, and records every request so the tests can assert what the
CLI sent. The real daemon's end-to-end tests live under tests/e2e.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from click.testing import CliRunner, Result

from llorch.cli.ctl import main
from llorch.cli.ctl import pools as pools_module
from llorch.cli.render import values
from tests.cli.samples import BROKEN, CAPABILITIES, HEALTH, MODEL, POLICY, POOL, REPLICASETS

REPO = Path(__file__).resolve().parents[2]

POOL_YAML = """\
# the demo pool
apiVersion: llorch.dev/v1
kind: Pool
metadata:
  name: demo
spec:
  model: tiny-llama
  replicas: 1
  slots: 4
"""

MODEL_YAML = """\
apiVersion: llorch.dev/v1
kind: Model
metadata:
  name: tiny-llama
spec:
  source:
    builtin: tiny-llama
"""

DIFF = "--- a/pool-demo.yaml\n+++ b/pool-demo.yaml\n@@ -7,1 +7,1 @@\n-  replicas: 1\n+  replicas: 2\n"


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeLlorchd:
    url: str = ""
    requests: list[Seen] = field(default_factory=list)
    actions: dict[str, str] = field(default_factory=dict)
    """Key → the action /v1/manifests reports for it; "created" when absent."""
    token: str | None = None
    """When set, requests without `Authorization: Bearer <token>` get 401."""
    health: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Pool → the answers its health endpoint gives in turn, the last one from then on; HEALTH when absent."""
    streaming: threading.Event = field(default_factory=threading.Event)
    canceled: threading.Event = field(default_factory=threading.Event)

    def last(self, method: str, prefix: str = "/") -> Seen:
        return [r for r in self.requests if r.method == method and r.path.startswith(prefix)][-1]


def _error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    envelope = {
        "code": code,
        "message": message,
        "retriable": False,
        "retry_after_ms": None,
        "policy_label": None,
        "engine": None,
        "correlation_id": "c0ffee",
    }
    return envelope | extra


def _frame(index: int, event: str, data: dict[str, Any]) -> bytes:
    return f"id: {index}\nevent: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _handler(fake: FakeLlorchd) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_DELETE(self) -> None:
            self._serve()

        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            seen = Seen(
                self.command,
                url.path,
                {k: v[0] for k, v in parse_qs(url.query).items()},
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length),
            )
            fake.requests.append(seen)
            if fake.token and seen.headers.get("authorization") != f"Bearer {fake.token}":
                self._json(401, _error("MISSING_TOKEN", "an Authorization: Bearer token is required"))
                return
            self._route(seen)

        def _route(self, seen: Seen) -> None:
            parts = seen.path.strip("/").split("/")
            if parts[:3] == ["v1", "catalog", "models"]:
                parts = ["v1", "models", *parts[3:]]  # Model objects live under the catalog
            if parts[:2] == ["v1", "pools"] and len(parts) == 4 and parts[3] in POOL_ACTIONS:
                self._pool_action(seen, parts[2], parts[3])
            elif seen.method == "GET" and seen.path == "/v1/capabilities":
                self._json(200, CAPABILITIES)
            elif seen.method == "GET" and seen.path == "/v1/replicasets":
                self._json(200, REPLICASETS)
            elif seen.method == "GET" and parts[:1] == ["v1"] and len(parts) == 2 and parts[1] in LISTS:
                self._json(200, LISTS[parts[1]])
            elif seen.method == "GET" and len(parts) == 3 and parts[1] in LISTS and parts[2] != "events":
                self._object(parts[1], parts[2])
            elif seen.method == "DELETE" and len(parts) == 3:
                key = f"{LISTS[parts[1]]['kind'][:-4]}/{parts[2]}"
                self._json(200, {"key": key, "action": "deleted", "file": "pool-demo.yaml", "diff": DIFF})
            elif seen.path == "/v1/manifests":
                self._manifests(seen)
            elif seen.path == "/v1/tasks":
                self._submit(json.loads(seen.body))
            elif seen.path.endswith("/events"):
                self._events(parts[2])
            elif seen.path.endswith("/cancel"):
                fake.canceled.set()
                self.send_response(204)
                self.end_headers()
            else:
                self._json(404, _error("NOT_FOUND", f"no route {seen.path}"))

        def _object(self, plural: str, name: str) -> None:
            for item in LISTS[plural]["items"]:
                if item["metadata"]["name"] == name:
                    self._json(200, {**item, "events": item.get("events", [])})
                    return
            self._json(404, _error("NOT_FOUND", f"no {LISTS[plural]['kind'][:-4]}/{name}"))

        def _pool_action(self, seen: Seen, name: str, action: str) -> None:
            """drain, resume, reload (POST) and health (GET) of a pool, as llorchd answers them."""
            if seen.method != POOL_ACTIONS[action]:
                self._json(405, _error("METHOD_NOT_ALLOWED", f"{seen.method} {seen.path}"))
            elif name not in {item["metadata"]["name"] for item in LISTS["pools"]["items"]}:
                self._json(404, _error("NOT_FOUND", f"no Pool/{name}"))
            elif action == "health":
                answers = fake.health.get(name) or [{**HEALTH, "pool": name}]
                self._json(200, answers.pop(0) if len(answers) > 1 else answers[0])
            elif action == "drain":
                body = json.loads(seen.body)
                deadline = int(time.time() * 1000) + body.get("deadline_ms", 60_000)
                self._json(202, {"pool": name, "draining": True, "drain_deadline_ms": deadline})
            elif action == "resume":
                self._json(202, {"pool": name, "draining": False})
            else:
                self._json(202, {"pool": name, "reload_token": "a1b2c3d4"})

        def _manifests(self, seen: Seen) -> None:
            source = seen.query["source"]
            docs = [d for d in yaml.safe_load_all(seen.body.decode()) if d]
            if any(d["metadata"]["name"] == "rejected" for d in docs):
                detail = {"file": source, "line": 6, "field": "spec.model", "message": "no Model named nope"}
                self._json(400, _error("INVALID_PARAMS", "manifest is invalid", details=[detail]))
                return
            results = []
            for doc in docs:
                key = f"{doc['kind']}/{doc['metadata']['name']}"
                action = fake.actions.get(key, "created")
                diff = "" if action == "unchanged" else DIFF
                results.append({"key": key, "action": action, "file": source, "diff": diff})
            self._json(200, {"results": results})

        def _submit(self, body: dict[str, Any]) -> None:
            if body.get("pool") == "busy":
                envelope = _error(
                    "POOL_UNREADY", "pool busy has no ready replica", retriable=True, retry_after_ms=2000
                )
                self._json(503, envelope, {"Retry-After": "2"})
                return
            task_id = "t-" + body["prompt"]
            self._json(
                202,
                {
                    "task_id": task_id,
                    "pool": body.get("pool") or "demo",
                    "queue_position": 0,
                    "predicted_start_ms": 0,
                    "backoff_ms": 0,
                    "streams": {"sse": f"/v1/tasks/{task_id}/events"},
                },
            )

        def _events(self, task_id: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            started = {"queue_position": 0, "predicted_start_ms": 0, "queued_ms": 1, "replica": "demo-0"}
            frames = [b": stream open\n\n", _frame(0, "started", started)]
            frames += [
                _frame(i + 1, "token", {"t": t, "i": i}) for i, t in enumerate(["Hello", ",", " world"])
            ]
            frames.append(b": heartbeat\n\n")
            if task_id == "t-fail":
                frames.append(
                    _frame(4, "error", {"code": "WORKER_RESET", "message": "engine died", "retriable": True})
                )
            elif task_id != "t-hang":
                frames.append(
                    _frame(4, "metrics", {"queue_depth": 0, "tokens_out": 3, "tokens_per_second": 40.0})
                )
                end = {
                    "tokens_out": 3,
                    "tokens_in": 2,
                    "ttft_ms": 12,
                    "decode_ms": 75,
                    "finish_reason": "length",
                }
                frames.append(_frame(5, "end", end))
            for frame in frames:
                self.wfile.write(frame)
                self.wfile.flush()
            fake.streaming.set()
            if task_id == "t-hang":
                fake.canceled.wait(10)

        def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Correlation-Id", "c0ffee")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _second_pool() -> dict[str, Any]:
    chat = copy.deepcopy(POOL)
    chat["metadata"]["name"] = "chat"
    chat["status"]["conditions"] = [
        {"type": "Ready", "status": "True", "lastTransitionTime": time.time() - 330}
    ]
    chat["status"]["replicaStatuses"] = []
    chat["errors"] = [BROKEN]
    return chat


POOL_ACTIONS = {"drain": "POST", "resume": "POST", "reload": "POST", "health": "GET"}

LISTS: dict[str, dict[str, Any]] = {
    "pools": {"kind": "PoolList", "items": [POOL, _second_pool()], "manifestErrors": [BROKEN]},
    "models": {"kind": "ModelList", "items": [MODEL], "manifestErrors": []},
    "policies": {"kind": "PolicyList", "items": [POLICY], "manifestErrors": []},
}


@pytest.fixture
def fake_llorchd() -> Iterator[FakeLlorchd]:
    fake = FakeLlorchd()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    # A short poll interval: shutdown() waits for the serving loop's next look at its flag.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_port}"
    yield fake
    fake.canceled.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLORCH_URL", raising=False)
    monkeypatch.delenv("LLORCH_TOKEN", raising=False)


def ctl(fake: FakeLlorchd, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, ["-s", fake.url, *args], input=stdin)


def _clean(result: Result) -> None:
    """An expected failure is an exit code and a message, never a traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output


# -- global options, errors -------------------------------------------------------------------------


def test_token_is_sent_as_bearer(fake_llorchd: FakeLlorchd) -> None:
    fake_llorchd.token = "s3cret"
    result = ctl(fake_llorchd, "--token", "s3cret", "get", "models")
    assert result.exit_code == 0, result.output
    assert fake_llorchd.last("GET").headers["authorization"] == "Bearer s3cret"


def test_token_from_environment(fake_llorchd: FakeLlorchd, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_llorchd.token = "from-env"
    monkeypatch.setenv("LLORCH_TOKEN", "from-env")
    assert ctl(fake_llorchd, "get", "models").exit_code == 0


def test_missing_token_is_an_error_line(fake_llorchd: FakeLlorchd) -> None:
    fake_llorchd.token = "s3cret"
    result = ctl(fake_llorchd, "get", "pools")
    assert result.exit_code == 1
    assert result.stderr == "error: an Authorization: Bearer token is required (MISSING_TOKEN)\n"
    assert "authorization" not in fake_llorchd.last("GET").headers
    _clean(result)


def test_llorch_url_is_honoured(fake_llorchd: FakeLlorchd, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLORCH_URL", fake_llorchd.url.removeprefix("http://"))  # scheme optional
    result = CliRunner().invoke(main, ["get", "models"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("NAME")
    assert fake_llorchd.requests[-1].path == "/v1/catalog/models"


def test_unreachable_daemon() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = CliRunner().invoke(main, ["-s", f"http://127.0.0.1:{port}", "get", "pools"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot reach llorchd at http://127.0.0.1:{port}: ")
    _clean(result)


def test_unknown_resource_type(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "get", "pods")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: unknown resource type 'pods'")
    assert fake_llorchd.requests == []


# -- get --------------------------------------------------------------------------------------------


def test_get_pools_table_and_manifest_warning(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "get", "pools")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "MODEL", "ENGINE", "READY", "SLOTS", "STATUS", "AGE"]
    assert lines[1].split()[:6] == ["demo", "tiny-llama", "llamacpp", "1/2", "3/4", "CrashLoopBackOff"]
    # The sample's condition is 330 s old when this module loads; the suite may run long after.
    since = LISTS["pools"]["items"][1]["status"]["conditions"][0]["lastTransitionTime"]
    expected_age = values.age(since, time.time())
    assert lines[2].split() == ["chat", "tiny-llama", "llamacpp", "1/2", "3/4", "ManifestError", expected_age]
    assert result.stderr.splitlines() == [
        "warning: manifest errors (last good versions keep running):",
        "  pool-demo.yaml:12: spec.replicas: Input should be greater than or equal to 0",
    ]


@pytest.mark.parametrize("alias", ["po", "pool", "Pool", "pools"])
def test_get_aliases(fake_llorchd: FakeLlorchd, alias: str) -> None:
    assert ctl(fake_llorchd, "get", alias, "-o", "name").stdout == "pool/demo\npool/chat\n"


def test_get_wide(fake_llorchd: FakeLlorchd) -> None:
    header = ctl(fake_llorchd, "get", "pools", "-o", "wide").stdout.splitlines()[0]
    assert header.split()[-3:] == ["PORTS", "RESTARTS", "MESSAGE"]


def test_get_one_as_yaml_is_the_object_without_events(fake_llorchd: FakeLlorchd) -> None:
    for args in (["pool", "demo"], ["po/demo"]):
        result = ctl(fake_llorchd, "get", *args, "-o", "yaml")
        assert result.exit_code == 0
        assert yaml.safe_load(result.stdout) == {k: v for k, v in POOL.items() if k != "events"}
        assert fake_llorchd.requests[-1].path == "/v1/pools/demo"


def test_get_list_as_json(fake_llorchd: FakeLlorchd) -> None:
    listing = json.loads(ctl(fake_llorchd, "get", "models", "-o", "json").stdout)
    assert listing == {"apiVersion": "llorch.dev/v1", "kind": "ModelList", "items": [MODEL]}


def test_get_models_and_policies(fake_llorchd: FakeLlorchd) -> None:
    models = ctl(fake_llorchd, "get", "mo").stdout.splitlines()
    assert models[1].split()[:5] == ["tiny-llama", "builtin:tiny-llama", "gguf", "Active", "True"]
    policies = ctl(fake_llorchd, "get", "pol").stdout.splitlines()
    assert policies[1].split() == ["default", "<all>", "64/reject", "10m/8"]


def test_get_missing_object(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "get", "pool", "nope")
    assert result.exit_code == 1
    assert result.stderr == "error: no Pool/nope (NOT_FOUND)\n"
    _clean(result)


def test_get_capabilities(fake_llorchd: FakeLlorchd) -> None:
    for alias in ("capabilities", "caps", "capability"):
        result = ctl(fake_llorchd, "get", alias)
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert lines[0].split() == [
            "POOL",
            "ENGINE",
            "VERSION",
            "MODEL",
            "CTX",
            "MAX-OUT",
            "SLOTS",
            "READY",
            "QUEUE",
            "FEATURES",
        ]
        assert lines[1].split() == [
            "demo",
            "llamacpp",
            "b4521",
            "tiny-llama",
            "1024",
            "1024",
            "8",
            "1",
            "64/reject",
            "streaming,completion,seed",
        ]
        assert len(lines) == 3
        assert fake_llorchd.last("GET").path == "/v1/capabilities"


def test_get_capabilities_raw_and_named(fake_llorchd: FakeLlorchd) -> None:
    assert json.loads(ctl(fake_llorchd, "get", "caps", "-o", "json").stdout) == CAPABILITIES
    assert yaml.safe_load(ctl(fake_llorchd, "get", "caps", "-o", "yaml").stdout) == CAPABILITIES
    named = ctl(fake_llorchd, "get", "caps/chat").stdout.splitlines()
    assert [line.split()[0] for line in named] == ["POOL", "chat"]
    raw = json.loads(ctl(fake_llorchd, "get", "caps", "chat", "-o", "json").stdout)
    assert [p["pool"] for p in raw["pools"]] == ["chat"]
    assert raw["api_version"] == "v1"
    missing = ctl(fake_llorchd, "get", "caps", "nope")
    assert missing.exit_code == 1
    assert missing.stderr == "error: no pool named nope in llorchd's pools\n"
    _clean(missing)


def test_get_replicasets(fake_llorchd: FakeLlorchd) -> None:
    for alias in ("replicasets", "rs", "ReplicaSet"):
        result = ctl(fake_llorchd, "get", alias)
        assert result.exit_code == 0, result.output
        assert [line.split() for line in result.stdout.splitlines()] == [
            ["NAME", "ENGINE", "VERSION", "REPLICAS", "SLOTS", "LOAD"],
            ["demo", "llamacpp", "b4521", "2", "3/4", "25%"],
            ["chat", "llamacpp", "<none>", "0", "0/0", "0%"],
        ]
        assert fake_llorchd.last("GET").path == "/v1/replicasets"


def test_get_replicasets_wide_raw_and_names(fake_llorchd: FakeLlorchd) -> None:
    wide = ctl(fake_llorchd, "get", "rs", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "ENGINE", "VERSION", "REPLICAS", "SLOTS", "LOAD", "STATE", "GPUS"]
    assert wide[2].split() == ["demo-0", "3/4", "25%", "Ready", "0,1"]
    assert wide[2].startswith("  demo-0")
    assert wide[3].split() == ["demo-1", "0/0", "<none>", "BackOff", "cpu"]
    assert yaml.safe_load(ctl(fake_llorchd, "get", "rs", "-o", "yaml").stdout) == REPLICASETS
    assert json.loads(ctl(fake_llorchd, "get", "rs", "-o", "json").stdout) == REPLICASETS
    assert ctl(fake_llorchd, "get", "rs", "-o", "name").stdout == "replicaset/demo\nreplicaset/chat\n"
    one = ctl(fake_llorchd, "get", "rs/demo").stdout.splitlines()
    assert [line.split()[0] for line in one] == ["NAME", "demo"]


# -- describe, delete -------------------------------------------------------------------------------


def test_describe_both_spellings(fake_llorchd: FakeLlorchd) -> None:
    slash = ctl(fake_llorchd, "describe", "pool/demo")
    spaced = ctl(fake_llorchd, "describe", "pool", "demo")
    assert slash.exit_code == spaced.exit_code == 0
    assert slash.stdout == spaced.stdout
    lines = slash.stdout.splitlines()
    assert lines[0].split() == ["Name:", "demo"]
    assert "Events:" in lines
    assert any("(x5 over" in line for line in lines)


def test_describe_every_object_of_a_kind(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "describe", "pools")
    assert [line for line in result.stdout.splitlines() if line.startswith("Name:")] == [
        "Name:         demo",
        "Name:         chat",
    ]


def test_delete(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "delete", "pool/demo")
    assert (result.exit_code, result.stdout) == (0, "pool/demo deleted\n")
    assert fake_llorchd.last("DELETE").query == {"dryRun": "false"}
    dry = ctl(fake_llorchd, "delete", "pool", "demo", "--dry-run")
    assert dry.stdout == "pool/demo deleted (dry run)\n"
    assert fake_llorchd.last("DELETE").query == {"dryRun": "true"}


def test_delete_needs_a_name(fake_llorchd: FakeLlorchd) -> None:
    assert ctl(fake_llorchd, "delete", "pool").exit_code == 2


def test_describe_pool_with_runtime_status(
    fake_llorchd: FakeLlorchd, monkeypatch: pytest.MonkeyPatch
) -> None:
    drained = copy.deepcopy(POOL)
    drained["metadata"]["name"] = "drained"
    drained["status"].update(
        draining=True, drainDeadline=time.time() + 3600 + 30, readyReplicas=0, vramEstimate="~5.1 GiB"
    )
    drained["status"]["replicaStatuses"][1]["phase"] = "Pending"
    drained["status"]["replicaStatuses"][1]["reason"] = "0/2 GPUs fit: GPU0 has 1.0 GiB free"
    items = [*LISTS["pools"]["items"], drained]
    monkeypatch.setitem(LISTS, "pools", {**LISTS["pools"], "items": items})
    lines = ctl(fake_llorchd, "describe", "pool/drained").stdout.splitlines()
    assert "  VRAM estimate:        ~5.1 GiB" in lines
    assert "  Draining:             yes (deadline in 1h)" in lines
    assert "  demo-1 pending: 0/2 GPUs fit: GPU0 has 1.0 GiB free" in lines
    listing = ctl(fake_llorchd, "get", "pools").stdout.splitlines()
    assert listing[3].split()[:6] == ["drained", "tiny-llama", "llamacpp", "0/2", "3/4", "Drained"]


# -- drain, resume, reload, health ------------------------------------------------------------------


def test_drain_both_spellings_default_deadline(fake_llorchd: FakeLlorchd) -> None:
    for args in (["pool/demo"], ["pool", "demo"], ["po/demo"]):
        result = ctl(fake_llorchd, "drain", *args)
        assert (result.exit_code, result.stdout, result.stderr) == (
            0,
            "pool/demo draining (deadline 60s)\n",
            "",
        )
        sent = fake_llorchd.last("POST", "/v1/pools/demo/drain")
        assert json.loads(sent.body) == {"deadline_ms": 60_000}
        assert sent.headers["content-type"] == "application/json"
    assert [r.path for r in fake_llorchd.requests] == ["/v1/pools/demo/drain"] * 3  # no --wait: no polling


@pytest.mark.parametrize(
    ("deadline", "millis", "shown"),
    [
        ("90s", 90_000, "90s"),
        ("2m", 120_000, "120s"),
        ("500ms", 500, "0.5s"),
        ("45", 45_000, "45s"),
        ("1.5", 1_500, "1.5s"),
        ("1h", 3_600_000, "3600s"),
    ],
)
def test_drain_deadline_spellings(fake_llorchd: FakeLlorchd, deadline: str, millis: int, shown: str) -> None:
    result = ctl(fake_llorchd, "drain", "pool/demo", "--deadline", deadline)
    assert (result.exit_code, result.stdout) == (0, f"pool/demo draining (deadline {shown})\n")
    assert json.loads(fake_llorchd.last("POST").body) == {"deadline_ms": millis}


@pytest.mark.parametrize("deadline", ["soon", "-5s", "5 min", "1d", ""])
def test_drain_bad_deadline_is_a_usage_error(fake_llorchd: FakeLlorchd, deadline: str) -> None:
    result = ctl(fake_llorchd, "drain", "pool/demo", "--deadline", deadline)
    assert result.exit_code == 2
    assert "Invalid value for '--deadline'" in result.stderr
    assert fake_llorchd.requests == []


def test_drain_wait_polls_health_until_no_replica_runs(
    fake_llorchd: FakeLlorchd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pools_module, "DRAIN_POLL_SECONDS", 0.01)
    replica = HEALTH["replicas"][0]
    fake_llorchd.health["demo"] = [
        {**HEALTH, "draining": True, "replicas": [{**replica, "phase": "Terminating"}]},
        {**HEALTH, "draining": True, "replicas": [{**replica, "phase": "Terminating"}, {"id": "demo-1"}]},
        {**HEALTH, "draining": True, "replicas": [{**replica, "phase": "Stopped"}]},
        {**HEALTH, "draining": True, "replicas": []},
    ]
    result = ctl(fake_llorchd, "drain", "pool/demo", "--wait", "--deadline", "2m")
    assert result.exit_code == 0, result.output
    assert result.stdout == "pool/demo draining (deadline 120s)\npool/demo drained\n"
    assert [(r.method, r.path) for r in fake_llorchd.requests] == [
        ("POST", "/v1/pools/demo/drain"),
        ("GET", "/v1/pools/demo/health"),
        ("GET", "/v1/pools/demo/health"),
        ("GET", "/v1/pools/demo/health"),  # every replica Stopped: done, the empty list is not needed
    ]


def test_drain_wait_on_an_empty_pool_returns_at_once(
    fake_llorchd: FakeLlorchd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pools_module, "DRAIN_POLL_SECONDS", 30.0)  # a sleep would time the test out
    fake_llorchd.health["demo"] = [{**HEALTH, "replicas": []}]
    result = ctl(fake_llorchd, "drain", "pool/demo", "--wait")
    assert result.stdout.splitlines() == ["pool/demo draining (deadline 60s)", "pool/demo drained"]


def test_drain_missing_pool(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "drain", "pool/nope", "--wait")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "error: no Pool/nope (NOT_FOUND)\n"
    assert [r.path for r in fake_llorchd.requests] == ["/v1/pools/nope/drain"]
    _clean(result)


@pytest.mark.parametrize("verb", ["drain", "resume", "reload", "health"])
def test_pool_verbs_need_a_pool(fake_llorchd: FakeLlorchd, verb: str) -> None:
    nameless = ctl(fake_llorchd, verb, "pool")
    assert nameless.exit_code == 2
    assert f"llorchctl {verb} pool/demo" in nameless.stderr
    other = ctl(fake_llorchd, verb, "model/tiny-llama")
    assert (other.exit_code, other.stderr) == (1, f"error: {verb} works on pools, not models\n")
    unknown = ctl(fake_llorchd, verb, "node/gpu-box")
    assert unknown.exit_code == 1
    assert unknown.stderr.startswith("error: unknown resource type 'node'")
    assert fake_llorchd.requests == []
    _clean(other)


def test_resume(fake_llorchd: FakeLlorchd) -> None:
    for args in (["pool/demo"], ["pool", "demo"]):
        result = ctl(fake_llorchd, "resume", *args)
        assert (result.exit_code, result.stdout) == (0, "pool/demo resumed\n")
        assert fake_llorchd.last("POST").path == "/v1/pools/demo/resume"
    missing = ctl(fake_llorchd, "resume", "pool/nope")
    assert (missing.exit_code, missing.stderr) == (1, "error: no Pool/nope (NOT_FOUND)\n")


def test_reload(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "reload", "pool/demo")
    assert (result.exit_code, result.stdout) == (0, "pool/demo reload started (rolling restart)\n")
    sent = fake_llorchd.last("POST")
    assert sent.path == "/v1/pools/demo/reload"
    assert json.loads(sent.body) == {}
    several = ctl(fake_llorchd, "reload", "pool", "demo", "chat")
    assert several.stdout.splitlines() == [
        "pool/demo reload started (rolling restart)",
        "pool/chat reload started (rolling restart)",
    ]


def test_health(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "health", "pool/demo")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Pool: demo  live: yes  ready: yes  draining: no  slots: 1/4 busy  queue: 0"
    assert lines[1] == "Last error: demo-1: exited with code 1"
    assert lines[2].split() == [
        "ID",
        "PHASE",
        "GPUS",
        "PORT",
        "PID",
        "UPTIME",
        "RESTARTS",
        "SLOTS",
        "LAST-ERROR",
    ]
    assert lines[3].split() == [
        "demo-0",
        "Ready",
        "0:RTX",
        "3090",
        "41001",
        "4242",
        "2h",
        "0",
        "1/4",
        "<none>",
    ]
    assert fake_llorchd.last("GET").path == "/v1/pools/demo/health"
    assert ctl(fake_llorchd, "health", "pool", "demo").stdout == result.stdout


def test_health_raw(fake_llorchd: FakeLlorchd) -> None:
    assert json.loads(ctl(fake_llorchd, "health", "pool/demo", "-o", "json").stdout) == HEALTH
    assert yaml.safe_load(ctl(fake_llorchd, "health", "pool/demo", "-o", "yaml").stdout) == HEALTH
    both = json.loads(ctl(fake_llorchd, "health", "pool", "demo", "chat", "-o", "json").stdout)
    assert [answer["pool"] for answer in both] == ["demo", "chat"]
    assert ctl(fake_llorchd, "health", "pool/demo", "-o", "wide").exit_code == 2


def test_health_missing_pool(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "health", "pool/nope")
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", "error: no Pool/nope (NOT_FOUND)\n")
    _clean(result)


# -- apply, diff ------------------------------------------------------------------------------------


def test_apply_sends_the_files_exact_text(fake_llorchd: FakeLlorchd, tmp_path: Path) -> None:
    path = tmp_path / "pool-demo.yaml"
    path.write_text(POOL_YAML)
    fake_llorchd.actions["Pool/demo"] = "configured"
    result = ctl(fake_llorchd, "apply", "-f", str(path))
    assert (result.exit_code, result.stdout) == (0, "pool/demo configured\n")
    sent = fake_llorchd.last("POST", "/v1/manifests")
    assert sent.headers["content-type"] == "application/yaml"
    assert sent.body == POOL_YAML.encode()
    assert sent.query == {"dryRun": "false", "source": "pool-demo.yaml"}


def test_apply_dry_run(fake_llorchd: FakeLlorchd, tmp_path: Path) -> None:
    (tmp_path / "all.yaml").write_text(POOL_YAML + "---\n" + MODEL_YAML)
    fake_llorchd.actions["Model/tiny-llama"] = "unchanged"
    result = ctl(fake_llorchd, "apply", "-f", str(tmp_path / "all.yaml"), "--dry-run")
    assert result.stdout == "pool/demo created (dry run)\nmodel/tiny-llama unchanged (dry run)\n"
    assert fake_llorchd.last("POST").query["dryRun"] == "true"


def test_apply_folder_sorted_and_recursive(fake_llorchd: FakeLlorchd, tmp_path: Path) -> None:
    (tmp_path / "b-pool.yml").write_text(POOL_YAML)
    (tmp_path / "a-model.yaml").write_text(MODEL_YAML)
    (tmp_path / "notes.txt").write_text("not a manifest")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.yaml").write_text(POOL_YAML.replace("name: demo", "name: nested"))
    assert (
        ctl(fake_llorchd, "apply", "-f", str(tmp_path)).stdout
        == "model/tiny-llama created\npool/demo created\n"
    )
    sources = [r.query["source"] for r in fake_llorchd.requests]
    assert sources == ["a-model.yaml", "b-pool.yml"]
    fake_llorchd.requests.clear()
    ctl(fake_llorchd, "apply", "-R", "-f", str(tmp_path))
    assert [r.query["source"] for r in fake_llorchd.requests] == ["a-model.yaml", "b-pool.yml", "sub/c.yaml"]


def test_apply_stdin(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "apply", "-f", "-", stdin=MODEL_YAML)
    assert result.stdout == "model/tiny-llama created\n"
    assert fake_llorchd.last("POST").query["source"] == "<stdin>"
    assert fake_llorchd.last("POST").body == MODEL_YAML.encode()


def test_apply_local_errors_send_nothing(fake_llorchd: FakeLlorchd, tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(MODEL_YAML)
    (tmp_path / "pool.yaml").write_text(
        POOL_YAML.replace("replicas: 1", "replicas: -1").replace("slots: 4", "slotz: 4")
    )
    (tmp_path / "syntax.yaml").write_text("kind: Pool\nmetadata: [unclosed\n")
    result = ctl(fake_llorchd, "apply", "-f", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: invalid manifests, nothing was sent:",
        "  pool.yaml:8: spec.replicas: Input should be greater than or equal to 0",
        "  pool.yaml:9: spec.slotz: Extra inputs are not permitted",
        "  syntax.yaml:3: expected ',' or ']', but got '<stream end>'",
    ]
    assert fake_llorchd.requests == []
    _clean(result)


def test_apply_missing_field_and_unknown_kind(fake_llorchd: FakeLlorchd, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(POOL_YAML.replace("  model: tiny-llama\n", ""))
    (tmp_path / "b.yaml").write_text(MODEL_YAML.replace("kind: Model", "kind: Pod"))
    result = ctl(fake_llorchd, "apply", "-f", str(tmp_path))
    lines = result.stderr.splitlines()
    assert lines[1] == "  a.yaml:6: spec.model: Field required"
    assert lines[2].startswith("  b.yaml:1: unknown kind 'Pod'")


def test_apply_server_rejection_names_the_file(fake_llorchd: FakeLlorchd, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(POOL_YAML.replace("name: demo", "name: rejected"))
    (tmp_path / "b.yaml").write_text(MODEL_YAML)
    result = ctl(fake_llorchd, "apply", "-f", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: a.yaml: manifest is invalid (INVALID_PARAMS)",
        "  a.yaml:6: spec.model: no Model named nope",
    ]
    assert result.stdout == "model/tiny-llama created\n"  # the other file still applied


def test_apply_missing_path(fake_llorchd: FakeLlorchd, tmp_path: Path) -> None:
    result = ctl(fake_llorchd, "apply", "-f", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 1
    assert "does not exist" in result.stderr


def test_apply_no_objects(fake_llorchd: FakeLlorchd, tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    result = ctl(fake_llorchd, "apply", "-f", str(tmp_path))
    assert (result.exit_code, result.stderr) == (1, "error: no objects passed to apply\n")


def test_diff_exit_codes(fake_llorchd: FakeLlorchd, tmp_path: Path) -> None:
    path = tmp_path / "pool-demo.yaml"
    path.write_text(POOL_YAML)
    fake_llorchd.actions["Pool/demo"] = "unchanged"
    same = ctl(fake_llorchd, "diff", "-f", str(path))
    assert (same.exit_code, same.stdout) == (0, "")
    assert fake_llorchd.last("POST").query["dryRun"] == "true"
    fake_llorchd.actions["Pool/demo"] = "configured"
    changed = ctl(fake_llorchd, "diff", "-f", str(path))
    assert (changed.exit_code, changed.stdout) == (1, DIFF)
    path.write_text(POOL_YAML.replace("name: demo", "name: rejected"))
    broken = ctl(fake_llorchd, "diff", "-f", str(path))
    assert broken.exit_code == 2
    assert broken.stderr.startswith(
        "error: manifest is invalid (INVALID_PARAMS)\n  pool-demo.yaml:6: spec.model"
    )


# -- run --------------------------------------------------------------------------------------------


def test_run_streams_tokens_and_summary(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(
        fake_llorchd, "run", "demo", "hi", "--seed", "1", "--max-tokens", "3", "--temperature", "0.5"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "Hello, world"
    assert result.stderr == (
        "\n--- 3 tokens, TTFT 12 ms, 40.0 tokens/s (decode 75 ms), finish: length, replica demo-0\n"
    )
    submitted = json.loads(fake_llorchd.last("POST", "/v1/tasks").body)
    assert submitted == {
        "pool": "demo",
        "prompt": "hi",
        "max_tokens": 3,
        "priority": "interactive",
        "seed": 1,
        "temperature": 0.5,
    }
    assert fake_llorchd.last("GET").headers["accept"] == "text/event-stream"


def test_run_by_model_quietly(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "run", "--model", "tiny-llama", "-", "--no-stream-summary", stdin="hi")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "Hello, world", "")
    submitted = json.loads(fake_llorchd.last("POST", "/v1/tasks").body)
    assert (submitted["model_ref"], submitted["prompt"], "pool" in submitted) == ("tiny-llama", "hi", False)


def test_run_error_frame(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "run", "demo", "fail")
    assert result.exit_code == 1
    assert result.stdout == "Hello, world"
    assert result.stderr == "\nerror: engine died (WORKER_RESET)\n"
    _clean(result)


def test_run_refused_says_when_to_retry(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "run", "busy", "hi")
    assert result.exit_code == 1
    assert result.stderr == "error: pool busy has no ready replica (POOL_UNREADY); retry after 2s\n"
    _clean(result)


def test_ctrl_c_cancels_the_task(fake_llorchd: FakeLlorchd) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLORCH_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from llorch.cli.ctl import main; main()",
            "-s",
            fake_llorchd.url,
            "run",
            "demo",
            "hang",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.read(len("Hello, world")) == b"Hello, world"  # it is inside the stream now
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert fake_llorchd.canceled.is_set()
    assert fake_llorchd.last("POST", "/v1/tasks/t-hang/cancel")
    assert b"canceled task t-hang" in stderr
    assert b"Traceback" not in stderr
