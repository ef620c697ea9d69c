"""POST /v1/pools/{name}/purge: drain the pool, then free the disk its models' weights take.

The pool drains as `drain` does (and stays drained until `resume`). Once its replicas have
stopped, llorchd's housekeeping removes the cached weights of each Model in `purge_models`
(with `delete_cache_dirs`, their whole cache folders: partial downloads and Hub metadata too).
Only downloaded weights are ever removed, never a file a `path:` source names. An Active Model
is fetched again at its next reconcile: purge a Retired one to free the disk for good.
"""

from __future__ import annotations

import time

import falcon
from pydantic import BaseModel, ConfigDict, Field

from llorch.api.context import AppContext
from llorch.api.errors import RequestError
from llorch.api.pool_actions import pool_entry, read_body, start_drain
from llorch.resources import Model, Pool
from llorch.resources.errors import ErrorCode
from llorch.resources.meta import DnsLabel
from llorch.runtime.downloads import download_for


class PurgeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    drain_first: bool = Field(
        default=True,
        description="Running tasks get supervision.drainGraceSeconds to finish; false ends them at once.",
    )
    purge_models: list[DnsLabel] = Field(
        default_factory=list, description="Models whose downloaded weights leave the cache."
    )
    delete_cache_dirs: bool = Field(
        default=False, description="Remove the models' whole cache folders, partial downloads included."
    )
    force: bool = Field(
        default=False, description="Purge weights that another pool, not draining, still serves."
    )


class PurgeResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        pool_entry(self._ctx, name)
        body = PurgeRequest.model_validate(read_body(req))
        for model in body.purge_models:
            self._check(name, model, force=body.force)
        grace = self._ctx.config.supervision.drain_grace_seconds if body.drain_first else 0.0
        deadline = time.time() + grace
        start_drain(self._ctx, name, deadline)
        request = body.model_dump()
        self._ctx.db.save_purge(name, request, time.time())
        models = ", ".join(body.purge_models) or "no models"
        self._ctx.db.record_event(
            f"Pool/{name}", "Normal", "Purging", f"draining, then removing the cached weights of {models}"
        )
        self._ctx.audit.record(
            "pool.purge", f"Pool/{name}", reason=f"drain, then remove the weights of {models}"
        )
        self._ctx.changed({f"Pool/{name}"})
        resp.status = falcon.HTTP_202
        resp.media = {"pool": name, "draining": True, "drain_deadline_ms": int(deadline * 1000), **request}

    def _check(self, pool: str, model: str, *, force: bool) -> None:
        entry = self._ctx.store.get(f"Model/{model}")
        if entry is None or not isinstance(entry.obj, Model):
            raise RequestError(
                ErrorCode.INVALID_PARAMS, f"purge_models: no Model {model!r}", param="purge_models"
            )
        download = download_for(entry.obj.spec.source, self._ctx.cache.root, entry.obj.spec.digest)
        if download is None:
            raise RequestError(
                ErrorCode.INVALID_PARAMS,
                f"purge_models: Model {model!r} is not downloaded into the cache (its file is yours)",
                param="purge_models",
            )
        if force:
            return
        others = [
            e.obj.metadata.name
            for e in self._ctx.store.entries("Pool")
            if isinstance(e.obj, Pool)
            and e.obj.spec.model == model
            and e.obj.metadata.name != pool
            and not self._ctx.db.pool_runtime(e.obj.metadata.name).draining
        ]
        if others:
            raise RequestError(
                ErrorCode.INVALID_PARAMS,
                f"purge_models: Model {model!r} is still served by pool(s) {', '.join(others)}; "
                "drain them first, or set force",
                param="purge_models",
            )


def routes(ctx: AppContext, app: falcon.App[falcon.Request, falcon.Response]) -> None:
    app.add_route("/v1/pools/{name}/purge", PurgeResource(ctx))
