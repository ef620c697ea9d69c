"""Memory every replica reserves, and making room for one that does not fit.

A GPU replica reserves VRAM on the GPUs it is placed on (placement counts every other live
replica's reservation and NVML's free memory); a CPU replica reserves host memory against
`capacity.hostMemoryMiB`. When a replica does not fit, idle replicas of autoscaled pools of lower
or equal priority are evicted, least recently used first, until it would: never a replica that is
running a task, never one of a pool with tasks waiting, of a higher priority, or at its pool's
`min`. The evicted pools scale down (their reconcile drains and stops the replica) and the
waiting replica is placed once the memory is free. When nothing can be freed, the reason names
what holds the memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from llorch.controllers.pool.autoscale import Autoscaler
from llorch.controllers.pool.replica import ReplicaState
from llorch.resources import PoolSpec
from llorch.runtime.demand import DemandSource
from llorch.runtime.gpus import Gpu, GpuInventory
from llorch.runtime.placement import GpuPlacement, PlacementRequest, Reservation, Unschedulable, place
from llorch.runtime.registry import ReplicaRegistry
from llorch.runtime.vram import format_bytes
from llorch.store.db import StateDB

# (pool, replica) for every replica the controller tracks.
AllReplicas = Callable[[], list[tuple[str, ReplicaState]]]


@dataclass(frozen=True)
class Candidate:
    pool: str
    spec: PoolSpec
    state: ReplicaState


class Capacity:
    def __init__(
        self,
        *,
        host_bytes: int,
        inventory: GpuInventory,
        all_replicas: AllReplicas,
        autoscaler: Autoscaler,
        registry: ReplicaRegistry,
        demand: DemandSource,
        db: StateDB,
        enqueue: Callable[[str], None],
        clock: Callable[[], float],
        on_eviction: Callable[[str, str], None],
    ) -> None:
        self.host_bytes = host_bytes
        self._inventory = inventory
        self._all = all_replicas
        self._autoscaler = autoscaler
        self._registry = registry
        self._demand = demand
        self._db = db
        self._enqueue = enqueue
        self._clock = clock
        self._on_eviction = on_eviction

    # -- fitting ------------------------------------------------------------------------------------

    def host_free(self, asking: ReplicaState) -> int:
        """Host memory not reserved by another live CPU replica."""
        held = sum(s.memory_bytes for _, s in self._all() if s is not asking and s.running and not s.gpus)
        return self.host_bytes - held

    def place_gpus(
        self, state: ReplicaState, spec: PoolSpec, vram_bytes: int
    ) -> GpuPlacement | Unschedulable:
        return place(self._inventory.gpus(), self._reservations(state, ()), _request(state, spec, vram_bytes))

    def _reservations(self, asking: ReplicaState, leaving: tuple[ReplicaState, ...]) -> list[Reservation]:
        return [
            Reservation(replica_id=s.id, gpu_uuid=g.uuid, bytes=b, loaded=s.phase == "Ready")
            for _, s in self._all()
            if s is not asking and s.running and s not in leaving
            for g, b in zip(s.gpus, s.vram_per_gpu, strict=False)
        ]

    # -- making room ---------------------------------------------------------------------------------

    def make_room(self, key: str, pool: str, spec: PoolSpec, state: ReplicaState, need: int, why: str) -> str:
        """`state` (of `pool`) needs `need` bytes it cannot have (`why`). Evict what may go to make
        room and say what the replica waits for, or say what holds the memory."""
        leaving = tuple(s for _, s in self._all() if s.running and s.phase == "Terminating")
        if leaving and self._fits(state, spec, need, leaving):
            return f"waiting for {_names(leaving)} to stop: {why}"
        candidates, holders = self._candidates(pool, spec)
        chosen: list[Candidate] = []
        for candidate in candidates:
            chosen.append(candidate)
            if self._fits(state, spec, need, leaving + tuple(c.state for c in chosen)):
                self._evict(pool, need, chosen)
                return f"waiting for {_names(tuple(c.state for c in chosen))} to stop (evicted to make room)"
        held = "; ".join(holders) if holders else "nothing llorch runs"
        return f"{why}; nothing can be evicted: held by {held}"

    def _fits(
        self, state: ReplicaState, spec: PoolSpec, need: int, leaving: tuple[ReplicaState, ...]
    ) -> bool:
        if spec.gpus.count == 0:
            return self.host_free(state) + sum(s.memory_bytes for s in leaving if not s.gpus) >= need
        # A stopping replica's memory is in NVML's `used` until it is gone: count it back as free.
        freed: dict[str, int] = {}
        for s in leaving:
            for gpu, amount in zip(s.gpus, s.vram_per_gpu, strict=False):
                freed[gpu.uuid] = freed.get(gpu.uuid, 0) + amount
        gpus = [_with_freed(g, freed.get(g.uuid, 0)) for g in self._inventory.gpus()]
        decision = place(gpus, self._reservations(state, leaving), _request(state, spec, need))
        return isinstance(decision, GpuPlacement)

    def _candidates(self, pool: str, spec: PoolSpec) -> tuple[list[Candidate], list[str]]:
        """Replicas that may be evicted for `pool`, least recently used first, and for every other
        replica holding memory, why it stays."""
        last_used = {r.id: r.last_used for r in self._registry.replicas()}
        candidates: list[Candidate] = []
        holders: list[str] = []
        highest: dict[str, int] = {}
        for other, s in self._all():
            if s.running and s.phase != "Terminating":
                highest[other] = max(highest.get(other, -1), s.index)
        for other, s in self._all():
            if other == pool or not s.running or s.phase == "Terminating" or s.template is None:
                continue
            other_spec = s.template.spec
            stays = self._stays(other, other_spec, s, spec, highest.get(other, -1))
            if stays:
                holders.append(f"pool {other} replica {s.id} ({format_bytes(s.memory_bytes)}: {stays})")
            else:
                candidates.append(Candidate(other, other_spec, s))
        candidates.sort(key=lambda c: (last_used.get(c.state.id, 0.0), c.state.id))
        return candidates, holders

    def _stays(self, other: str, other_spec: PoolSpec, s: ReplicaState, spec: PoolSpec, highest: int) -> str:
        """Why replica `s` of pool `other` may not be evicted for a pool of `spec`; "" when it may."""
        if self._registry.busy(s.id) > 0:
            return "running a task"
        if s.phase != "Ready":
            return f"{s.phase.lower()}"
        if other_spec.priority > spec.priority:
            return f"priority {other_spec.priority} > {spec.priority}"
        if other_spec.autoscale is None:
            return "a fixed replica count"
        if self._autoscaler.evictable(other, other_spec) == 0:
            return f"its pool is at autoscale.min {other_spec.autoscale.min}"
        if s.index != highest:
            return "not the replica its pool would scale down"
        if self._demand(other).queued > 0:
            return "tasks are waiting for it"
        return ""

    def _evict(self, pool: str, need: int, chosen: list[Candidate]) -> None:
        now = self._clock()
        for candidate in chosen:
            self._autoscaler.evict(candidate.pool, candidate.spec, for_pool=pool, now=now)
            # No new task lands on it between now and its own pool's reconcile stopping it.
            self._registry.set_draining(candidate.state.id)
            self._db.record_event(
                f"Pool/{candidate.pool}",
                "Normal",
                "Evicted",
                f"replica {candidate.state.id} stops to make room for pool {pool} "
                f"({format_bytes(need)} needed)",
            )
            self._on_eviction(candidate.pool, "memory")
            self._enqueue(f"Pool/{candidate.pool}")


def _request(state: ReplicaState, spec: PoolSpec, vram_bytes: int) -> PlacementRequest:
    return PlacementRequest(
        replica_id=state.id,
        count=spec.gpus.count,
        vram_bytes=vram_bytes,
        devices=tuple(spec.gpus.devices),
        split=spec.gpus.split,
    )


def _with_freed(gpu: Gpu, amount: int) -> Gpu:
    if not amount:
        return gpu
    free = min(gpu.total_bytes, gpu.free_bytes + amount)
    return replace(gpu, free_bytes=free, used_bytes=gpu.total_bytes - free)


def _names(states: tuple[ReplicaState, ...]) -> str:
    return ", ".join(f"replica {s.id}" for s in states)
