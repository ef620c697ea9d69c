"""Moving estimates of how long tasks take, measured from tasks that finished."""

from __future__ import annotations

import threading

# Before any task finished there is nothing to measure; a second per task is a humble guess
# that the first finished task replaces.
INITIAL_SERVICE_SECONDS = 1.0
# Weight of the newest sample: recent load matters more than yesterday's.
ALPHA = 0.2


def _ewma(known: float | None, sample: float) -> float:
    return sample if known is None else known + ALPHA * (sample - known)


class ServiceTimes:
    def __init__(self) -> None:
        self._seconds: dict[str, float] = {}
        self._per_token: dict[str, float] = {}
        self._lock = threading.Lock()

    def observe(self, pool: str, seconds: float, tokens: int = 0) -> None:
        """A task of `pool` ran `seconds` and produced `tokens` (0 when it did not finish)."""
        with self._lock:
            self._seconds[pool] = _ewma(self._seconds.get(pool), seconds)
            if tokens > 0:
                self._per_token[pool] = _ewma(self._per_token.get(pool), seconds / tokens)

    def predicted_service_ms(self, pool: str, expected_tokens: int | None) -> int | None:
        """How long a task should run once started, from measurements only; None before any.
        A task that says how many tokens it expects is priced per token."""
        with self._lock:
            per_token = self._per_token.get(pool)
            if expected_tokens is not None and per_token is not None:
                return int(per_token * expected_tokens * 1000)
            seconds = self._seconds.get(pool)
        return None if seconds is None else int(seconds * 1000)

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
