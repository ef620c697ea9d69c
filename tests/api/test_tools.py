"""POST /v1/tools/http, the HTTP tool guardrail, against its attack list.

Allowed calls reach a real HTTP server on loopback. Every other destination goes through
`LoopbackOnly`, which fails the test if a connection is attempted, and names through `FakeDns`,
which fails it if a name is looked up that should not be: each refusal happens before any
connection, and no test sends traffic anywhere but loopback.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import falcon.testing
import pytest

from llorch.api.app import create_app
from llorch.runtime.outbound.fetch import OutboundClient
from llorch.store.audit import AuditLog
from tests.api.appctx import app_context, close
from tests.e2e.conftest import free_port
from tests.upstream import FakeDns, LoopbackOnly, Upstream, upstream

PUBLIC = "93.184.215.14"
OTHER_PUBLIC = "93.184.215.15"


def manifests(port: int, other: int, closed: int) -> str:
    return f"""\
apiVersion: llorch.dev/v1
kind: Pool
metadata: {{name: agents, labels: {{tier: agents}}}}
spec: {{model: tiny-llama}}
---
apiVersion: llorch.dev/v1
kind: Pool
metadata: {{name: lonely}}
spec: {{model: tiny-llama}}
---
apiVersion: llorch.dev/v1
kind: Policy
metadata: {{name: tools}}
spec:
  selector: {{matchLabels: {{tier: agents}}}}
  httpTools:
    allow:
      - name: local
        host: 127.0.0.1
        ports: [{port}, {other}, {closed}]
        schemes: [http]
        methods: [GET, POST]
      - {{name: partner, host: "*.partner.test", schemes: [https]}}
      - {{name: web, host: "*", schemes: [http], methods: [GET]}}
    deny:
      - {{name: no-admin, host: admin.partner.test}}
    redact: ["k-[0-9]{{6,}}"]
    redactHeaders: [x-internal-key]
    maxResponseBytes: 1000
    timeoutSeconds: 1.5
---
apiVersion: llorch.dev/v1
kind: Policy
metadata: {{name: open-web}}
spec:
  selector: {{matchLabels: {{tier: web}}}}
  httpTools:
    allow:
      - {{name: web, host: "*", schemes: [http, https], ports: [80, 443, {port}]}}
    deny:
      - {{name: corp, host: "*.corp.test"}}
      - {{name: blocked-ip, host: "{PUBLIC}"}}
