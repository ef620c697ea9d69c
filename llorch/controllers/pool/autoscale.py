"""How many replicas an autoscaled pool wants, decided in its reconcile from observed demand.

The rules, in order (like the HPA: up at once, down only after a quiet window):

* **Activate**: tasks wait and the pool is at zero → one replica.
* **Grow**: every replica Ready and more tasks queued per ready replica than `queuePerReplica`
  → one more, up to `max`.
* **Idle**: no task running or queued for `idleSeconds` → back to `min` (zero: the pool is Idle).
* **Shrink**: above `max(min, 1)`, nothing queued and the running tasks fitting in one replica
  fewer for `stabilizationSeconds` → one fewer.
* **Evicted**: another pool of higher or equal priority needed the memory → one fewer (never below
  `min`), until demand brings it back.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

from llorch.resources import PoolSpec
from llorch.runtime.demand import Demand


@dataclass(frozen=True)
class Scale:
    desired: int
    reason: str
    # time.time() of the last change: with no task ever, idleness counts from here.
    changed_at: float
    # Since when demand has been low enough to shrink; None while it is not.
    low_since: float | None = None


@dataclass(frozen=True)
class Decision:
    scale: Scale
    # The Kubernetes-style event reason of a change (Activating, ScaledUp, ScaledDown,
    # ScaledToZero); None when the count stayed.
    event: str | None
    # When the pool goes back to min if nothing comes (for status and `llorchctl top`).
    scale_down_at: float | None


def decide(spec: PoolSpec, scale: Scale, demand: Demand, *, ready: int, present: int, now: float) -> Decision:
    """`ready`: replicas Ready now; `present`: replicas that exist (any phase)."""
    auto = spec.autoscale
    assert auto is not None
    desired = min(max(scale.desired, auto.min), auto.max)
    busy = demand.queued > 0 or demand.running > 0
    if demand.queued > 0 and desired == 0:
        return _changed(scale, 1, "Activating", f"{demand.queued} task(s) waiting for a replica", now)
    settled = ready == present == desired
    if settled and desired < auto.max and demand.queued > auto.queue_per_replica * ready:
        why = (
            f"{demand.queued} task(s) queued for {ready} ready replica(s), "
            f"over queuePerReplica {auto.queue_per_replica}"
        )
        return _changed(scale, desired + 1, "ScaledUp", why, now)
    idle_from = max(demand.last_activity or 0.0, scale.changed_at)
    scale_down_at = idle_from + auto.idle_seconds if desired > auto.min and not busy else None
    if scale_down_at is not None and now >= scale_down_at:
        event = "ScaledToZero" if auto.min == 0 else "ScaledDown"
        return _changed(scale, auto.min, event, f"no task for {auto.idle_seconds:g}s", now)
    floor = max(auto.min, 1)
    low = desired > floor and demand.queued == 0 and demand.running <= (desired - 1) * spec.slots
    if not low:
        return Decision(replace(scale, desired=desired, low_since=None), None, scale_down_at)
    low_since = scale.low_since if scale.low_since is not None else now
    if now - low_since >= auto.stabilization_seconds:
        why = (
            f"{demand.running} running task(s) fit in {desired - 1} replica(s) "
            f"for {auto.stabilization_seconds:g}s"
        )
        return _changed(scale, desired - 1, "ScaledDown", why, now)
    return Decision(replace(scale, desired=desired, low_since=low_since), None, scale_down_at)


def _changed(scale: Scale, desired: int, event: str, why: str, now: float) -> Decision:
    return Decision(Scale(desired, f"{event}: {why}", now), event, None)


class Autoscaler:
    """Each autoscaled pool's Scale, kept between reconciles (and seeded from its last status, so a
    restarted llorchd keeps the count it had)."""

    def __init__(self) -> None:
        self._scales: dict[str, Scale] = {}
        self._lock = threading.Lock()

    def current(self, pool: str, *, seed: int, now: float) -> Scale:
        with self._lock:
            return self._scales.setdefault(pool, Scale(seed, "", now))

    def store(self, pool: str, scale: Scale) -> None:
        with self._lock:
            self._scales[pool] = scale

    def evict(self, pool: str, spec: PoolSpec, *, for_pool: str, now: float) -> None:
        """One replica fewer to make room for `for_pool`, never below min."""
        assert spec.autoscale is not None
        with self._lock:
            known = self._scales.get(pool, Scale(1, "", now))
            desired = max(spec.autoscale.min, known.desired - 1)
            self._scales[pool] = Scale(desired, f"Evicted: made room for pool {for_pool}", now)

    def evictable(self, pool: str, spec: PoolSpec) -> int:
        """How many replicas the pool can give up (above its min)."""
        if spec.autoscale is None:
            return 0
        with self._lock:
            known = self._scales.get(pool)
        return 0 if known is None else max(0, known.desired - spec.autoscale.min)

    def forget(self, pool: str) -> None:
        with self._lock:
            self._scales.pop(pool, None)
