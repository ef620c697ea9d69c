"""Keys with scopes, legacy admin tokens and OIDC JWTs, over llorchd's real HTTP server on loopback;
and the attack list: missing, wrong, partial, doubled and mis-schemed credentials and path tricks,
none of which gets through."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from llorch.api.auth.oidc import OidcVerifier
from llorch.resources.config import Oidc
from llorch.runtime import jwks
from llorch.runtime.jwks import KeySetSource
from tests.api.test_app import POOL, Api, serve
from tests.upstream import upstream

READER, AGENT, OPS, LEGACY = (
    "llorch_reader-key-0001",
    "llorch_agent-key-0002",
    "llorch_ops-key-0003",
    "legacy-admin-1",
)
ISSUER, AUDIENCE = "https://id.example.test", "llorch"


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def keys_config() -> list[dict[str, Any]]:
    return [
        {"name": "reader", "sha256": sha(READER), "scopes": ["read"]},
        {"name": "agent", "sha256": sha(AGENT), "scopes": ["read", "submit"]},
        {"name": "ops", "sha256": sha(OPS), "scopes": ["admin"]},
    ]


@dataclass
class Provider:
    """An OIDC provider of the test's own: RSA keys generated here, a JWKS document on disk."""

    key: rsa.RSAPrivateKey
    kid: str
    jwks_path: Path

    def token(self, *, key: rsa.RSAPrivateKey | None = None, kid: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": now + 300, "iat": now, **claims}
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid})

    def settings(self, **extra: Any) -> Oidc:
        return Oidc.model_validate(
            {"issuer": ISSUER, "audience": AUDIENCE, "jwksFile": str(self.jwks_path), **extra}
        )


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks_of(*pairs: tuple[rsa.RSAPrivateKey, str]) -> bytes:
    keys = []
    for key, kid in pairs:
        jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
    return json.dumps({"keys": keys}).encode()


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Provider:
    key = new_key()
    path = tmp_path_factory.mktemp("oidc") / "jwks.json"
    path.write_bytes(jwks_of((key, "k1")))
    return Provider(key, "k1", path)


@pytest.fixture
def secured(tmp_path: Path, provider: Provider) -> Iterator[Api]:
    oidc = OidcVerifier(provider.settings(), KeySetSource(str(provider.jwks_path)))
    config = {"auth": {"keys": keys_config()}}
    for api in serve(tmp_path, tokens=(LEGACY,), config=config, oidc=oidc):
        applied = api.http.post(
            api.url + "/v1/manifests",
            content=POOL,
            headers={"Content-Type": "application/yaml", **bearer(OPS)},
        )
        assert applied.status_code == 200, applied.text
        yield api


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_each_scope_opens_its_routes_and_names_what_is_missing(secured: Api) -> None:
    def status(method: str, path: str, token: str, **kw: Any) -> int:
        return secured.http.request(method, secured.url + path, headers=bearer(token), **kw).status_code

    assert status("GET", "/v1/pools", READER) == 200
    refused = secured.http.post(
        secured.url + "/v1/tasks", json={"pool": "demo", "prompt": "hi"}, headers=bearer(READER)
    )
    assert refused.status_code == 403 and refused.json()["code"] == "INSUFFICIENT_SCOPE"
    assert "token:reader lacks the submit scope" in refused.json()["message"]
    assert (
        refused.headers["WWW-Authenticate"]
        == 'Bearer realm="llorch", error="insufficient_scope", scope="submit"'
    )
    # submit: admitted as far as the data plane goes (no replica: 503), never refused for scope.
    assert status("POST", "/v1/tasks", AGENT, json={"pool": "demo", "prompt": "hi"}) == 503
    assert status("POST", "/v1/artifacts", AGENT, json={"kind": "plan", "content": "x"}) == 201
    drain = secured.http.post(secured.url + "/v1/pools/demo/drain", json={}, headers=bearer(AGENT))
    assert drain.status_code == 403 and "lacks the admin scope" in drain.json()["message"]
    assert status("DELETE", "/v1/pools/demo?dryRun=true", AGENT) == 403
    assert status("GET", "/v1/audit", AGENT) == 403
    assert status("POST", "/v1/pools/demo/drain", OPS, json={}) == 202
    assert status("POST", "/v1/pools/demo/resume", LEGACY) == 202, "a legacy token is an admin key"
    assert status("POST", "/v1/tasks", OPS, json={"pool": "demo", "prompt": "hi"}) == 503, (
        "admin holds submit"
    )
    entries = secured.http.get(secured.url + "/v1/audit?decision=deny", headers=bearer(OPS)).json()["items"]
    denied = {(e["actor"], e["action"]) for e in entries}
    assert ("token:reader", "auth.scope") in denied and ("token:agent", "auth.scope") in denied
    actions = [
        e["action"] for e in secured.http.get(secured.url + "/v1/audit", headers=bearer(OPS)).json()["items"]
    ]
    assert {"pool.drain", "pool.resume", "manifest.apply", "artifact.put"} <= set(actions)


