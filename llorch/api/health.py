"""/healthz: the daemon answers; no token needed so supervisors can probe it."""

from __future__ import annotations

import falcon

from llorch.api.context import AppContext


class HealthzResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok", "manifestErrors": len(self._ctx.store.errors())}
