"""/v1/cache: the weights cache, entry by entry, and pruning it on request (`llorchctl cache`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import falcon
from pydantic import BaseModel, ConfigDict, Field

from llorch.api.context import AppContext
from llorch.api.pool_actions import read_body
from llorch.controllers.cache_references import cache_references
from llorch.store.cache import CacheEntry


class PruneRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dry_run: bool = Field(default=False, description="Say what would go; remove nothing.")


def _entry(entry: CacheEntry) -> dict[str, Any]:
    return dataclasses.asdict(entry) | {"models": list(entry.models)}


class CacheResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        cache = self._ctx.cache
        entries = cache.entries(cache_references(self._ctx.store, self._ctx.db, cache))
        settings = self._ctx.config.cache
        resp.media = {
            "root": str(cache.root),
            "total_bytes": sum(entry.size_bytes for entry in entries),
            "max_bytes": settings.max_bytes,
            "retired_grace_seconds": settings.retired_grace_seconds,
            "entries": [_entry(entry) for entry in entries],
        }


class CachePruneResource:
    """Every removable entry now, least recently used first (the periodic prune only goes while
    the cache is over cache.maxBytes)."""

    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = PruneRequest.model_validate(read_body(req))
        cache = self._ctx.cache
        result = cache.prune(
            cache_references(self._ctx.store, self._ctx.db, cache), everything=True, dry_run=body.dry_run
        )
        resp.media = {
            "dry_run": body.dry_run,
            "removed": [_entry(entry) for entry in result.removed],
            "freed_bytes": result.freed_bytes,
            "total_bytes": result.total_bytes,
        }


def routes(ctx: AppContext, app: falcon.App[falcon.Request, falcon.Response]) -> None:
    app.add_route("/v1/cache", CacheResource(ctx))
    app.add_route("/v1/cache/prune", CachePruneResource(ctx))