def test_missing_and_bad_credentials_carry_a_challenge(secured: Api) -> None:
    missing = secured.http.get(secured.url + "/v1/pools")
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == 'Bearer realm="llorch"'
    bad = secured.http.get(secured.url + "/v1/pools", headers=bearer("nope-nope"))
    assert bad.status_code == 401 and bad.json()["code"] == "BAD_TOKEN"
    assert 'error="invalid_token"' in bad.headers["WWW-Authenticate"]
    entry = secured.ctx.audit.entries(limit=1)[0]
    assert (entry.actor, entry.action, entry.decision) == (
        "token:" + sha("nope-nope")[:6],
        "auth.token",
        "deny",
    )
    assert "nope-nope" not in json.dumps(entry.to_wire())


def test_oidc_tokens_carry_their_scopes(secured: Api, provider: Provider) -> None:
    token = provider.token(scope="read submit")
    assert secured.http.get(secured.url + "/v1/pools", headers=bearer(token)).status_code == 200
    submit = secured.http.post(
        secured.url + "/v1/tasks", json={"pool": "demo", "prompt": "x"}, headers=bearer(token)
    )
    assert submit.status_code == 503
    admin = secured.http.post(secured.url + "/v1/pools/demo/drain", json={}, headers=bearer(token))
    assert admin.status_code == 403 and "oidc:alice lacks the admin scope" in admin.json()["message"]
    listed = provider.token(scope=["admin", "unrelated"])
    assert secured.http.get(secured.url + "/v1/audit", headers=bearer(listed)).status_code == 200
    unscoped = provider.token()
    assert secured.http.get(secured.url + "/v1/pools", headers=bearer(unscoped)).status_code == 403


def test_expiry_has_a_small_leeway(secured: Api, provider: Provider) -> None:
    now = int(time.time())
    just = provider.token(scope="read", exp=now - 5)
    assert secured.http.get(secured.url + "/v1/pools", headers=bearer(just)).status_code == 200
    late = provider.token(scope="read", exp=now - 120)
    assert secured.http.get(secured.url + "/v1/pools", headers=bearer(late)).status_code == 401
    reason = secured.ctx.audit.entries(limit=1)[0].reason
    assert "ExpiredSignatureError" in reason and late not in reason


