"""`GET /v1/queue`: the tasks waiting for a slot (`?pool=` for one pool's), in the order they start."""

from __future__ import annotations

import time
from typing import Any

import falcon

from llorch.api.context import AppContext
from llorch.api.errors import RequestError
from llorch.dataplane.service import Waiting
from llorch.resources.errors import ErrorCode
from llorch.resources.status import rfc3339, stamp


def waiting_view(waiting: Waiting, now: float) -> dict[str, Any]:
    task = waiting.task
    return {
        "task_id": task.id,
        "pool": task.pool,
        "position": waiting.position,
        "priority": task.priority,
        "predicted_start_ms": waiting.predicted_start_ms,
        "created": rfc3339(stamp(task.created_at)),
        "age_ms": max(0, int((now - task.created_at) * 1000)),
        "session_id": task.session_id,
        "max_tokens": task.request.max_tokens,
    }


class QueueResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        pool = req.get_param("pool")
        if pool is not None and self._ctx.store.get(f"Pool/{pool}") is None:
            raise RequestError(ErrorCode.NOT_FOUND, f"no Pool/{pool}", param="pool")
        now = time.time()
        resp.media = {
            "kind": "Queue",
            "items": [waiting_view(w, now) for w in self._ctx.tasks.waiting(pool)],
        }


def routes(ctx: AppContext, app: falcon.App[falcon.Request, falcon.Response]) -> None:
    app.add_route("/v1/queue", QueueResource(ctx))
