"""Moving estimates of how long tasks take, measured from tasks that finished."""

from __future__ import annotations

import threading

# Before any task finished there is nothing to measure; a second per task is a humble guess
# that the first finished task replaces.
INITIAL_SERVICE_SECONDS = 1.0
# Weight of the newest sample: recent load matters more than yesterday's.
ALPHA = 0.2


class ServiceTimes:
    def __init__(self) -> None:
        self._seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    def observe(self, pool: str, seconds: float) -> None:
        with self._lock:
            known = self._seconds.get(pool)
            self._seconds[pool] = seconds if known is None else known + ALPHA * (seconds - known)

    def measured(self, pool: str) -> float | None:
        with self._lock:
            return self._seconds.get(pool)

    def seconds(self, pool: str) -> float:
        with self._lock:
            return self._seconds.get(pool, INITIAL_SERVICE_SECONDS)

    def predicted_start_ms(self, pool: str, position: int, free_slots: int, total_slots: int) -> int:
        """When the task at `position` should start: waves of `total_slots` tasks ahead of it."""
        if position < free_slots:
            return 0
        if total_slots <= 0:
            return int(self.seconds(pool) * 1000 * (position + 1))
        waves = (position - free_slots) // total_slots + 1
        return int(self.seconds(pool) * 1000 * waves)
