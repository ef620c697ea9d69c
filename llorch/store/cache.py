"""The weights cache: the folders downloads land in, how big each is, when it was last used, and
which of them may go when the disk is short.

One entry is one folder (`models/by-url/<hash>/`, `models/huggingface/<repo>--<revision>/`) with
the weights file and any partial download beside it. What references an entry is decided above
this layer (a Model's source names the folder it downloads to); here it comes in as `Reference`s.
Nothing an Active Model references is ever removed. Weights no Model references, and those of a
Model Retired for longer than `cache.retiredGraceSeconds`, are removed least recently used first:
when the cache is over `cache.maxBytes` (until it is under again), or all of them on `prune`.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from llorch.resources.config import Cache
from llorch.store.db import StateDB

# The folders under the cache root whose children are entries (what llorch downloads).
ENTRY_PARENTS = ("models/by-url", "models/huggingface")

EntryState = Literal["active", "retired", "unreferenced"]


@dataclass(frozen=True)
class Reference:
    """The Models whose source downloads into one entry."""

    models: tuple[str, ...]
    active: bool
    """Some of them is Active: the entry is never removed."""
    retired_since: float | None = None
    """All of them are Retired, the last since then (unix seconds)."""


@dataclass(frozen=True)
class CacheEntry:
    name: str
    """Relative to the cache root, e.g. `models/by-url/3f2a9c0d1e2b4a5c`."""
    size_bytes: int
    last_used: float
    """Unix seconds: when an Active Model last resolved to it, else its newest file's mtime."""
    models: tuple[str, ...]
    state: EntryState
    removable: bool
    """Whether a prune may remove it now."""


@dataclass(frozen=True)
class PruneResult:
    removed: list[CacheEntry]
    total_bytes: int
    """The cache's size before."""
    max_bytes: int | None

    @property
    def freed_bytes(self) -> int:
        return sum(entry.size_bytes for entry in self.removed)


class WeightsCache:
    def __init__(self, db: StateDB, root: Path, settings: Cache) -> None:
        self._db = db
        self.root = root
        self._settings = settings
        # A prune and a purge must not remove the same folder under each other.
        self._lock = threading.Lock()

    def entry_of(self, path: Path) -> str | None:
        """The entry holding `path`, None when it is not in the cache (a user's own file)."""
        try:
            parts = path.resolve().relative_to(self.root.resolve()).parts
        except ValueError:
            return None
        if len(parts) < 4 or "/".join(parts[:2]) not in ENTRY_PARENTS:
            return None
        return "/".join(parts[:3])

    def touch(self, path: Path) -> None:
        """An Active Model uses `path` now (a no-op for files outside the cache)."""
        entry = self.entry_of(path)
        if entry is not None:
            self._db.touch_cache_entry(entry, time.time())

    def entries(self, references: Mapping[str, Reference]) -> list[CacheEntry]:
        """Every entry on disk, least recently used first."""
        uses = self._db.cache_uses()
        now = time.time()
        found = []
        for parent in ENTRY_PARENTS:
            folder = self.root / parent
            if not folder.is_dir():
                continue
            for child in sorted(folder.iterdir()):
                if not child.is_dir() or child.is_symlink():
                    continue
                name = f"{parent}/{child.name}"
                size, newest = _measure(child)
                reference = references.get(name)
                state: EntryState
                if reference is None:
                    state, removable = "unreferenced", True
                elif reference.active:
                    state, removable = "active", False
                else:
                    since = reference.retired_since
                    state = "retired"
                    removable = since is not None and now - since >= self._settings.retired_grace_seconds
                models = reference.models if reference is not None else ()
                found.append(CacheEntry(name, size, uses.get(name, newest), models, state, removable))
        return sorted(found, key=lambda entry: (entry.last_used, entry.name))

    def prune(
        self, references: Mapping[str, Reference], *, everything: bool, dry_run: bool = False
    ) -> PruneResult:
        """Remove removable entries, least recently used first: with `everything` all of them,
        else only while the cache is over `cache.maxBytes`."""
        with self._lock:
            entries = self.entries(references)
            total = sum(entry.size_bytes for entry in entries)
            limit = self._settings.max_bytes
            removed: list[CacheEntry] = []
            left = total
            for entry in entries:
                if not everything and (limit is None or left <= limit):
                    break
                if not entry.removable:
                    continue
                removed.append(entry)
                left -= entry.size_bytes
            if not dry_run:
                for entry in removed:
                    self._remove(entry.name)
            return PruneResult(removed, total, limit)

    def remove(self, name: str) -> None:
        """Remove one entry whatever references it (a purge asked for it by name)."""
        with self._lock:
            self._remove(name)

    def _remove(self, name: str) -> None:
        folder = self.root / name
        # The forgotten row first: an entry half removed is then seen as unused, never as fresh.
        self._db.forget_cache_entry(name)
        shutil.rmtree(folder, ignore_errors=True)


def _measure(folder: Path) -> tuple[int, float]:
    """Bytes under `folder` (links not followed) and the newest mtime there."""
    size, newest = 0, 0.0
    for dirpath, _, filenames in os.walk(folder):
        for filename in filenames:
            try:
                stat = os.lstat(os.path.join(dirpath, filename))
            except FileNotFoundError:
                continue
            size += stat.st_size
            newest = max(newest, stat.st_mtime)
    return size, newest
