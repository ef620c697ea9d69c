"""/v1/pools, /v1/models, /v1/policies: desired state from the manifests joined with status."""

from __future__ import annotations

import dataclasses
from typing import Any

import falcon

from llorch.api import sse, watch
from llorch.api.context import AppContext
from llorch.resources import api_path, key_of
from llorch.resources.status import PoolStatus, Status
from llorch.store.manifests import Entry


def object_view(ctx: AppContext, entry: Entry) -> dict[str, Any]:
    key = key_of(entry.obj)
    name = entry.obj.metadata.name
    view = entry.obj.to_wire()
    view["source"] = {"file": entry.file, "line": entry.line}
    status: Status | None = None
    if entry.obj.kind == "Pool":
        status = pool_status(ctx, name)
    elif entry.obj.kind == "Model":
        status = ctx.db.model_status(name)
    view["status"] = status.to_wire() if status is not None else {}
    view["errors"] = [dataclasses.asdict(e) for e in ctx.store.errors_for(key)]
    return view


def slots_busy(ctx: AppContext, pool: str) -> dict[str, int]:
    """Busy slots per replica, live from the registry: they change per task, not per reconcile."""
    return {r.id: r.busy for r in ctx.registry.replicas(pool)}


def pool_status(ctx: AppContext, pool: str) -> PoolStatus:
    """The pool's status as its controller last wrote it, with slot use as it is now."""
    status = ctx.db.pool_status(pool) or PoolStatus()
    busy = slots_busy(ctx, pool)
    replicas = [r.model_copy(update={"slots_busy": busy.get(r.id, 0)}) for r in status.replica_statuses]
    return status.model_copy(update={"replica_statuses": replicas, "slots_busy": sum(busy.values())})


def manifest_errors(ctx: AppContext) -> list[dict[str, Any]]:
    return [dataclasses.asdict(e) for e in ctx.store.errors()]


class ObjectListResource:
    def __init__(self, ctx: AppContext, kind: str) -> None:
        self._ctx = ctx
        self._kind = kind

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The list; with `?watch=true`, its changes as they come (llorch.api.watch)."""
        if req.get_param_as_bool("watch") or False:
            since = watch.resume_version(req)
            frames = watch.objects(
                self._ctx, self._kind, self._view, self._keys, since, sse.client_gone(req.env)
            )
            watch.start(req, resp, frames)
            return
        version = self._ctx.db.changes.version
        resp.media = {
            "kind": f"{self._kind}List",
            # What a watch continues from: `?watch=true&resourceVersion=` misses nothing after it.
            "metadata": {"resourceVersion": str(version)},
            "items": [object_view(self._ctx, e) for e in self._ctx.store.entries(self._kind)],
            "manifestErrors": manifest_errors(self._ctx),
        }

    def _view(self, key: str) -> dict[str, Any] | None:
        entry = self._ctx.store.get(key)
        return object_view(self._ctx, entry) if entry is not None else None

    def _keys(self) -> list[str]:
        return [key_of(e.obj) for e in self._ctx.store.entries(self._kind)]


class EventsResource:
    """`GET /v1/events` (`?object=Pool/demo`, repeatable; `?limit=`), and its watch."""

    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        keys = req.get_param_as_list("object") or None
        limit = req.get_param_as_int("limit", min_value=1, max_value=1000, default=100)
        if req.get_param_as_bool("watch") or False:
            frames = watch.events(self._ctx, keys, limit, watch.resume_version(req), sse.client_gone(req.env))
            watch.start(req, resp, frames)
            return
        resp.media = {
            "kind": "EventList",
            "metadata": {"resourceVersion": str(self._ctx.db.changes.version)},
            "items": [e.to_wire() for e in self._ctx.db.all_events(keys=keys, limit=limit)],
        }


class ObjectResource:
    def __init__(self, ctx: AppContext, kind: str) -> None:
        self._ctx = ctx
        self._kind = kind

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        key = f"{self._kind}/{name}"
        entry = self._ctx.store.get(key)
        if entry is None:
            raise falcon.HTTPNotFound(description=_missing(self._ctx, key))
        view = object_view(self._ctx, entry)
        view["events"] = [e.to_wire() for e in self._ctx.db.events(key)]
        resp.media = view

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        dry_run = req.get_param_as_bool("dryRun") or False
        result = self._ctx.store.delete(f"{self._kind}/{name}", dry_run=dry_run)
        if not dry_run:
            self._ctx.changed({result.key})
            self._ctx.audit.record("object.delete", result.key, reason=f"{result.action} from {result.file}")
        resp.media = dataclasses.asdict(result)


def _missing(ctx: AppContext, key: str) -> str:
    errors = ctx.store.errors_for(key)
    message = f"no {key}"
    if errors:
        message += "; its manifest has errors: " + "; ".join(str(e) for e in errors)
    return message


def routes(ctx: AppContext, app: falcon.App[falcon.Request, falcon.Response]) -> None:
    """Pools and Policies; Models are served by the catalog (api/catalog.py)."""
    for kind in ("Pool", "Policy"):
        app.add_route(api_path(kind), ObjectListResource(ctx, kind))
        app.add_route(f"{api_path(kind)}/{{name}}", ObjectResource(ctx, kind))
    app.add_route("/v1/events", EventsResource(ctx))
