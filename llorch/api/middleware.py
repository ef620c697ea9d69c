"""Applied to every request: correlation ids, body limits, who the caller is and whether the
route's scope is theirs, and the one log line per request."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

import falcon

from llorch.api.auth.keys import KeyRing, identity
from llorch.api.auth.oidc import OidcVerifier, TokenRejected, looks_like_jwt
from llorch.api.auth.scopes import ANONYMOUS, Principal, required_scope
from llorch.api.errors import RequestError
from llorch.api.ui import is_ui_path
from llorch.dataplane.logcontext import correlation_id
from llorch.dataplane.redact import redact_builtin
from llorch.resources.errors import ErrorCode
from llorch.runtime.jwks import KeySetUnavailable
from llorch.store.audit import DENY, SYSTEM, Actor, AuditLog, acting

log = logging.getLogger("llorch.api")


# Probes from a supervisor (systemd, a load balancer) must work without a token, and so must the
# version a client checks first (`llorchctl version`, `doctor`), as Kubernetes' /version does.
OPEN_PATHS = frozenset({"/healthz", "/version"})
_CHALLENGE = 'Bearer realm="llorch"'
_UI_VISITOR = Principal("anonymous", frozenset())


class CorrelationId:
    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        value = req.get_header("X-Correlation-Id") or str(uuid.uuid4())
        req.context["correlation_id"] = value
        correlation_id.set(value)
        acting.set(Actor("anonymous", value))
        resp.set_header("X-Correlation-Id", value)


class BodyLimit:
    """Refuses a body over its limit before it is read. `per_path` maps a path to a limit and the
    setting that sets it, for endpoints whose bodies are larger by design (artifacts)."""

    def __init__(self, max_bytes: int, per_path: Mapping[str, tuple[int, str]] | None = None) -> None:
        self._default = (max_bytes, "server.maxBodyBytes")
        self._per_path = dict(per_path or {})

    def limit(self, path: str) -> tuple[int, str]:
        return self._per_path.get(path, self._default)

    @property
    def largest(self) -> int:
        return max(limit for limit, _ in [self._default, *self._per_path.values()])

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        limit, setting = self.limit(req.path)
        if req.content_length is not None and req.content_length > limit:
            raise RequestError(
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"body of {req.content_length} bytes exceeds {limit} (set by {setting})",
            )


class Auth:
    """Who the caller is (`Authorization: Bearer <t>` or `X-API-Key: <t>`: a key, a legacy token,
    or an OIDC JWT), then, once the route is known, whether it holds the scope the route needs.

    With nothing configured every request passes as `anonymous`: llorchd refuses to start that
    way on anything but a loopback address. Failed credentials and missing scopes are audited.
    """

    def __init__(self, keys: KeyRing, oidc: OidcVerifier | None, audit: AuditLog) -> None:
        self._keys = keys
        self._oidc = oidc
        self._audit = audit

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if is_ui_path(req.path) and (self._keys or self._oidc is not None):
            # The web UI's files hold no data (the page sends the token to the API itself):
            # anyone may load them, and holds no scope by it.
            self._act(req, _UI_VISITOR)
            return
        if req.path in OPEN_PATHS or (not self._keys and self._oidc is None):
            self._act(req, ANONYMOUS)
            return
        presented = _presented_token(req)
        if presented is None:
            raise RequestError(
                ErrorCode.MISSING_TOKEN,
                "this server needs a token: Authorization: Bearer <token>",
                headers={"WWW-Authenticate": _CHALLENGE},
            )
        principal = self._keys.find(presented)
        if principal is None:
            principal = self._verify(req, presented)
        self._act(req, principal)

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: Any
    ) -> None:
        principal = req.context.get("principal") or ANONYMOUS
        if resource is None or req.path in OPEN_PATHS:
            return
        template = req.uri_template or req.path
        scope = required_scope(req.method, template)
        if principal.holds(scope):
            return
        message = f"{principal.identity} lacks the {scope} scope, which {req.method} {template} needs"
        self._audit.record("auth.scope", f"{req.method} {template}", decision=DENY, reason=message)
        raise RequestError(
            ErrorCode.INSUFFICIENT_SCOPE,
            message,
            headers={"WWW-Authenticate": f'{_CHALLENGE}, error="insufficient_scope", scope="{scope}"'},
        )

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any, ok: bool) -> None:
        # The query may hold a secret (`?api_key=`): the log gets it redacted.
        line = redact_builtin(req.path + (f"?{req.query_string}" if req.query_string else ""))
        log.info("%s %s -> %s identity=%s", req.method, line, resp.status, acting.get().identity)
        # The thread goes back to waitress's pool: what it does next is no longer this caller's.
        acting.set(SYSTEM)

    def _verify(self, req: falcon.Request, presented: str) -> Principal:
        reason = "the token is not a known key"
        if self._oidc is not None and looks_like_jwt(presented):
            try:
                return self._oidc.verify(presented)
            except (TokenRejected, KeySetUnavailable) as exc:
                reason = f"the JWT is not accepted: {exc}"
        acting.set(Actor(identity(presented), req.context.get("correlation_id")))
        self._audit.record("auth.token", f"{req.method} {req.path}", decision=DENY, reason=reason)
        log.warning("bad token presented identity=%s: %s", identity(presented), reason)
        raise RequestError(
            ErrorCode.BAD_TOKEN,
            "the token is not accepted",
            headers={"WWW-Authenticate": f'{_CHALLENGE}, error="invalid_token"'},
        )

    @staticmethod
    def _act(req: falcon.Request, principal: Principal) -> None:
        req.context["principal"] = principal
        req.context["identity"] = principal.identity
        acting.set(Actor(principal.identity, req.context.get("correlation_id")))


def _presented_token(req: falcon.Request) -> str | None:
    header = req.get_header("Authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return req.get_header("X-API-Key")
