"""GET /v1/gpus: the GPU inventory as it is now, with the VRAM each replica reserved on each GPU."""

from __future__ import annotations

import falcon

from llorch.api.context import AppContext
from llorch.resources import Pool
from llorch.resources.gpus import GpuList, GpuReservation, GpuView


def reservations(ctx: AppContext) -> dict[int, list[GpuReservation]]:
    """GPU index → the replicas placed on it, from each pool's status."""
    held: dict[int, list[GpuReservation]] = {}
    for entry in ctx.store.entries("Pool"):
        if not isinstance(entry.obj, Pool):
            continue
        status = ctx.db.pool_status(entry.obj.metadata.name)
        for replica in status.replica_statuses if status is not None else ():
            for position, gpu in enumerate(replica.gpus):
                reserved = replica.vram_bytes[position] if position < len(replica.vram_bytes) else 0
                held.setdefault(gpu.index, []).append(
                    GpuReservation(
                        pool=entry.obj.metadata.name,
                        replica=replica.id,
                        phase=replica.phase,
                        reserved_bytes=reserved,
                    )
                )
    return held


class GpusResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        held = reservations(self._ctx)
        body = GpuList(
            gpus=[
                GpuView(
                    index=g.index,
                    uuid=g.uuid,
                    name=g.name,
                    total_bytes=g.total_bytes,
                    used_bytes=g.used_bytes,
                    free_bytes=g.free_bytes,
                    utilization_pct=g.utilization_pct,
                    temperature_c=g.temperature_c,
                    reservations=held.get(g.index, []),
                )
                for g in self._ctx.inventory.gpus()
            ]
        )
        resp.media = body.model_dump(mode="json")


def routes(ctx: AppContext, app: falcon.App[falcon.Request, falcon.Response]) -> None:
    app.add_route("/v1/gpus", GpusResource(ctx))