"""


@dataclass
class Tools:
    client: falcon.testing.TestClient
    audit: AuditLog
    dns: FakeDns
    up: Upstream
    other: Upstream
    closed: int
    """An allowed loopback port nothing listens on."""

    def call(
        self, url: str, *, policy: str = "tools", method: str = "GET", **extra: Any
    ) -> falcon.testing.Result:
        body = {"policy": policy, "method": method, "url": url, **extra}
        if "pool" in extra:
            del body["policy"]
        return self.client.simulate_post("/v1/tools/http", json=body, headers={"X-Correlation-Id": "cid-7"})


@pytest.fixture
def tools(tmp_path: Path) -> Iterator[Tools]:
    dns = FakeDns(
        {
            "localhost": ["127.0.0.1"],
            "rebind.partner.test": ["127.0.0.1"],
            "mixed.partner.test": [OTHER_PUBLIC, "10.1.2.3"],
            "meta.example": ["169.254.169.254"],
            "alias.example": [PUBLIC],
        }
    )
    closed = free_port()
    with upstream() as up, upstream() as other:
        ports = (up.port, other.port, closed)
        outbound = OutboundClient(resolver=dns, transport=lambda: LoopbackOnly(*ports))
        ctx = app_context(tmp_path, outbound=outbound)
        client = falcon.testing.TestClient(create_app(ctx))
        applied = client.simulate_post(
            "/v1/manifests", body=manifests(*ports), headers={"Content-Type": "application/yaml"}
        )
        assert applied.status_code == 200, applied.text
        yield Tools(client, ctx.audit, dns, up, other, closed)
        close(ctx)


# (policy, method, url, what the refusal's message says), every one refused with 403 POLICY_DENIED
# before any connection. `P` is the allowed loopback server's port.
ATTACKS = [
    ("tools", "GET", "http://P/redirect?to=http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("tools", "GET", "http://P/redirect?to=https://admin.partner.test/", "deny rule no-admin"),
    ("tools", "GET", "http://P/redirect?to=http://127.0.0.1:22/", "no allow rule"),
    ("tools", "GET", "http://P/redirect?to=gopher://127.0.0.1:70/_x", "scheme 'gopher'"),
    ("tools", "GET", "http://P/redirect?status=307&to=http://rebind.partner.test/", "resolves to 127.0.0.1"),
    ("open-web", "GET", "http://[::1]:PORT/echo", "::1, a loopback address"),
    ("open-web", "GET", "http://127.1:PORT/echo", "127.0.0.1, a loopback address"),
    ("open-web", "GET", "http://0x7f000001:PORT/echo", "127.0.0.1, a loopback address"),
    ("open-web", "GET", "http://2130706433:PORT/echo", "127.0.0.1, a loopback address"),
    ("open-web", "GET", "http://0177.0.0.1:PORT/echo", "127.0.0.1, a loopback address"),
    ("open-web", "GET", "http://127.0.0.1.:PORT/echo", "127.0.0.1, a loopback address"),
    ("open-web", "GET", "http://[::ffff:127.0.0.1]:PORT/echo", "a loopback address"),
    ("open-web", "GET", "http://localhost:PORT/echo", "localhost resolves to 127.0.0.1, a loopback"),
    ("open-web", "GET", "http://LOCALHOST.:PORT/echo", "localhost resolves to 127.0.0.1, a loopback"),
    ("open-web", "GET", "http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("open-web", "GET", "http://meta.example/", "meta.example resolves to 169.254.169.254"),
    ("open-web", "GET", "http://[fd00:ec2::254]/", "cloud metadata"),
    ("open-web", "GET", "http://10.0.0.5/", "private"),
    ("open-web", "GET", "http://172.16.0.1/", "private"),
    ("open-web", "GET", "http://192.168.1.1/", "private"),
    ("open-web", "GET", "http://[fc00::1]/", "private"),
    ("open-web", "GET", "http://[fe80::1]/", "link-local"),
    ("open-web", "GET", "http://0.0.0.0:PORT/", "non-public"),
    ("open-web", "GET", "http://100.64.0.1/", "non-public"),
    ("open-web", "GET", "http://mixed.partner.test/", "10.1.2.3, a private address"),
    ("open-web", "GET", "http://alias.example/", "denied by deny rule blocked-ip"),
    ("open-web", "GET", f"http://{OTHER_PUBLIC}:8080/", "no allow rule"),
    ("open-web", "GET", "https://build.corp.test/", "deny rule corp"),
    ("open-web", "GET", "http://allowed.example@10.0.0.1/", "private"),
    ("open-web", "GET", "file:///etc/passwd", "scheme 'file'"),
    ("open-web", "GET", "gopher://127.0.0.1:70/_GET", "scheme 'gopher'"),
    ("tools", "GET", "http://127.0.0.1@admin.partner.test/", "deny rule no-admin"),
    ("tools", "GET", "https://ADMIN.Partner.Test./", "deny rule no-admin"),
    ("tools", "GET", "https://rebind.partner.test/", "rebind.partner.test resolves to 127.0.0.1"),
    ("tools", "GET", "http://127.0.0.1:22/", "no allow rule"),
    ("tools", "DELETE", "http://P/echo", "no allow rule"),
    ("tools", "GET", "https://P/echo", "no allow rule"),
    ("tools", "GET", "https://evilpartner.test/", "no allow rule"),
    ("tools", "GET", "https://partner.test/", "no allow rule"),
]


def _url(template: str, tools: Tools) -> str:
    port = str(tools.up.port)
    for short, real in (
        ("http://P/", f"http://127.0.0.1:{port}/"),
        ("https://P/", f"https://127.0.0.1:{port}/"),
    ):
        template = template.replace(short, real)
    return template.replace("PORT", port)


@pytest.mark.parametrize(("policy", "method", "template", "says"), ATTACKS)
def test_attacks_are_refused_before_any_connection(
    tools: Tools, policy: str, method: str, template: str, says: str
) -> None:
    url = _url(template, tools)
    resp = tools.call(url, policy=policy, method=method)
    assert resp.status_code == 403, resp.text
    body = resp.json
    assert body["code"] == "POLICY_DENIED" and says in body["message"], body
    assert body["policy_label"].startswith(f"Policy/{policy}: "), body
    assert body["correlation_id"] == "cid-7"
    # Only a redirect's first hop, to the allowed loopback server, ever reached anything.
    assert len(tools.up.seen) == (1 if "/redirect" in url else 0)
    entry = tools.audit.entries(limit=1)[0]
    assert (entry.action, entry.decision, entry.correlation_id) == ("tool.http", "deny", "cid-7")
    assert "?" not in entry.target


@pytest.mark.parametrize(
    "url",
    [
        "http://%31%32%37.0.0.1/",
        "http://127.0.0.1:PORT\\@evil.test/",
        "http://127.0.0.1:PORT/ echo",
        "http://[fe80::1%25eth0]/",
        "http:///nohost",
        "http://user:pw@127.0.0.1:PORT/echo",
        "http://1.2.3.4.5/",
        "http://127.0.0.1:99999/",
    ],
)
def test_urls_that_cannot_be_read_one_way_only_are_invalid(tools: Tools, url: str) -> None:
    resp = tools.call(_url(url, tools))
    assert resp.status_code == 400 and resp.json["code"] == "INVALID_PARAMS", resp.text
    assert not tools.up.seen


def test_labels_name_the_rule_or_the_default_deny(tools: Tools) -> None:
    denied = tools.call("https://admin.partner.test/x").json
    assert denied["policy_label"] == "Policy/tools: deny no-admin"
    default = tools.call("http://127.0.0.1:22/").json
    assert default["policy_label"] == "Policy/tools: default deny"
    lonely = tools.call("http://127.0.0.1:22/", pool="lonely").json
    assert lonely["code"] == "POLICY_DENIED"
    assert lonely["policy_label"] == "no Policy selects Pool/lonely: default deny"
    absent = tools.call("http://127.0.0.1/", policy="nope")
    assert absent.status_code == 404 and absent.json["code"] == "NOT_FOUND"


def test_an_allowed_call_answers_redacted(tools: Tools) -> None:
    secret_header = "Bearer upstream-secret-4242"
    resp = tools.call(
        tools.up.url("/echo?api_key=querysecret999&q=1"),
        pool="agents",
        method="POST",
        headers={"Authorization": secret_header, "X-Trace": "t-1"},
        body="hello",
        task_id="t-9",
    )
    assert resp.status_code == 200, resp.text
    answer = resp.json
    assert answer["status"] == 200 and answer["truncated"] is False
    assert '"body": "hello"' in answer["body"] and '"X-Trace": "t-1"' in answer["body"]
    for secret in ("upstream-secret-4242", "querysecret999"):
        assert secret not in resp.text
    # What the upstream got: the secrets themselves, and the name it was called by in Host.
    method, path, headers = tools.up.seen[0]
    assert (method, path) == ("POST", "/echo?api_key=querysecret999&q=1")
    assert headers["Authorization"] == secret_header and headers["Host"] == f"127.0.0.1:{tools.up.port}"
    entry = tools.audit.entries(limit=1)[0]
    assert entry.decision == "allow" and entry.reason == "Policy/tools: allow local -> 200 (task t-9)"
    assert entry.target == f"POST http://127.0.0.1:{tools.up.port}/echo"


def test_numeric_forms_reach_the_address_they_mean(tools: Tools) -> None:
    for host in ("127.1", "2130706433", "0x7f.1", "127.0.0.1."):
        resp = tools.call(f"http://{host}:{tools.up.port}/echo")
        assert resp.status_code == 200 and resp.json["status"] == 200, (host, resp.text)
    assert {headers["Host"] for _, _, headers in tools.up.seen} == {f"127.0.0.1:{tools.up.port}"}


def test_the_policy_redacts_its_patterns_and_headers_and_the_usual_secrets(tools: Tools) -> None:
    answer = tools.call(tools.up.url("/secrets")).json
    assert answer["headers"]["set-cookie"] == "[REDACTED]"
    assert answer["headers"]["x-internal-key"] == "[REDACTED]"
    assert answer["headers"]["x-plain"] == "fine"
    assert "tok_abcdef123456" not in answer["body"] and "abc.def.ghi12345" not in answer["body"]


def test_the_size_cap_cuts_the_body(tools: Tools) -> None:
    answer = tools.call(tools.up.url("/big?n=50000")).json
    assert answer["truncated"] is True and len(answer["body"]) == 1000


def test_redirects_are_followed_and_credentials_stay_with_their_origin(tools: Tools) -> None:
    to_other = tools.other.url("/echo")
    resp = tools.call(
        tools.up.url(f"/redirect?to={to_other}"), headers={"Authorization": "Bearer cross-origin-1234"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json["url"] == to_other
    assert "Authorization" not in tools.other.seen[0][2], "a credential never follows a redirect elsewhere"
    same = tools.call(
        tools.up.url("/redirect?to=/echo"), headers={"Authorization": "Bearer same-origin-1234"}
    )
    assert same.json["status"] == 200 and tools.up.seen[-1][2]["Authorization"] == "Bearer same-origin-1234"


@pytest.mark.parametrize("path", ["/drip?every=0.2", "/stall?seconds=5"])
def test_a_slow_upstream_ends_at_the_timeout(tools: Tools, path: str) -> None:
    started = time.monotonic()
    resp = tools.call(tools.up.url(path))
    took = time.monotonic() - started
    assert resp.status_code == 504 and resp.json["code"] == "UPSTREAM_TIMEOUT", resp.text
    assert took < 3.2, f"timeoutSeconds is 1.5; the call took {took:.1f} s"
    entry = tools.audit.entries(limit=1)[0]
    assert entry.decision == "allow" and "UPSTREAM_TIMEOUT" in entry.reason


def test_an_unreachable_upstream_is_502(tools: Tools) -> None:
    resp = tools.call(f"http://127.0.0.1:{tools.closed}/echo")
    assert resp.status_code == 502 and resp.json["code"] == "UPSTREAM_UNREACHABLE", resp.text
    assert resp.json["retriable"] is True


def test_bad_bodies_are_invalid(tools: Tools) -> None:
    for body in (
        {"url": "http://127.0.0.1/"},
        {"policy": "tools", "pool": "agents", "url": "http://127.0.0.1/"},
        {"policy": "tools", "url": "http://127.0.0.1/", "method": "BREW"},
        {"policy": "tools", "url": "http://127.0.0.1/", "headers": {"X-Bad": "a\r\nInjected: 1"}},
        {"policy": "tools", "url": ""},
    ):
        resp = tools.client.simulate_post("/v1/tools/http", json=body)
        assert resp.status_code == 400 and resp.json["code"] == "INVALID_PARAMS", (body, resp.text)
