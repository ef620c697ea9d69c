"""`GET /v1/pools/{name}/logs`: a replica's engine output (its stdout and stderr), as `kubectl logs`
shows a container's.

`?replica=` picks the replica (the pool's first when absent: the answer's `X-Llorch-Replica` says
which, `X-Llorch-Replicas` lists them all), `?tail=N` starts at its last N lines, and
`?follow=true` keeps the answer open and sends what the engine writes next, across its restarts
(they append to the same file), until the client leaves or the replica leaves the pool.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import falcon

from llorch.api import sse
from llorch.api.context import AppContext
from llorch.api.errors import RequestError
from llorch.resources import Pool
from llorch.resources.errors import ErrorCode
from llorch.resources.status import ReplicaStatus
from llorch.runtime import logfile

# How often a follow looks for new output (and whether the client is still there).
POLL_SECONDS = sse.CLIENT_CHECK_SECONDS
# How often a follow looks whether its replica still belongs to the pool.
MEMBERSHIP_SECONDS = 2.0


def _logged_replicas(ctx: AppContext, pool: str) -> list[ReplicaStatus]:
    status = ctx.db.pool_status(pool)
    replicas = status.replica_statuses if status is not None else []
    return sorted((r for r in replicas if r.log_path), key=lambda r: (r.index, r.id))


def _choose(ctx: AppContext, name: str, wanted: str | None) -> tuple[ReplicaStatus, list[ReplicaStatus]]:
    entry = ctx.store.get(f"Pool/{name}")
    if entry is None or not isinstance(entry.obj, Pool):
        raise RequestError(ErrorCode.NOT_FOUND, f"no Pool/{name}")
    replicas = _logged_replicas(ctx, name)
    if not replicas:
        if entry.obj.spec.endpoint is not None:
            message = f"pool {name!r} uses an engine at its endpoint that llorch does not run: no logs here"
        else:
            message = f"pool {name!r} has no replica with a log yet (`llorchctl describe pool/{name}`)"
        raise RequestError(ErrorCode.NOT_FOUND, message)
    if wanted is None:
        return replicas[0], replicas
    for replica in replicas:
        if replica.id == wanted:
            return replica, replicas
    raise RequestError(
        ErrorCode.NOT_FOUND,
        f"pool {name!r} has no replica {wanted!r}; its replicas: {', '.join(r.id for r in replicas)}",
        param="replica",
    )


def follow(
    path: Path,
    offset: int,
    gone: sse.ClientGone,
    member: Callable[[], bool],
    *,
    poll: float = POLL_SECONDS,
) -> Iterator[bytes]:
    """`path` from `offset` on, then what is appended, until `gone()` or no longer `member()`."""
    checked = time.monotonic()
    while not gone():
        blocks, offset = logfile.read_from(path, offset)
        wrote = False
        for block in blocks:
            wrote = True
            yield block
        if time.monotonic() - checked >= MEMBERSHIP_SECONDS:
            checked = time.monotonic()
            if not member():
                return
        if not wrote:
            time.sleep(poll)


class PoolLogsResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        tail = req.get_param_as_int("tail", min_value=0)
        following = req.get_param_as_bool("follow") or False
        replica, replicas = _choose(self._ctx, name, req.get_param("replica"))
        assert replica.log_path is not None
        path = Path(replica.log_path)
        offset = 0 if tail is None else logfile.tail_offset(path, tail)
        resp.content_type = "text/plain; charset=utf-8"
        resp.set_headers(
            {
                "X-Llorch-Replica": replica.id,
                "X-Llorch-Replicas": ",".join(r.id for r in replicas),
                **sse.HEADERS,
            }
        )
        if not following:
            resp.stream, _ = logfile.read_from(path, offset)
            return

        def member() -> bool:
            return any(r.id == replica.id for r in _logged_replicas(self._ctx, name))

        resp.stream = follow(path, offset, sse.client_gone(req.env), member)


def routes(ctx: AppContext, app: falcon.App[falcon.Request, falcon.Response]) -> None:
    app.add_route("/v1/pools/{name}/logs", PoolLogsResource(ctx))
