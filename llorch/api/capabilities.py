"""/v1/capabilities and /v1/replicasets: what each pool can do and how loaded it is right now.

A client sizes its concurrency from these: run at most `slots_total` tasks per pool at once
(more only queue), and keep `max_tokens` within `max_tokens_out`.
"""

from __future__ import annotations

import time

import falcon

from llorch.api.context import AppContext
from llorch.dataplane.policies import policy_for
from llorch.resources import Pool
from llorch.resources.status import PoolStatus
from llorch.resources.wire import (
    BudgetLimits,
    Capabilities,
    Features,
    PoolCapabilities,
    RateLimits,
    ReplicaLoad,
    ReplicaSet,
    ReplicaSets,
    Slo,
)
from llorch.runtime.engines import adapter_for
from llorch.runtime.engines.base import SAMPLER_PROFILE_VERSION

API_VERSION = "v1"
DEFAULT_QUEUE = RateLimits(queue_capacity=64, overflow="reject")


def _pools(ctx: AppContext) -> list[Pool]:
    return [e.obj for e in ctx.store.entries("Pool") if isinstance(e.obj, Pool)]


def _engine_version(status: PoolStatus) -> str | None:
    return next((r.engine_version for r in status.replica_statuses if r.engine_version), None)


def pool_capabilities(ctx: AppContext, pool: Pool) -> PoolCapabilities:
    spec = pool.spec
    status = ctx.db.pool_status(pool.metadata.name) or PoolStatus()
    policy = policy_for(ctx.store, pool)
    overrides = spec.capabilities
    context = ctx.tasks.context_limit(pool)
    return PoolCapabilities(
        pool=pool.metadata.name,
        engine=spec.engine.value,
        engine_version=_engine_version(status),
        sampler_profile_version=SAMPLER_PROFILE_VERSION,
        model=spec.model,
        ctx_max=context,
        max_tokens_out=min(overrides.max_tokens_out or context, context),
        slots_per_replica=spec.slots,
        slots_total=status.slots_total,
        replicas_ready=status.ready_replicas,
        replicas_desired=status.replicas if spec.autoscale is not None else spec.replicas,
        idle=status.idle,
        cold_start_ms=_cold_start_ms(status),
        supported_workloads=[spec.workload.value],
        workload=spec.workload.value,
        endpoints=sorted(adapter_for(spec.engine.value).relay_paths(spec)),
        features=Features(
            chat=bool(overrides.chat),
            determinism=policy.spec.determinism.default if policy is not None else "best_effort",
            structured_outputs=sorted(adapter_for(pool.spec.engine.value).structured_outputs),
        ),
        rate_limits=(
            RateLimits(
                queue_capacity=policy.spec.admission.queue_capacity,
                overflow=policy.spec.admission.overflow.value,
            )
            if policy is not None
            else DEFAULT_QUEUE
        ),
        budgets=(
            BudgetLimits(
                tokens=policy.spec.budgets.tokens,
                wall_time_seconds=policy.spec.budgets.wall_time_seconds,
                cost=policy.spec.budgets.cost,
            )
            if policy is not None
            else BudgetLimits()
        ),
        policy=policy.metadata.name if policy is not None else None,
    )


def _cold_start_ms(status: PoolStatus) -> int | None:
    return int(status.cold_start_seconds * 1000) if status.cold_start_seconds is not None else None


def replica_set(ctx: AppContext, pool: Pool) -> ReplicaSet:
    name = pool.metadata.name
    status = ctx.db.pool_status(name) or PoolStatus()
    live = {r.id: r for r in ctx.registry.replicas(name)}
    now = time.time()
    replicas = [
        ReplicaLoad(
            id=r.id,
            state=r.phase,
            gpus=[g.index for g in r.gpus],
            busy=live[r.id].busy if r.id in live else 0,
            slots=pool.spec.slots,
            memory_bytes=r.memory_bytes,
            tokens_per_second=ctx.tasks.tokens_per_second(r.id),
            idle_seconds=(
                round(now - live[r.id].last_used, 1) if r.id in live and live[r.id].busy == 0 else None
            ),
        )
        for r in status.replica_statuses
    ]
    serving = [r for r in live.values() if not r.draining]
    total = sum(r.slots for r in serving)
    busy = sum(r.busy for r in serving)
    scale_down = status.scale_down_at.timestamp() - now if status.scale_down_at is not None else None
    return ReplicaSet(
        id=name,
        model=pool.spec.model,
        state=status.state,
        replicas_desired=status.replicas,
        scale_down_in_seconds=round(max(0.0, scale_down), 1) if scale_down is not None else None,
        cold_start_ms=_cold_start_ms(status),
        engine=pool.spec.engine.value,
        engine_version=_engine_version(status),
        load=round(busy / total, 3) if total else 0.0,
        slots_total=total,
        slots_free=total - busy,
        replicas=replicas,
        slo=Slo(service_time_ms=ctx.tasks.service_time_ms(name), queue_depth=ctx.tasks.queue_depth(name)),
    )


class CapabilitiesResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = Capabilities(
            api_version=API_VERSION, pools=[pool_capabilities(self._ctx, p) for p in _pools(self._ctx)]
        )
        resp.media = body.model_dump(mode="json")


class ReplicaSetsResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = ReplicaSets(replicasets=[replica_set(self._ctx, p) for p in _pools(self._ctx)])
        resp.media = body.model_dump(mode="json")


def routes(ctx: AppContext, app: falcon.App[falcon.Request, falcon.Response]) -> None:
    app.add_route("/v1/capabilities", CapabilitiesResource(ctx))
    app.add_route("/v1/replicasets", ReplicaSetsResource(ctx))
