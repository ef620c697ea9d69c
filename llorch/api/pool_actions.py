"""/v1/pools/{name}/drain, /resume, /reload, /health: what a person asks of a pool at run time.

Drain and reload state lives in sqlite, never in the manifest, and survives a restart.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import falcon
from pydantic import BaseModel, ConfigDict, Field

from llorch.api.context import AppContext
from llorch.api.errors import RequestError
from llorch.api.objects import pool_status
from llorch.resources import Pool
from llorch.resources.errors import ErrorCode
from llorch.resources.status import condition
from llorch.store.db import PoolRuntime

DEFAULT_DRAIN_DEADLINE_MS = 60_000


class DrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    deadline_ms: int = Field(default=DEFAULT_DRAIN_DEADLINE_MS, ge=0, le=86_400_000)


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    new_model_ref: str | None = None


def pool_entry(ctx: AppContext, name: str) -> Pool:
    entry = ctx.store.get(f"Pool/{name}")
    if entry is None or not isinstance(entry.obj, Pool):
        raise falcon.HTTPNotFound(description=f"no Pool/{name}")
    return entry.obj


def read_body(req: falcon.Request) -> dict[str, Any]:
    """An optional JSON object body ({} when there is none)."""
    if not req.content_length:
        return {}
    media = req.get_media()
    if not isinstance(media, dict):
        raise RequestError(ErrorCode.INVALID_PARAMS, "the body must be a JSON object")
    return media


def start_drain(ctx: AppContext, name: str, deadline: float) -> None:
    """The pool takes no more work: its queued tasks end now, running ones at `deadline` (unix
    seconds), then its replicas stop (the pool controller does that part)."""
    runtime = ctx.db.pool_runtime(name)
    ctx.db.save_pool_runtime(
        PoolRuntime(name, draining=True, drain_deadline=deadline, reload_token=runtime.reload_token)
    )
    for replica in ctx.registry.replicas(name):
        ctx.registry.set_draining(replica.id)
    ctx.tasks.drain_queued(name)


class DrainResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        pool_entry(self._ctx, name)
        body = DrainRequest.model_validate(read_body(req))
        deadline = time.time() + body.deadline_ms / 1000
        start_drain(self._ctx, name, deadline)
        self._ctx.db.record_event(
            f"Pool/{name}", "Normal", "Draining", f"drain requested, deadline {body.deadline_ms} ms"
        )
        self._ctx.changed({f"Pool/{name}"})
        self._ctx.audit.record("pool.drain", f"Pool/{name}", reason=f"deadline {body.deadline_ms} ms")
        resp.status = falcon.HTTP_202
        resp.media = {"pool": name, "draining": True, "drain_deadline_ms": int(deadline * 1000)}


class ResumeResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        pool_entry(self._ctx, name)
        runtime = self._ctx.db.pool_runtime(name)
        self._ctx.db.save_pool_runtime(PoolRuntime(name, reload_token=runtime.reload_token))
        if runtime.draining:
            self._ctx.db.record_event(
                f"Pool/{name}", "Normal", "Resumed", "drain lifted; replicas start again"
            )
        self._ctx.changed({f"Pool/{name}"})
        self._ctx.audit.record(
            "pool.resume", f"Pool/{name}", reason="was draining" if runtime.draining else ""
        )
        resp.status = falcon.HTTP_202
        resp.media = {"pool": name, "draining": False}


class ReloadResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        pool = pool_entry(self._ctx, name)
        body = ReloadRequest.model_validate(read_body(req))
        if body.new_model_ref is not None and body.new_model_ref != pool.spec.model:
            # The manifest is the user's: switching models is an edit of spec.model, which rolls
            # the pool the same way; llorch never rewrites the file behind their back.
            raise RequestError(
                ErrorCode.INVALID_PARAMS,
                f"to serve {body.new_model_ref!r}, set spec.model in the Pool's manifest "
                "(it rolls the same way)",
            )
        runtime = self._ctx.db.pool_runtime(name)
        token = uuid.uuid4().hex[:8]
        self._ctx.db.save_pool_runtime(
            PoolRuntime(
                name, draining=runtime.draining, drain_deadline=runtime.drain_deadline, reload_token=token
            )
        )
        self._ctx.db.record_event(f"Pool/{name}", "Normal", "Reload", f"rolling restart requested ({token})")
        self._ctx.changed({f"Pool/{name}"})
        self._ctx.audit.record("pool.reload", f"Pool/{name}", reason=f"rolling restart {token}")
        resp.status = falcon.HTTP_202
        resp.media = {"pool": name, "reload_token": token}


class PoolHealthResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        pool_entry(self._ctx, name)
        status = pool_status(self._ctx, name)
        now = time.time()
        replicas = [
            {
                "id": r.id,
                "phase": r.phase,
                "gpus": [{"index": g.index, "name": g.name} for g in r.gpus],
                "port": r.port,
                "pid": r.pid,
                "uptime_s": round(now - r.ready_at.timestamp(), 1) if r.ready_at is not None else None,
                "restarts": r.restarts,
                "last_error": r.last_error,
                "slots_busy": r.slots_busy or 0,
                "slots_total": r.slots,
            }
            for r in status.replica_statuses
        ]
        errors = [r.last_error for r in status.replica_statuses if r.last_error]
        ready = condition(status.conditions, "Ready")
        resp.media = {
            "pool": name,
            "blocked_by": status.blocked_by,
            "message": ready.message if ready is not None and not ready.is_true else None,
            "live": any(r.pid is not None or r.phase == "Ready" for r in status.replica_statuses),
            "ready": status.ready_replicas > 0,
            "draining": status.draining,
            "last_error": errors[-1] if errors else None,
            "metrics": {
                "slots_busy": status.slots_busy or 0,
                "slots_total": status.slots_total,
                "queue_depth": self._ctx.tasks.queue_depth(name),
            },
            "replicas": replicas,
        }


def routes(ctx: AppContext, app: falcon.App[falcon.Request, falcon.Response]) -> None:
    app.add_route("/v1/pools/{name}/drain", DrainResource(ctx))
    app.add_route("/v1/pools/{name}/resume", ResumeResource(ctx))
    app.add_route("/v1/pools/{name}/reload", ReloadResource(ctx))
    app.add_route("/v1/pools/{name}/health", PoolHealthResource(ctx))
