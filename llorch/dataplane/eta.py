"""When a task admitted now will start: a small simulation of the pool's slots from what is
actually running, the queue ahead of the task, and a cold start where no replica serves yet.

Each running sequence has tokens left (its expected length less what it produced); each queued
task ahead needs its prompt processed, then its expected length. Sequences on a replica decode
together, each at the per-sequence rate measured at that concurrency (continuous batching makes
each sequence slower as more share the replica). The simulation runs slots forward to the moment
one is free with nobody ahead: the task's start. Pure: no clock, no locks; tests drive it directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

# Per-sequence tokens/s at a concurrency (sequences decoding on one replica).
Rate = Callable[[int], float]

# A sequence this close to its end counts as ended: floating point, not tokens.
_EPSILON = 1e-9


@dataclass(frozen=True)
class PoolNow:
    slots: int
    """Slots the task may use: on serving replicas, or on the replica(s) that will start."""
    replicas: int
    """Serving (or starting) replicas the slots spread over."""
    running: Sequence[float]
    """Tokens each running sequence still has to produce."""
    ahead: Sequence[float]
    """Expected tokens of each task queued ahead of this one, in the order they will start."""
    prompt_seconds: float
    """Time from a slot to a task's first token (its prompt being processed)."""
    ready_in: float = 0.0
    """Seconds until the slots exist at all: 0 when a replica serves, else its cold start left."""


def predict_start(now: PoolNow, rate: Rate) -> float:
    """Seconds from now until the task gets a slot."""
    if now.slots <= 0:
        return float("inf")
    # (prompt seconds left, tokens left) per sequence holding a slot.
    active = [(0.0, max(0.0, t)) for t in now.running]
    queue = list(now.ahead)
    clock = now.ready_in
    while True:
        while len(active) < now.slots and queue:
            active.append((now.prompt_seconds, max(1.0, queue.pop(0))))
        if len(active) < now.slots:
            return clock
        per_replica = -(-len(active) // max(1, now.replicas))
        speed = max(rate(per_replica), _EPSILON)
        step = min(prompt + tokens / speed for prompt, tokens in active)
        clock += step
        active = [left for seq in active if (left := _advance(seq, step, speed))[1] > _EPSILON]


def _advance(sequence: tuple[float, float], seconds: float, speed: float) -> tuple[float, float]:
    prompt, tokens = sequence
    if seconds <= prompt:
        return prompt - seconds, tokens
    return 0.0, tokens - (seconds - prompt) * speed
