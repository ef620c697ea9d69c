"""Keeps a ManifestStore in step with its folder and says which keys changed."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path, PurePath

import watchfiles

from llorch.store.manifests import ManifestError, ManifestStore, is_visible

log = logging.getLogger("llorch.store")

_START_TIMEOUT_S = 5.0
_STOP_TIMEOUT_S = 5.0


class _StopSignal:
    """The stop event watchfiles polls every step; its first poll also tells that the watch is in place."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.watching = threading.Event()

    def is_set(self) -> bool:
        self.watching.set()
        return self.stop.is_set()


class ManifestWatcher:
    def __init__(
        self,
        store: ManifestStore,
        on_change: Callable[[set[str]], None],
        *,
        debounce_ms: int = 300,
        resync_seconds: float = 30.0,
    ) -> None:
        self._store = store
        self._on_change = on_change
        self._debounce_ms = debounce_ms
        self._resync_s = resync_seconds
        self._resync_ms = max(1, int(resync_seconds * 1000))
        # Watch the real location: the paths reported are then under it, whatever name the folder has.
        self._root = Path(os.path.realpath(store.folder))
        self._signal = _StopSignal()
        self._thread: threading.Thread | None = None
        self._logged: set[ManifestError] = set()

    def start(self) -> None:
        """Start watching on a daemon thread; returns once file events are being recorded."""
        if self._thread is not None:
            return
        self._store.folder.mkdir(parents=True, exist_ok=True)
        self._signal = _StopSignal()
        self._thread = threading.Thread(target=self._run, name="llorch-manifest-watch", daemon=True)
        self._thread.start()
        if not self._signal.watching.wait(_START_TIMEOUT_S):
            log.warning(
                "watching %s has not started yet; changes are picked up at the next resync", self._root
            )

    def stop(self) -> None:
        self._signal.stop.set()
        if self._thread is not None:
            self._thread.join(_STOP_TIMEOUT_S)
            self._thread = None

    def _run(self) -> None:
        self._sync(self._store.load)
        while not self._signal.stop.is_set():
            try:
                self._watch()
            except Exception:
                log.exception(
                    "watching %s failed; rescanning every %ss until it works", self._root, self._resync_s
                )
                if not self._signal.stop.wait(self._resync_s):
                    self._sync(self._store.load)

    def _watch(self) -> None:
        self._root.mkdir(parents=True, exist_ok=True)
        for changes in watchfiles.watch(
            self._root,
            watch_filter=self._wanted,
            debounce=self._debounce_ms,
            step=50,
            stop_event=self._signal,
            yield_on_timeout=True,
            rust_timeout=self._resync_ms,
            raise_interrupt=False,
        ):
            if changes:
                self._sync(partial(self._store.reload_files, [Path(path) for _, path in changes]))
            else:
                # A quiet spell: rescan, for events the platform dropped or that came before the watch.
                self._sync(self._store.load)

    def _wanted(self, _change: watchfiles.Change, path: str) -> bool:
        # Folders pass too: one moved in or out comes as a single event for the folder.
        return is_visible(PurePath(os.path.relpath(path, self._root)))

    def _sync(self, reload: Callable[[], set[str]]) -> None:
        try:
            keys = reload()
            self._log_errors()
        except Exception:
            log.exception("reloading manifests from %s failed", self._root)
            return
        if not keys:
            return
        try:
            self._on_change(keys)
        except Exception:
            log.exception("handling the change of %s failed", ", ".join(sorted(keys)))

    def _log_errors(self) -> None:
        current = set(self._store.errors())
        for error in sorted(current - self._logged, key=str):
            log.warning("%s", error)
        for error in sorted(self._logged - current, key=str):
            log.info("fixed: %s", error)
        self._logged = current
