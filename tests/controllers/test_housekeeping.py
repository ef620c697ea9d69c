"""Housekeeping over a real store, sqlite and cache folder: a purge waits for the pool's replicas
to stop, then removes the named Models' cached weights (or their whole folders)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llorch.controllers.housekeeping import Housekeeping
from llorch.resources.config import Cache
from llorch.resources.status import PoolStatus, ReplicaStatus
from llorch.runtime.downloads import url_target
from llorch.store.artifacts import ArtifactStore
from llorch.store.cache import WeightsCache
from llorch.store.db import StateDB
from llorch.store.manifests import ManifestStore

URL = "http://127.0.0.1:9/w.gguf"


@pytest.fixture
def parts(tmp_path: Path) -> tuple[Housekeeping, StateDB, Path, list[str]]:
    folder = tmp_path / "manifests"
    folder.mkdir()
    model = {
        "apiVersion": "llorch.dev/v1",
        "kind": "Model",
        "metadata": {"name": "m"},
        "spec": {"source": {"url": URL}},
    }
    pool = {"apiVersion": "llorch.dev/v1", "kind": "Pool", "metadata": {"name": "p"}, "spec": {"model": "m"}}
    (folder / "m.yaml").write_text(yaml.safe_dump_all([model, pool]))
    store = ManifestStore(folder)
    store.load()
    db = StateDB(tmp_path / "state.sqlite")
    root = tmp_path / "cache"
    target = url_target(URL, root)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"GGUF")
    (target.parent / ".w.gguf.partial").write_bytes(b"GG")
    enqueued: list[str] = []
    housekeeping = Housekeeping(
        store=store,
        db=db,
        cache=WeightsCache(db, root, Cache()),
        artifacts=ArtifactStore(db, tmp_path / "artifacts", max_bytes=1024),
        enqueue=enqueued.append,
    )
    return housekeeping, db, target, enqueued


def test_a_purge_waits_for_the_replicas_then_removes_the_weights(
    parts: tuple[Housekeeping, StateDB, Path, list[str]],
) -> None:
    housekeeping, db, target, enqueued = parts
    running = ReplicaStatus(id="p-0", index=0, revision="r", phase="Terminating")
    db.put_status("Pool/p", PoolStatus(replica_statuses=[running]))
    db.save_purge("p", {"purge_models": ["m"], "delete_cache_dirs": False}, 0.0)
    housekeeping.purge_stopped_pools()
    assert target.exists(), "a replica still runs"
    db.put_status("Pool/p", PoolStatus())
    housekeeping.purge_stopped_pools()
    assert not target.exists() and (target.parent / ".w.gguf.partial").exists()
    assert enqueued == ["Model/m"] and db.purges() == {}
    assert db.events("Pool/p")[-1].reason == "Purged"


def test_delete_cache_dirs_removes_the_whole_folder(
    parts: tuple[Housekeeping, StateDB, Path, list[str]],
) -> None:
    housekeeping, db, target, _ = parts
    db.save_purge("p", {"purge_models": ["m"], "delete_cache_dirs": True}, 0.0)
    housekeeping.purge_stopped_pools()
    assert not target.parent.exists()
