"""The API's context over real parts (manifest folder, sqlite, data plane) and no engine, for
tests that drive the Falcon app in-process."""

from __future__ import annotations

from pathlib import Path

from llorch.api.context import AppContext
from llorch.dataplane.metrics import Metrics
from llorch.dataplane.service import TaskService
from llorch.resources import ServerConfig
from llorch.runtime.registry import ReplicaRegistry
from llorch.store.artifacts import ArtifactStore
from llorch.store.cache import WeightsCache
from llorch.store.db import StateDB
from llorch.store.manifests import ManifestStore


def app_context(
    tmp_path: Path,
    *,
    config: ServerConfig | None = None,
    tokens: tuple[str, ...] = (),
    metrics: Metrics | None = None,
) -> AppContext:
    """Manifests in `tmp_path/manifests`, state in `tmp_path/state.sqlite`, artifact content under
    `tmp_path/artifacts`. The caller stops `ctx.tasks` and closes `ctx.db`."""
    folder = tmp_path / "manifests"
    folder.mkdir()
    store = ManifestStore(folder)
    store.load()
    db = StateDB(tmp_path / "state.sqlite")
    registry = ReplicaRegistry()
    config = config or ServerConfig()
    return AppContext(
        config=config,
        store=store,
        db=db,
        artifacts=ArtifactStore(
            db,
            tmp_path / "artifacts",
            max_bytes=config.artifacts.max_bytes,
            retention=config.artifacts.retention,
        ),
        cache=WeightsCache(db, tmp_path / "cache", config.cache),
        registry=registry,
        tasks=TaskService(store=store, db=db, registry=registry, metrics=metrics),
        tokens=tokens,
        changed=lambda keys: None,
    )
