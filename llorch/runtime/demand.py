"""What the data plane observes of a pool's demand, handed to its controller to size the pool.

It lives below both: the data plane produces it, the Pool controller consumes it, and the
daemon's wiring connects the two (neither imports the other).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Demand:
    queued: int = 0
    """Tasks waiting for a slot."""
    running: int = 0
    """Tasks holding a slot."""
    last_activity: float | None = None
    """time.time() of the pool's latest admission or task end; None before any."""


DemandSource = Callable[[str], Demand]


def no_demand(pool: str) -> Demand:
    """For a controller run without a data plane (tests, tools): nothing is ever asked."""
    return Demand()
