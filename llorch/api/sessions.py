"""/v1/sessions/{id}: a session's turns, budgets used and left, and expiry; DELETE ends it.
POST /v1/sessions opens one before its first turn, so a client can show its budgets up front."""

from __future__ import annotations

import time
import uuid

import falcon
from pydantic import BaseModel, ConfigDict, Field

from llorch.api.context import AppContext
from llorch.api.errors import RequestError
from llorch.api.tasks import NAME, read_json
from llorch.dataplane.policies import policy_for
from llorch.resources import Pool
from llorch.resources.errors import ErrorCode


class SessionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pool: str = Field(
        min_length=1, description="The pool whose Policy sets the session's TTL, turns and budgets."
    )
    session_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=NAME)


class SessionsResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """201 with the new session; 200 with it when the id names a live one already."""
        body = SessionRequest.model_validate(read_json(req))
        entry = self._ctx.store.get(f"Pool/{body.pool}")
        if entry is None or not isinstance(entry.obj, Pool):
            raise RequestError(ErrorCode.NOT_FOUND, f"no Pool/{body.pool}", param="pool")
        session_id = body.session_id or str(uuid.uuid4())
        now = time.time()
        sessions = self._ctx.tasks.sessions
        existed = sessions.get(session_id, now) is not None
        session = sessions.open(
            session_id, body.pool, policy_for(self._ctx.store, entry.obj), req.context.get("correlation_id")
        )
        resp.status = falcon.HTTP_200 if existed else falcon.HTTP_201
        resp.location = f"/v1/sessions/{session_id}"
        resp.media = session.view(now)


class SessionResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response, session_id: str) -> None:
        now = time.time()
        session = self._ctx.tasks.sessions.get(session_id, now)
        if session is None:
            raise falcon.HTTPNotFound(
                description=f"no session {session_id!r} (never opened, ended or expired)"
            )
        resp.media = session.view(now)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, session_id: str) -> None:
        self._ctx.tasks.sessions.delete(session_id)
        resp.status = falcon.HTTP_204


def routes(ctx: AppContext, app: falcon.App[falcon.Request, falcon.Response]) -> None:
    app.add_route("/v1/sessions", SessionsResource(ctx))
    app.add_route("/v1/sessions/{session_id}", SessionResource(ctx))
