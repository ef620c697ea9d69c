"""A clock for controller tests: it moves only when a test says so, so delays are exact and instant."""

from __future__ import annotations


class FakeClock:
    """A clock that only moves when told to, so delay tests are exact and instant."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