def forged_tokens(provider: Provider) -> dict[str, str]:
    other = new_key()
    now = int(time.time())
    head = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT", "kid": "k1"}).encode()).rstrip(
        b"="
    )
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory", "exp": now + 300, "scope": "admin"}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    public_pem = provider.key.public_key().public_bytes(
        encoding=serialization.Encoding.PEM, format=serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs256 = jwt.api_jws.PyJWS(algorithms=["HS256"]).encode(
        json.dumps(claims).encode(), base64.b64encode(public_pem), algorithm="HS256", headers={"kid": "k1"}
    )
    return {
        "alg none": f"{head.decode()}.{payload.decode()}.",
        "alg none, empty signature segment": f"{head.decode()}.{payload.decode()}.e30",
        "another key": provider.token(key=other, scope="admin"),
        "another key, unknown kid": provider.token(key=other, kid="k9", scope="admin"),
        "wrong audience": provider.token(aud="someone-else", scope="admin"),
        "wrong issuer": provider.token(iss="https://evil.test", scope="admin"),
        "expired": provider.token(exp=now - 3600, scope="admin"),
        "no exp": provider.token(exp=None, scope="admin"),
        "not yet valid": provider.token(nbf=now + 3600, scope="admin"),
        "HS256 keyed with the public key": hs256,
        "signature cut": provider.token(scope="admin")[:-6],
        "payload swapped": ".".join(
            [
                provider.token(scope="read").split(".")[0],
                payload.decode(),
                provider.token(scope="read").split(".")[2],
            ]
        ),
    }


def credentials(provider: Provider) -> dict[str, dict[str, str] | list[tuple[str, str]]]:
    """Credentials none of which may pass; header lists send a header twice."""
    variants: dict[str, dict[str, str] | list[tuple[str, str]]] = {
        "none": {},
        "empty bearer": {"Authorization": "Bearer"},
        "bearer and a space": {"Authorization": "Bearer "},
        "wrong": bearer("wrong"),
        "partial key": bearer(OPS[:-1]),
        "key plus a byte": bearer(OPS + "x"),
        "key upper-cased": bearer(OPS.upper()),
        "key doubled": {"Authorization": f"Bearer {OPS} {OPS}"},
        "two Authorization headers": [("Authorization", f"Bearer {OPS}"), ("Authorization", f"Bearer {OPS}")],
        "basic with the key": {"Authorization": "Basic " + base64.b64encode(f"ops:{OPS}".encode()).decode()},
        "token scheme": {"Authorization": f"Token {OPS}"},
        "scheme glued on": {"Authorization": f"Bearer{OPS}"},
        "tab for space": {"Authorization": f"Bearer\t{OPS}"},
        "the key's sha256": bearer(sha(OPS)),
        "the key's name": bearer("ops"),
        "token:name identity": bearer("token:ops"),
        "null": bearer("null"),
        "X-API-Key wrong": {"X-API-Key": "wrong"},
        "X-API-Key partial": {"X-API-Key": OPS[:10]},
        "X-API-Key empty": {"X-API-Key": ""},
        "legacy token partial": bearer(LEGACY[:-1]),
        "legacy token's sha256": bearer(sha(LEGACY)),
    }
    for name, token in forged_tokens(provider).items():
        variants[f"jwt {name}"] = bearer(token)
    return variants


ROUTES = [
    ("GET", "/v1/pools", None),
    ("GET", "/v1/audit", None),
    ("GET", "/metrics", None),
    ("POST", "/v1/tasks", {"pool": "demo", "prompt": "hi"}),
    ("POST", "/v1/pools/demo/drain", {"deadline_ms": 1}),
    ("DELETE", "/v1/pools/demo", None),
    ("POST", "/v1/tools/http", {"policy": "x", "url": "http://127.0.0.1/"}),
    ("POST", "/v1/chat/completions", {"model": "demo", "messages": [{"role": "user", "content": "x"}]}),
]

# Paths that name an admin route in some other spelling, sent with a read-only key or none.
PATH_TRICKS = [
    "//v1/pools/demo/drain",
    "/v1/pools/demo/drain/",
    "/v1/./pools/demo/drain",
    "/v1/pools/demo/../demo/drain",
    "/v1/%70ools/demo/drain",
    "/V1/pools/demo/drain",
    "/healthz/../v1/pools/demo/drain",
    "/healthz/..%2fv1/pools/demo/drain",
    "/healthz%2f..%2fv1/audit",
    "/healthz?/v1/pools/demo/drain",
    "/v1/audit%00",
    "/v1/audit;x=1",
    "/v1/audit/",
    "/v1/AUDIT",
    "/v1/pools/demo/drain#x",
    "http://127.0.0.1/v1/pools/demo/drain",
]


