"""Which objects changed, in order: the resource versions watchers follow.

Every change of an object (its manifest, its status, an event about it) takes the next resource
version, as in Kubernetes; a watcher asks for the changes after the version it saw last and
waits for the next. The feed keeps the most recent changes only: a watcher further behind is
told so and starts over from the whole list, as a Kubernetes client does after 410 Gone.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

KEPT_CHANGES = 4096


@dataclass(frozen=True)
class Change:
    version: int
    key: str
    """`Kind/name`."""
    what: str
    """spec | status | event: which part of the object changed."""


class ChangeFeed:
    def __init__(self, keep: int = KEPT_CHANGES) -> None:
        self._changes: deque[Change] = deque(maxlen=keep)
        # The version of each key's first spec change (its creation, or the load at start-up): a
        # watch resuming from an older version was not told of the object yet, so it is ADDED for
        # that watch, not MODIFIED.
        self._first: dict[str, int] = {}
        self._version = 0
        self._changed = threading.Condition()

    @property
    def version(self) -> int:
        with self._changed:
            return self._version

    def publish(self, keys: Iterable[str], what: str) -> None:
        with self._changed:
            for key in keys:
                self._version += 1
                self._changes.append(Change(self._version, key, what))
                if what == "spec":
                    self._first.setdefault(key, self._version)
            self._changed.notify_all()

    def first_seen(self, key: str) -> int | None:
        with self._changed:
            return self._first.get(key)

    def since(self, version: int, timeout: float) -> list[Change] | None:
        """Changes after `version`, waiting up to `timeout` for one; [] when none came, None when
        `version` is older than what the feed still holds (start over)."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._version > version, timeout):
                return []
            oldest = self._changes[0].version if self._changes else self._version + 1
            if version + 1 < oldest:
                return None
            return [change for change in self._changes if change.version > version]
