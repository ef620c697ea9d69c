"""What llorchd does now and then besides reconciling: pool purges once their replicas have
stopped, and, every `PRUNE_EVERY_SECONDS`, the weights cache held to `cache.maxBytes` and the
artifact store to `artifacts.retention`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from llorch.controllers.cache_references import cache_references
from llorch.resources import Model
from llorch.runtime.downloads import download_for
from llorch.store.artifacts import ArtifactStore
from llorch.store.cache import WeightsCache
from llorch.store.db import StateDB
from llorch.store.manifests import ManifestStore

log = logging.getLogger("llorch.controllers")

PRUNE_EVERY_SECONDS = 600.0
TICK_SECONDS = 2.0


class Housekeeping:
    def __init__(
        self,
        *,
        store: ManifestStore,
        db: StateDB,
        cache: WeightsCache,
        artifacts: ArtifactStore,
        enqueue: Callable[[str], None],
    ) -> None:
        """`enqueue(key)`: reconcile that object soon (a Model whose weights a purge removed)."""
        self._store = store
        self._db = db
        self._cache = cache
        self._artifacts = artifacts
        self._enqueue = enqueue
        self._next_prune = 0.0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="housekeeping", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(10)

    def _loop(self) -> None:
        while not self._stopping.wait(TICK_SECONDS):
            try:
                self.tick()
            except Exception:  # the loop must outlive one bad pass; the next one tries again
                log.exception("housekeeping failed")

    def tick(self) -> None:
        self.purge_stopped_pools()
        now = time.time()
        if now < self._next_prune:
            return
        self._next_prune = now + PRUNE_EVERY_SECONDS
        pruned = self._cache.prune(cache_references(self._store, self._db, self._cache), everything=False)
        for entry in pruned.removed:
            log.info(
                "cache: removed %s (%d bytes, last used %.0f)", entry.name, entry.size_bytes, entry.last_used
            )
        for record in self._artifacts.collect():
            log.info(
                "artifacts: removed %s (%s, %d bytes) by artifacts.retention",
                record.id,
                record.kind,
                record.size_bytes,
            )

    def purge_stopped_pools(self) -> None:
        """Remove the weights a purge named, once the pool it was asked of runs no replica."""
        for pool, request in self._db.purges().items():
            status = self._db.pool_status(pool)
            if self._store.get(f"Pool/{pool}") is not None and status is not None and status.replica_statuses:
                continue
            removed = []
            for name in request.get("purge_models", []):
                entry = self._store.get(f"Model/{name}")
                if entry is None or not isinstance(entry.obj, Model):
                    continue
                download = download_for(entry.obj.spec.source, self._cache.root, entry.obj.spec.digest)
                folder = self._cache.entry_of(download.target) if download is not None else None
                if download is None or folder is None:
                    continue
                if request.get("delete_cache_dirs"):
                    self._cache.remove(folder)
                else:
                    download.target.unlink(missing_ok=True)
                removed.append(name)
                self._enqueue(f"Model/{name}")
            self._db.delete_purge(pool)
            what = ", ".join(removed) or "no cached weights"
            self._db.record_event(f"Pool/{pool}", "Normal", "Purged", f"replicas stopped; removed {what}")
            log.info("pool %s purged: %s", pool, what)
