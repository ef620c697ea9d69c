"""The admission queue: per pool, bounded, interactive before batch, FIFO within a priority."""

from __future__ import annotations

import threading
from collections import deque

from llorch.dataplane.tasks import Task

PRIORITIES = ("interactive", "batch")


class QueueFull(Exception):
    def __init__(self, pool: str, capacity: int) -> None:
        super().__init__(f"pool {pool!r} has {capacity} task(s) queued, its capacity")
        self.pool = pool
        self.capacity = capacity


class AdmissionQueue:
    def __init__(self) -> None:
        self._queues: dict[str, dict[str, deque[Task]]] = {}
        self._lock = threading.Lock()

    def _pool(self, pool: str) -> dict[str, deque[Task]]:
        return self._queues.setdefault(pool, {p: deque() for p in PRIORITIES})

    def push(self, task: Task, capacity: int) -> int:
        """Queue `task`; returns its 0-based position among the pool's waiting tasks."""
        with self._lock:
            queues = self._pool(task.pool)
            if sum(len(q) for q in queues.values()) >= capacity:
                raise QueueFull(task.pool, capacity)
            queues[task.priority].append(task)
            return self._position(queues, task)

    def ahead(self, task: Task) -> int:
        """Waiting tasks that `task`, not yet queued, would wait behind: the position it would get."""
        with self._lock:
            queues = self._pool(task.pool)
            upto = PRIORITIES.index(task.priority) + 1
            return sum(len(queues[p]) for p in PRIORITIES[:upto])

    def evict_for(self, task: Task) -> Task | None:
        """Make room for `task` under drop-lru: take out the task that has waited longest among
        the lowest priority no higher than `task`'s. None when every waiting task outranks it."""
        with self._lock:
            queues = self._pool(task.pool)
            for priority in reversed(PRIORITIES[PRIORITIES.index(task.priority) :]):
                if queues[priority]:
                    return queues[priority].popleft()
            return None

    def peek(self, pool: str) -> Task | None:
        with self._lock:
            for queue in self._pool(pool).values():
                if queue:
                    return queue[0]
            return None

    def pop(self, pool: str, task: Task) -> bool:
        """Take `task` off the front (it was peeked); False if it left meanwhile (canceled)."""
        with self._lock:
            queue = self._pool(pool)[task.priority]
            if queue and queue[0] is task:
                queue.popleft()
                return True
            return False

    def remove(self, task: Task) -> bool:
        with self._lock:
            queue = self._pool(task.pool)[task.priority]
            if task in queue:
                queue.remove(task)
                return True
            return False

    def position(self, task: Task) -> int | None:
        with self._lock:
            queues = self._pool(task.pool)
            if task not in queues[task.priority]:
                return None
            return self._position(queues, task)

    def waiting(self, pool: str) -> list[Task]:
        """The pool's queued tasks in the order they will start."""
        with self._lock:
            return [task for priority in PRIORITIES for task in self._pool(pool)[priority]]

    def depth(self, pool: str) -> int:
        with self._lock:
            return sum(len(q) for q in self._pool(pool).values())

    def pools(self) -> list[str]:
        with self._lock:
            return [pool for pool, queues in self._queues.items() if any(queues.values())]

    @staticmethod
    def _position(queues: dict[str, deque[Task]], task: Task) -> int:
        ahead = 0
        for priority in PRIORITIES:
            queue = queues[priority]
            if priority == task.priority:
                return ahead + queue.index(task)
            ahead += len(queue)
        raise ValueError(task.priority)
