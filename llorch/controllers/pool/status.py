"""A pool's conditions (Ready, Progressing, Degraded) and the PoolStatus a reconcile writes."""

from __future__ import annotations

from llorch.controllers.conditions import set_condition
from llorch.controllers.pool.replica import ReplicaState
from llorch.resources import PoolSpec
from llorch.resources.status import Condition, PoolStatus, RolloutStatus


def replica_conditions(
    conditions: list[Condition],
    spec: PoolSpec,
    replicas: dict[str, ReplicaState],
    revision: str,
    failed: RolloutStatus | None,
    now: float,
    *,
    wanted: int,
) -> list[Condition]:
    """`wanted`: the replica count of this reconcile (the spec's, or what autoscale decided)."""
    abandoned = failed is not None and failed.failed_revision == revision
    ready = sum(1 for s in replicas.values() if s.phase == "Ready" and s.index < wanted)
    settling = not abandoned and (
        any(
            s.revision != revision or s.index >= wanted or s.phase in ("Starting", "Terminating")
            for s in replicas.values()
        )
        or len({s.index for s in replicas.values()}) != wanted
    )
    if spec.autoscale is not None and wanted == 0 and not replicas:
        conditions = set_condition(
            conditions, "Ready", False, "Idle", "scaled to zero: the next task starts a replica", now=now
        )
    else:
        conditions = set_condition(
            conditions,
            "Ready",
            ready == wanted,
            "AllReplicasReady" if ready == wanted else "ReplicasNotReady",
            f"{ready}/{wanted} replicas ready",
            now=now,
        )
    conditions = set_condition(
        conditions,
        "Progressing",
        settling,
        "ReplicasChanging" if settling else "Stable",
        f"{len(replicas)} replica(s) present, {wanted} wanted",
        now=now,
    )
    reason, message = _degraded(replicas, failed if abandoned else None)
    return set_condition(conditions, "Degraded", bool(reason), reason or "Healthy", message, now=now)


def _degraded(replicas: dict[str, ReplicaState], abandoned: RolloutStatus | None) -> tuple[str, str]:
    """The worst trouble first: a failed rollout, a crash loop, no room on any GPU, an endpoint down."""
    if abandoned is not None:
        return "RolloutFailed", abandoned.message
    crashing = [s for s in replicas.values() if s.phase == "BackOff"]
    if crashing:
        worst = max(crashing, key=lambda s: s.restarts)
        return (
            "CrashLoopBackOff",
            f"replica {worst.id} restarted {worst.restarts} time(s): {worst.last_error}",
        )
    pending = [s for s in replicas.values() if s.phase == "Pending" and s.reason]
    if pending:
        return "Unschedulable", pending[0].reason
    not_ready = [s for s in replicas.values() if s.phase == "NotReady"]
    if not_ready:
        return "EndpointNotReady", not_ready[0].reason
    return "", ""


def blocked_conditions(conditions: list[Condition], reason: str, message: str, now: float) -> list[Condition]:
    conditions = set_condition(conditions, "Ready", False, reason, message, now=now)
    conditions = set_condition(conditions, "Progressing", False, reason, message, now=now)
    return set_condition(conditions, "Degraded", True, reason, message, now=now)


def draining_conditions(
    conditions: list[Condition], drained: bool, message: str, now: float
) -> list[Condition]:
    conditions = set_condition(
        conditions, "Ready", False, "Drained" if drained else "Draining", message, now=now
    )
    conditions = set_condition(conditions, "Progressing", not drained, "Draining", message, now=now)
    return set_condition(conditions, "Degraded", False, "Draining", "drained on request", now=now)


def with_replicas(
    status: PoolStatus,
    spec: PoolSpec,
    replicas: dict[str, ReplicaState],
    wanted: int,
    last_used: dict[str, float],
) -> PoolStatus:
    """`status` with the replicas as they are now. Slot use changes per task, not per reconcile:
    the API reads it live from the registry."""
    states = sorted(replicas.values(), key=lambda s: (s.index, s.id))
    ready = sum(1 for s in states if s.phase == "Ready" and s.index < wanted)
    return status.model_copy(
        update={
            "ready_replicas": ready,
            "replica_statuses": [s.status(spec.slots, last_used.get(s.id)) for s in states],
            "slots_total": spec.slots * ready,
        }
    )
