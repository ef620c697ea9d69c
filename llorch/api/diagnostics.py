"""GET /v1/diagnostics: what `llorchctl doctor` checks on the server's side, and who the caller is
as the server sees them (their scopes), read fresh on every call."""

from __future__ import annotations

import falcon

from llorch.api.auth.scopes import ANONYMOUS, Principal
from llorch.api.context import AppContext
from llorch.resources.config import SCOPES
from llorch.resources.diagnostics import Caller


class DiagnosticsResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        principal: Principal = req.context.get("principal") or ANONYMOUS
        # An admin key holds every scope (Principal.holds); say so rather than list "admin" alone.
        held = SCOPES if "admin" in principal.scopes else [s for s in SCOPES if s in principal.scopes]
        caller = Caller(identity=principal.identity, scopes=list(held))
        resp.media = self._ctx.diagnostics(caller).model_dump(mode="json")
