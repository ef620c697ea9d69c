"""ManifestWatcher against a real folder and real file events."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from llorch.resources import Pool
from llorch.store.manifests import ManifestStore
from llorch.store.watch import ManifestWatcher

DEADLINE_S = 10.0


def pool(name: str = "demo", replicas: int = 1) -> str:
    return (
        "apiVersion: llorch.dev/v1\nkind: Pool\nmetadata:\n"
        f"  name: {name}\nspec:\n  model: tiny-llama\n  replicas: {replicas}\n"
    )


def save(path: Path, text: str) -> None:
    """Save as most editors do, in one rename, so that no half-written state is seen."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text)
    os.replace(temp, path)


def wait_until(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def replicas(store: ManifestStore, key: str = "Pool/demo") -> int:
    entry = store.get(key)
    assert entry is not None and isinstance(entry.obj, Pool)
    return entry.obj.spec.replicas


class Changes:
    """Collects on_change calls from the watcher thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[set[str]] = []

    def __call__(self, keys: set[str]) -> None:
        with self._lock:
            self.calls.append(set(keys))

    def seen(self, key: str) -> bool:
        with self._lock:
            return any(key in call for call in self.calls)

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()


@pytest.fixture
def store(tmp_path: Path) -> ManifestStore:
    return ManifestStore(tmp_path / "manifests")


@pytest.fixture
def changes() -> Changes:
    return Changes()


@pytest.fixture
def watcher(store: ManifestStore, changes: Changes) -> Iterator[ManifestWatcher]:
    watcher = ManifestWatcher(store, changes, debounce_ms=50)
    watcher.start()
    yield watcher
    watcher.stop()


def test_start_creates_a_missing_folder(store: ManifestStore, watcher: ManifestWatcher) -> None:
    assert store.folder.is_dir()


def test_create_modify_and_delete_are_reported(
    store: ManifestStore, changes: Changes, watcher: ManifestWatcher
) -> None:
    path = store.folder / "pool.yaml"
    path.write_text(pool())
    assert wait_until(lambda: changes.seen("Pool/demo"))
    assert replicas(store) == 1

    changes.clear()
    path.write_text(pool(replicas=2))
    assert wait_until(lambda: changes.seen("Pool/demo"))
    assert replicas(store) == 2

    changes.clear()
    path.unlink()
    assert wait_until(lambda: changes.seen("Pool/demo"))
    assert store.keys() == set()


def test_files_in_new_subfolders_are_seen(
    store: ManifestStore, changes: Changes, watcher: ManifestWatcher
) -> None:
    (store.folder / "team" / "pools").mkdir(parents=True)
    (store.folder / "team" / "pools" / "a.yml").write_text(pool("a"))
    assert wait_until(lambda: changes.seen("Pool/a"))


def test_an_invalid_save_keeps_the_object(
    store: ManifestStore, changes: Changes, watcher: ManifestWatcher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="llorch.store")
    path = store.folder / "pool.yaml"
    path.write_text(pool())
    assert wait_until(lambda: changes.seen("Pool/demo"))

    changes.clear()
    save(path, pool(replicas=-1))

    def warnings() -> list[str]:
        return [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]

    assert wait_until(lambda: warnings() != [])
    assert warnings() == ["pool.yaml:7: spec.replicas: Input should be greater than or equal to 0"]
    assert replicas(store) == 1
    assert changes.calls == []

    save(path, pool(replicas=3))
    assert wait_until(lambda: changes.seen("Pool/demo"))
    assert replicas(store) == 3 and store.errors() == []
    assert wait_until(
        lambda: any(record.getMessage().startswith("fixed: pool.yaml:7") for record in caplog.records)
    )


def test_an_apply_is_not_reported_twice(
    store: ManifestStore, changes: Changes, watcher: ManifestWatcher
) -> None:
    store.apply_text(pool())
    # Events arrive in order: once b is reported, the apply's own event has been handled too.
    (store.folder / "b.yaml").write_text(pool("b"))
    assert wait_until(lambda: changes.seen("Pool/b"))
    assert not changes.seen("Pool/demo")


def test_a_failing_callback_does_not_stop_the_watcher(store: ManifestStore) -> None:
    calls: list[set[str]] = []

    def on_change(keys: set[str]) -> None:
        calls.append(keys)
        if len(calls) == 1:
            raise RuntimeError("boom")

    watcher = ManifestWatcher(store, on_change, debounce_ms=50)
    watcher.start()
    try:
        (store.folder / "a.yaml").write_text(pool("a"))
        assert wait_until(lambda: len(calls) == 1)
        (store.folder / "b.yaml").write_text(pool("b"))
        assert wait_until(lambda: {"Pool/b"} in calls)
    finally:
        watcher.stop()


def test_the_periodic_resync_catches_what_no_event_told(
    tmp_path: Path, store: ManifestStore, changes: Changes
) -> None:
    store.folder.mkdir()
    path = store.folder / "pool.yaml"
    path.write_text(pool())
    # A hard link outside the folder: writing through it changes the file without an event in the folder.
    outside = tmp_path / "link.yaml"
    os.link(path, outside)
    watcher = ManifestWatcher(store, changes, debounce_ms=50, resync_seconds=0.3)
    watcher.start()
    try:
        assert wait_until(lambda: changes.seen("Pool/demo"))
        changes.clear()
        with outside.open("r+") as handle:
            handle.write(pool(replicas=7))
        assert wait_until(lambda: changes.seen("Pool/demo"))
        assert replicas(store) == 7
    finally:
        watcher.stop()


def test_the_initial_state_is_reported(store: ManifestStore, changes: Changes) -> None:
    store.folder.mkdir()
    (store.folder / "pool.yaml").write_text(pool())
    watcher = ManifestWatcher(store, changes, debounce_ms=50)
    watcher.start()
    try:
        assert wait_until(lambda: changes.seen("Pool/demo"))
    finally:
        watcher.stop()


def test_stop_returns_promptly(store: ManifestStore, changes: Changes) -> None:
    watcher = ManifestWatcher(store, changes, debounce_ms=50, resync_seconds=60)
    watcher.start()
    threads = {thread.name for thread in threading.enumerate()}
    assert "llorch-manifest-watch" in threads
    started = time.monotonic()
    watcher.stop()
    assert time.monotonic() - started < 1.0
    assert "llorch-manifest-watch" not in {thread.name for thread in threading.enumerate()}
