"""/v1/sessions/{id}: a session's turns, budgets used and left, and expiry; DELETE ends it."""

from __future__ import annotations

import time

import falcon

from llorch.api.context import AppContext


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
    app.add_route("/v1/sessions/{session_id}", SessionResource(ctx))
