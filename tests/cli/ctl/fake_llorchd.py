"""fake_llorchd, a stand-in for llorchd on a real loopback socket, for the llorchctl tests.

It answers the documented API shapes (lists, objects, manifests, tasks, an SSE stream, the error
envelope) from canned data, and records every request so the tests can assert what the CLI sent.
The real daemon's end-to-end tests live under tests/e2e."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml
from click.testing import CliRunner, Result

from llorch.cli.ctl import main
from tests.cli.samples import BROKEN, CAPABILITIES, HEALTH, MODEL, POLICY, POOL, REPLICASETS, condition

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
    watches: int = 0
    """Watches opened so far (see `_watch`)."""

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
            if seen.query.get("watch") == "true":
                self._watch(seen)
            elif parts[:2] == ["v1", "pools"] and len(parts) == 4 and parts[3] == "logs":
                self._logs(seen, parts[2])
            elif seen.path == "/v1/queue":
                self._json(200, {"kind": "Queue", "items": QUEUE})
            elif seen.path == "/v1/events":
                self._json(200, {"kind": "EventList", "metadata": {"resourceVersion": "7"}, "items": EVENTS})
            elif seen.path == "/v1/sessions":
                self._json(201, _session(json.loads(seen.body), turns=0))
            elif parts[:2] == ["v1", "sessions"]:
                self._json(200, _session({"session_id": parts[2], "pool": "demo"}, turns=1))
            elif parts[:2] == ["v1", "pools"] and len(parts) == 4 and parts[3] in POOL_ACTIONS:
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

        def _logs(self, seen: Seen, pool: str) -> None:
            replica = seen.query.get("replica", "demo-0")
            if replica not in ("demo-0", "demo-1"):
                message = f"pool {pool!r} has no replica {replica!r}; its replicas: demo-0, demo-1"
                self._json(404, _error("NOT_FOUND", message))
                return
            body = f"--- starting {replica}\nline 1\nline 2\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Llorch-Replica", replica)
            self.send_header("X-Llorch-Replicas", "demo-0,demo-1")
            self.end_headers()
            self.wfile.write(body)

        def _watch(self, seen: Seen) -> None:
            """Each of the first two watches sends one change and breaks off (the next must resume
            after it); a third is refused, which ends the watching command."""
            fake.watches += 1
            if fake.watches > 2:
                self._json(404, _error("NOT_FOUND", "no more watching"))
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            version = int(seen.query.get("resourceVersion", "0"))
            modified = copy.deepcopy(POOL)
            modified["status"]["readyReplicas"] = fake.watches
            change = {"type": "MODIFIED", "object": modified}
            self.wfile.write(b": watching\n\n" + _frame(version + 1, "MODIFIED", change))
            self.wfile.flush()

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
            if body.get("prompt", "").startswith("over budget"):
                envelope = _error(
                    "BUDGET_EXCEEDED",
                    "session 's' cannot take another turn: it has had its 8 turns",
                    retriable=True,
                    retry_after_ms=60_000,
                    policy_label="Policy/default: sessions.maxTurns",
                )
                self._json(429, envelope, {"Retry-After": "60"})
                return
            if body.get("pool") == "busy":
                envelope = _error(
                    "POOL_UNREADY", "pool busy has no ready replica", retriable=True, retry_after_ms=2000
                )
                self._json(503, envelope, {"Retry-After": "2"})
                return
            task_id = "t-" + body["prompt"].strip()
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


def _session(body: dict[str, Any], turns: int) -> dict[str, Any]:
    return {
        "session_id": body.get("session_id") or "s-new",
        "pool": body["pool"],
        "ttl_ms_remaining": 600_000,
        "turns": turns,
        "max_turns": 8,
        "tokens_budget_remaining": 1000 - 100 * turns,
        "time_budget_remaining_ms": None,
        "cost_budget_remaining": None,
    }


QUEUE = [
    {
        "task_id": "t-1",
        "pool": "demo",
        "position": 0,
        "priority": "interactive",
        "predicted_start_ms": 95_000,
        "created": "2023-11-14T22:13:20Z",
        "age_ms": 4_000,
        "session_id": "s-1",
        "max_tokens": 64,
    }
]
EVENTS = [
    {
        "type": "Normal",
        "object": "Pool/demo",
        "reason": "Started",
        "message": "replica demo-0 started",
        "count": 2,
        "firstTimestamp": "2023-11-14T22:13:20Z",
        "lastTimestamp": "2023-11-14T22:13:20Z",
    }
]


def _second_pool() -> dict[str, Any]:
    chat = copy.deepcopy(POOL)
    chat["metadata"]["name"] = "chat"
    chat["status"]["conditions"] = [condition("Ready", "True", "ReplicasReady", at=time.time() - 330)]
    chat["status"]["replicaStatuses"] = []
    chat["errors"] = [BROKEN]
    return chat


POOL_ACTIONS = {"drain": "POST", "resume": "POST", "reload": "POST", "health": "GET"}


LISTS: dict[str, dict[str, Any]] = {
    "pools": {"kind": "PoolList", "items": [POOL, _second_pool()], "manifestErrors": [BROKEN]},
    "models": {"kind": "ModelList", "items": [MODEL], "manifestErrors": []},
    "policies": {"kind": "PolicyList", "items": [POLICY], "manifestErrors": []},
}


def serve() -> Iterator[FakeLlorchd]:
    """A fake llorchd on a loopback port, for as long as the generator runs (a fixture's body)."""
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


def ctl(fake: FakeLlorchd, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, ["-s", fake.url, *args], input=stdin)


def clean(result: Result) -> None:
    """An expected failure is an exit code and a message, never a traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
