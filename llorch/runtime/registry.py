"""Replicas that can take work, and their slots.

Controllers add a replica once it answers its readiness probe and remove it when it stops;
the dispatcher takes and gives back slots here. Slot accounting lives with the replicas so a
controller scaling down can see how busy a replica still is without knowing about tasks.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from llorch.resources.errors import LlorchError
from llorch.runtime.engines.base import EngineAdapter, Upstream


@dataclass
class Replica:
    id: str
    pool: str
    engine: str
    upstream: Upstream
    slots: int
    adapter: EngineAdapter
    draining: bool = False
    busy: int = 0
    # Tokens per sequence as the engine reports it; None when it does not say.
    context: int | None = None
    # GPU indexes it runs on; empty on CPU and for endpoints.
    devices: tuple[int, ...] = ()
    # Set by the data plane when the engine stopped answering mid-task; its controller restarts it.
    unhealthy: str | None = None
    # time.time() its last task ended (or it became ready): which idle replica was used least recently.
    last_used: float = field(default_factory=time.time)

    def snapshot(self) -> Replica:
        return dataclasses.replace(self)


@dataclass(frozen=True)
class Lease:
    """Slots held on one replica by one task, given back with `release`."""

    replica: Replica
    slots: int


class ReplicaRegistry:
    def __init__(self) -> None:
        self._replicas: dict[str, Replica] = {}
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        self._evict_listeners: list[Callable[[str, LlorchError], None]] = []
        self._unhealthy_listeners: list[Callable[[Replica], None]] = []
        # Pools with no serving replica whose tasks may wait: why (a replica starting, memory
        # being freed, an idle pool waking) and when one should be ready, as their controller says.
        self._standby: dict[str, tuple[str, float | None]] = {}

    def subscribe(self, listener: Callable[[], None]) -> None:
        """`listener` runs after every change (a replica came, went, or freed a slot)."""
        self._listeners.append(listener)

    def on_evict(self, listener: Callable[[str, LlorchError], None]) -> None:
        """`listener(replica_id, error)` ends the work still running on an evicted replica."""
        self._evict_listeners.append(listener)

    def evict(self, replica_id: str, error: LlorchError) -> None:
        """Take the replica out and end its in-flight tasks with `error` (e.g. POOL_DRAINED)."""
        self.remove(replica_id)
        for listener in self._evict_listeners:
            listener(replica_id, error)

    def on_unhealthy(self, listener: Callable[[Replica], None]) -> None:
        """`listener(replica)` hears that the data plane found a replica hung (its controller acts)."""
        self._unhealthy_listeners.append(listener)

    def mark_unhealthy(self, replica_id: str, reason: str) -> None:
        """The engine stopped answering under a task: take no more work there until it restarts."""
        with self._lock:
            replica = self._replicas.get(replica_id)
            if replica is None or replica.unhealthy is not None:
                return
            replica.unhealthy = reason
            replica.draining = True
            snapshot = replica.snapshot()
            self._notify()
        for listener in self._unhealthy_listeners:
            listener(snapshot)

    def unhealthy(self, replica_id: str) -> str | None:
        with self._lock:
            replica = self._replicas.get(replica_id)
            return None if replica is None else replica.unhealthy

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()

    def add(self, replica: Replica) -> None:
        with self._lock:
            known = self._replicas.get(replica.id)
            if known is not None:
                replica.busy = known.busy
            self._replicas[replica.id] = replica
            self._notify()

    def remove(self, replica_id: str) -> None:
        with self._lock:
            self._replicas.pop(replica_id, None)
            self._notify()

    def set_draining(self, replica_id: str, draining: bool = True) -> None:
        """Stop (or, with False, resume) handing the replica new work."""
        with self._lock:
            replica = self._replicas.get(replica_id)
            if replica is not None:
                replica.draining = draining
            self._notify()

    def acquire(self, pool: str, *, exclusive: bool = False) -> Lease | None:
        """Take a slot on the least-busy ready replica of `pool` (ties: lowest id), or None.

        An exclusive lease takes every slot of an idle replica: a strict-determinism task runs
        alone, so continuous batching with other sequences cannot change its tokens.
        """
        with self._lock:
            candidates = [
                r
                for r in self._replicas.values()
                if r.pool == pool and not r.draining and (r.busy == 0 if exclusive else r.busy < r.slots)
            ]
            if not candidates:
                return None
            chosen = min(candidates, key=lambda r: (r.busy, r.id))
            taken = chosen.slots if exclusive else 1
            chosen.busy += taken
            return Lease(chosen.snapshot(), taken)

    def release(self, lease: Lease) -> None:
        with self._lock:
            replica = self._replicas.get(lease.replica.id)
            if replica is not None:
                replica.busy = max(0, replica.busy - lease.slots)
                replica.last_used = time.time()
            self._notify()

    def set_standby(self, pool: str, reason: str | None, *, ready_at: float | None = None) -> None:
        """`reason`: a replica of `pool` is on its way (tasks may queue meanwhile) and what it
        waits for; `ready_at` (time.time()) when it should be ready, when the controller can
        tell. None: none is coming, a task finding no serving replica is refused."""
        with self._lock:
            if reason is None:
                self._standby.pop(pool, None)
            else:
                self._standby[pool] = (reason, ready_at)

    def standby(self, pool: str) -> str | None:
        with self._lock:
            known = self._standby.get(pool)
            return known[0] if known is not None else None

    def standby_ready_at(self, pool: str) -> float | None:
        with self._lock:
            known = self._standby.get(pool)
            return known[1] if known is not None else None

    def busy(self, replica_id: str) -> int:
        with self._lock:
            replica = self._replicas.get(replica_id)
            return 0 if replica is None else replica.busy

    def replicas(self, pool: str | None = None) -> list[Replica]:
        with self._lock:
            return sorted(
                (r.snapshot() for r in self._replicas.values() if pool is None or r.pool == pool),
                key=lambda r: r.id,
            )

    def serving(self, pool: str) -> int:
        """Replicas of `pool` that accept new work."""
        with self._lock:
            return sum(1 for r in self._replicas.values() if r.pool == pool and not r.draining)
