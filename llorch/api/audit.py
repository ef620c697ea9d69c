"""GET /v1/audit: the audit trail, newest first (admin scope)."""

from __future__ import annotations

from datetime import datetime

import falcon
from pydantic import TypeAdapter, ValidationError

from llorch.api.context import AppContext
from llorch.api.errors import RequestError
from llorch.resources.errors import ErrorCode
from llorch.store.audit import ALLOW, DENY

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


_RFC3339 = TypeAdapter(datetime)


def _since(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        moment = _RFC3339.validate_python(text)
    except ValidationError as exc:
        raise RequestError(
            ErrorCode.INVALID_PARAMS, f"since must be an RFC 3339 time, got {text!r}", param="since"
        ) from exc
    if moment.tzinfo is None:
        raise RequestError(ErrorCode.INVALID_PARAMS, "since needs a time zone (Z or +hh:mm)", param="since")
    return moment.timestamp()


class AuditResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        decision = req.get_param("decision")
        if decision not in (None, ALLOW, DENY):
            raise RequestError(
                ErrorCode.INVALID_PARAMS, f"decision is {ALLOW} or {DENY}, not {decision!r}", param="decision"
            )
        limit = req.get_param_as_int("limit", min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)
        entries = self._ctx.audit.entries(
            since=_since(req.get_param("since")),
            decision=ALLOW if decision == ALLOW else DENY if decision == DENY else None,
            actor=req.get_param("actor"),
            limit=limit,
        )
        resp.media = {"items": [entry.to_wire() for entry in entries]}


def routes(ctx: AppContext, app: falcon.App[falcon.Request, falcon.Response]) -> None:
    app.add_route("/v1/audit", AuditResource(ctx))
