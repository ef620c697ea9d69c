"""Correlation ids and bearer-token auth, applied to every request."""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from collections.abc import Mapping
from typing import Any

import falcon

from llorch.api.errors import RequestError
from llorch.dataplane.logcontext import correlation_id
from llorch.resources.errors import ErrorCode

log = logging.getLogger("llorch.api")


# Probes from a supervisor (systemd, a load balancer) must work without a token.
OPEN_PATHS = frozenset({"/healthz"})


class CorrelationId:
    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        value = req.get_header("X-Correlation-Id") or str(uuid.uuid4())
        req.context["correlation_id"] = value
        correlation_id.set(value)
        resp.set_header("X-Correlation-Id", value)


class BodyLimit:
    """Refuses a body over its limit before it is read. `per_path` maps a path to a limit and the
    setting that sets it, for endpoints whose bodies are larger by design (artifacts)."""

    def __init__(self, max_bytes: int, per_path: Mapping[str, tuple[int, str]] | None = None) -> None:
        self._default = (max_bytes, "server.maxBodyBytes")
        self._per_path = dict(per_path or {})

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        limit, setting = self._per_path.get(req.path, self._default)
        if req.content_length is not None and req.content_length > limit:
            raise RequestError(
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"body of {req.content_length} bytes exceeds {limit} (set by {setting})",
            )


def identity(token: str) -> str:
    """How a token appears in logs: never the token, only enough of its hash to tell them apart."""
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:6]


class BearerAuth:
    """`Authorization: Bearer <t>` or `X-API-Key: <t>`, compared in constant time.

    With no token configured every request passes: the daemon refuses to start that way on
    anything but a loopback address.
    """

    def __init__(self, tokens: tuple[str, ...]) -> None:
        self._tokens = tuple(t.encode() for t in tokens)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not self._tokens or req.path in OPEN_PATHS:
            req.context["identity"] = "anonymous"
            return
        presented = _presented_token(req)
        if presented is None:
            raise RequestError(
                ErrorCode.MISSING_TOKEN, "this server needs a token: Authorization: Bearer <token>"
            )
        if not any(hmac.compare_digest(presented.encode(), token) for token in self._tokens):
            log.warning("bad token presented identity=%s", identity(presented))
            raise RequestError(ErrorCode.BAD_TOKEN, "the token is not accepted")
        req.context["identity"] = identity(presented)

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any, ok: bool) -> None:
        log.info(
            "%s %s -> %s identity=%s",
            req.method,
            req.relative_uri,
            resp.status,
            req.context.get("identity", "-"),
        )


def _presented_token(req: falcon.Request) -> str | None:
    header = req.get_header("Authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return req.get_header("X-API-Key")