def send(api: Api, method: str, path: str, headers: dict[str, str] | list[tuple[str, str]], body: Any) -> int:
    """One request on its own connection, sent as written (http.client changes no path): its
    status, where /healthz's own answer (open by design: `/healthz?/v1/...`) counts as 404."""
    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        pairs = headers.items() if isinstance(headers, dict) else headers
        data = json.dumps(body).encode() if body is not None else b""
        for name, value in [*pairs, ("Content-Type", "application/json"), ("Content-Length", str(len(data)))]:
            connection.putheader(name, value)
        connection.endheaders(data)
        response = connection.getresponse()
        answer = response.read()
        is_healthz = response.status == 200 and json.loads(answer).get("status") == "ok"
        return 404 if is_healthz else response.status
    finally:
        connection.close()


def test_attack_requests_get_nothing_through(secured: Api, provider: Provider) -> None:
    attempts: list[tuple[str, int]] = []
    for name, headers in credentials(provider).items():
        for method, path, body in ROUTES:
            attempts.append((f"{name}: {method} {path}", send(secured, method, path, headers, body)))
    for path in PATH_TRICKS:
        for name, headers in (("none", {}), ("reader", bearer(READER)), ("agent", bearer(AGENT))):
            for method in ("POST", "GET"):
                attempts.append(
                    (f"{name}: {method} {path}", send(secured, method, path, headers, {"deadline_ms": 1}))
                )
    for host in ("localhost", "evil.test", "127.0.0.1:1", ""):
        for method, path, body in ROUTES:
            headers = [("Host", host), ("X-Forwarded-For", "127.0.0.1"), ("X-Real-IP", "127.0.0.1")]
            attempts.append((f"host {host!r}: {method} {path}", send(secured, method, path, headers, body)))
    assert len(attempts) >= 309
    through = [(what, status) for what, status in attempts if status < 400 or status >= 500]
    assert through == [], f"{len(through)} of {len(attempts)} got through"
    # Nothing any of them asked for happened.
    assert not secured.ctx.db.pool_runtime("demo").draining
    assert secured.ctx.store.get("Pool/demo") is not None
    assert secured.ctx.tasks.queue_depth("demo") == 0


def test_jwks_from_a_url_on_loopback_and_key_rotation(
    tmp_path: Path, provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jwks, "REFETCH_SECONDS", 0.0)
    rotated = new_key()
    with upstream() as idp:
        idp.files["/jwks"] = jwks_of((provider.key, provider.kid))
        settings = Oidc.model_validate({"issuer": ISSUER, "audience": AUDIENCE, "jwksUrl": idp.url("/jwks")})
        verifier = OidcVerifier(settings, KeySetSource(idp.url("/jwks")))
        assert verifier.verify(provider.token(scope="read")).identity == "oidc:alice"
        idp.files["/jwks"] = jwks_of((provider.key, provider.kid), (rotated, "k2"))
        principal = verifier.verify(provider.token(key=rotated, kid="k2", scope="submit"))
        assert principal.holds("submit") and not principal.holds("admin")
        assert [path for _, path, _ in idp.seen] == ["/jwks", "/jwks"], "fetched again only for the new kid"


def test_a_jwks_url_must_be_https_off_loopback() -> None:
    with pytest.raises(ValueError, match="https"):
        Oidc.model_validate(
            {"issuer": ISSUER, "audience": AUDIENCE, "jwksUrl": "http://id.example.test/jwks"}
        )
    with pytest.raises(ValueError, match="exactly one"):
        Oidc.model_validate({"issuer": ISSUER, "audience": AUDIENCE})
