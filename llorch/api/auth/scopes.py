"""The scope each route needs, and what a caller holds.

`read`: every GET; `submit`: tasks, sessions, the OpenAI and Anthropic endpoints, artifacts and
tools; `admin`: everything else (manifests, deletes, drain/resume/reload, the catalog, purge) and
the audit trail. An admin key holds every scope. Routes are matched on Falcon's URI template,
never on the raw path, so `//v1/../tasks` style tricks change nothing; a route nobody listed
needs admin.
"""

from __future__ import annotations

from dataclasses import dataclass

from llorch.resources.config import Scope

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_ADMIN_READS = ("/v1/audit",)
_SUBMIT_ROUTES = (
    "/v1/tasks",
    "/v1/sessions",
    "/v1/artifacts",
    "/v1/tools",
    "/v1/completions",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/rerank",
    "/v1/responses",
    "/v1/messages",
    "/openai",
)


def _under(template: str, prefixes: tuple[str, ...]) -> bool:
    return any(template == p or template.startswith(p + "/") for p in prefixes)


def required_scope(method: str, template: str) -> Scope:
    if method.upper() in _READ_METHODS:
        return "admin" if _under(template, _ADMIN_READS) else "read"
    return "submit" if _under(template, _SUBMIT_ROUTES) else "admin"


@dataclass(frozen=True)
class Principal:
    identity: str
    """`token:<name>`, `token:<first 6 of sha256>`, `oidc:<sub>`, or `anonymous`."""
    scopes: frozenset[Scope]

    def holds(self, scope: Scope) -> bool:
        return scope in self.scopes or "admin" in self.scopes


ANONYMOUS = Principal("anonymous", frozenset({"admin"}))
"""A loopback daemon with no credential configured: everything is open, as before scopes."""
