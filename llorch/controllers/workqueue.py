"""Rate-limited, delaying work queue for reconcile keys (modelled on client-go's workqueue)."""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

__all__ = ["QueueMetrics", "WorkQueue"]


class QueueMetrics(Protocol):
    """What a queue reports, with client-go's workqueue meanings: an add is a key that was not
    waiting yet; queue time runs from that add to `get`, work time from `get` to `done`."""

    def added(self) -> None: ...

    def retried(self) -> None: ...

    def waited(self, seconds: float) -> None: ...

    def worked(self, seconds: float) -> None: ...


class _Unmeasured:
    def added(self) -> None:
        pass

    def retried(self) -> None:
        pass

    def waited(self, seconds: float) -> None:
        pass

    def worked(self, seconds: float) -> None:
        pass


# 2.0**1000 is still a finite float, so base * 2.0**exp can at worst overflow to inf (which min()
# then caps); 2.0**1024 and up would raise OverflowError.
_MAX_BACKOFF_EXPONENT = 1000

# Rebuild the heap once stale entries (superseded or cancelled deadlines) outnumber live ones by
# this factor, so churn of add_after/add on a few keys cannot grow it without bound.
_HEAP_COMPACT_FACTOR = 4


class WorkQueue:
    """A thread-safe queue of reconcile keys with de-duplication, delays and per-key backoff.

    Semantics:

    * **De-duplication.** A key is either absent, *queued* (ready and waiting for a worker), or
      *processing* (handed out by :meth:`get` and not yet passed to :meth:`done`). Adding a key
      that is already queued is a no-op, so a key added N times while waiting is handed out once.
    * **One worker per key.** A key being processed is never handed out again. Adding it meanwhile
      marks it *dirty*; when :meth:`done` is called it is re-queued exactly once, however many times
      it was added.
    * **Delays.** :meth:`add_after` schedules the key for ``clock() + delay``. Only the earliest
      pending deadline per key is kept. A plain :meth:`add` makes the key ready now and cancels any
      pending delay, so the delayed entry does not hand it out a second time (unless ``add_after`` is
      called again). A matured delay behaves exactly like :meth:`add` (it de-duplicates and respects
      the processing/dirty rule). Deadlines are kept in a heap and :meth:`get` sleeps on a condition
      variable until the earliest one, rather than polling.
    * **Backoff.** :meth:`add_rate_limited` delays the key by ``backoff_base * 2**failures``
      (capped at ``backoff_max``) and counts the failure; :meth:`forget` resets the count after a
      successful reconcile.
    * **Shutdown.** :meth:`shutdown` wakes every blocked :meth:`get`, which returns ``None``; later
      ``get`` calls return ``None`` at once and later adds are ignored.

    Time: deadlines are measured with ``clock`` (injectable so tests can drive time), but the
    ``timeout`` of :meth:`get` is real elapsed time and sleeping uses real ``Condition.wait``
    timeouts. With a fake clock that does not advance on its own, advance it and then call
    ``get(timeout=0)``; a ``get(timeout=None)`` waiting only on delayed keys would wait forever.
    """

    def __init__(
        self,
        *,
        backoff_base: float = 0.5,
        backoff_max: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        metrics: QueueMetrics | None = None,
    ) -> None:
        if backoff_base <= 0:
            raise ValueError(f"backoff_base must be positive, got {backoff_base}")
        if backoff_max < backoff_base:
            raise ValueError(f"backoff_max ({backoff_max}) must be >= backoff_base ({backoff_base})")
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        # Ready keys in FIFO order; each key appears at most once.
        self._queue: deque[str] = deque()
        # Keys that need processing: everything in _queue plus processing keys re-added meanwhile.
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        # The live deadline per delayed key. Heap entries that no longer match it are stale and are
        # dropped lazily, which makes cancelling or superseding a deadline O(1).
        self._delayed: dict[str, tuple[float, int]] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = 0
        self._failures: dict[str, int] = {}
        self._shutting_down = False
        self._metrics = metrics if metrics is not None else _Unmeasured()
        # clock() when each waiting key was added, and when each processing key was handed out.
        self._added_at: dict[str, float] = {}
        self._started_at: dict[str, float] = {}

    # -- adding -------------------------------------------------------------------------------

    def add(self, key: str) -> None:
        """Make ``key`` ready now (de-duplicated; cancels a pending delay for it)."""
        with self._cond:
            if self._shutting_down:
                return
            self._delayed.pop(key, None)
            self._add_locked(key)

    def add_after(self, key: str, delay: float) -> None:
        """Make ``key`` ready once ``delay`` seconds have passed; an earlier pending deadline wins."""
        with self._cond:
            self._add_after_locked(key, delay)

    def add_rate_limited(self, key: str) -> float:
        """Re-queue ``key`` after its exponential backoff delay, count a failure, return the delay."""
        with self._cond:
            failures = self._failures.get(key, 0)
            exponent = min(failures, _MAX_BACKOFF_EXPONENT)
            delay = min(self._backoff_base * 2.0**exponent, self._backoff_max)
            self._failures[key] = failures + 1
            self._metrics.retried()
            self._add_after_locked(key, delay)
            return delay

    def forget(self, key: str) -> None:
        """Reset the failure count of ``key`` (call after a successful reconcile)."""
        with self._cond:
            self._failures.pop(key, None)

    def failures(self, key: str) -> int:
        """How many times ``key`` went through :meth:`add_rate_limited` since it was last forgotten."""
        with self._cond:
            return self._failures.get(key, 0)

    # -- consuming ----------------------------------------------------------------------------

    def get(self, timeout: float | None = None) -> str | None:
        """Block until a key is ready and hand it out, marking it processing.

        Returns ``None`` once ``timeout`` seconds (real time) have passed, or on shutdown.
        ``timeout=0`` never blocks.
        """
        give_up_at = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        with self._cond:
            while True:
                if self._shutting_down:
                    return None
                self._promote_due_locked()
                # Check for work before checking the timeout: a notify can race with a timed-out
                # wait, and the woken waiter must take the key or the notification is lost.
                if self._queue:
                    key = self._queue.popleft()
                    self._dirty.discard(key)
                    self._processing.add(key)
                    now = self._clock()
                    self._metrics.waited(now - self._added_at.pop(key, now))
                    self._started_at[key] = now
                    return key
                wait: float | None = None
                if give_up_at is not None:
                    wait = give_up_at - time.monotonic()
                    if wait <= 0:
                        return None
                if self._heap:
                    until_due = self._heap[0][0] - self._clock()
                    wait = until_due if wait is None else min(wait, until_due)
                if wait is not None:
                    wait = min(max(wait, 0.0), threading.TIMEOUT_MAX)
                self._cond.wait(wait)

    def done(self, key: str) -> None:
        """Mark ``key`` finished; if it was re-added while processing, queue it again now.

        Calling it for a key that is not being processed is a no-op.
        """
        with self._cond:
            if key not in self._processing:
                return
            self._processing.remove(key)
            now = self._clock()
            self._metrics.worked(now - self._started_at.pop(key, now))
            if key in self._dirty and not self._shutting_down:
                self._queue.append(key)
                self._cond.notify()

    def shutdown(self) -> None:
        """Stop the queue: every blocked and future :meth:`get` returns ``None``."""
        with self._cond:
            self._shutting_down = True
            self._cond.notify_all()

    def __len__(self) -> int:
        """Number of keys ready now (delayed keys count once their deadline has passed)."""
        with self._cond:
            self._promote_due_locked()
            return len(self._queue)

    # -- internals (caller holds self._cond) --------------------------------------------------

    def _add_locked(self, key: str) -> None:
        if key in self._dirty:
            return
        self._dirty.add(key)
        self._metrics.added()
        self._added_at.setdefault(key, self._clock())
        if key in self._processing:
            # done() re-queues it; queueing now would let a second worker take it concurrently.
            return
        self._queue.append(key)
        self._cond.notify()

    def _add_after_locked(self, key: str, delay: float) -> None:
        if self._shutting_down:
            return
        if delay <= 0:
            self._delayed.pop(key, None)
            self._add_locked(key)
            return
        deadline = self._clock() + delay
        current = self._delayed.get(key)
        if current is not None and current[0] <= deadline:
            return
        self._seq += 1
        self._delayed[key] = (deadline, self._seq)
        heapq.heappush(self._heap, (deadline, self._seq, key))
        if len(self._heap) > _HEAP_COMPACT_FACTOR * (len(self._delayed) + 1):
            self._heap = [(d, s, k) for k, (d, s) in self._delayed.items()]
            heapq.heapify(self._heap)
        # Every waiter must recompute how long to sleep: one blocked indefinitely (or until a later
        # deadline) would otherwise oversleep this one. A single notify could land on a waiter whose
        # own short timeout then expires, leaving the others uninformed.
        self._cond.notify_all()

    def _promote_due_locked(self) -> None:
        now = self._clock()
        while self._heap:
            deadline, seq, key = self._heap[0]
            if self._delayed.get(key) != (deadline, seq):
                heapq.heappop(self._heap)  # stale: superseded by an earlier deadline or cancelled
                continue
            if deadline > now:
                break
            heapq.heappop(self._heap)
            del self._delayed[key]
            self._add_locked(key)
