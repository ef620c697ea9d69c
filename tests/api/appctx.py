"""The API's context over real parts (manifest folder, sqlite, data plane) and no engine, for
tests that drive the Falcon app in-process."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import falcon
import waitress
from waitress import wasyncore

from llorch.api.auth.keys import KeyRing
from llorch.api.auth.oidc import OidcVerifier
from llorch.api.context import AppContext
from llorch.daemon.diagnostics import Checkup
from llorch.dataplane.metrics import Metrics
from llorch.dataplane.service import TaskService
from llorch.dataplane.tools import HttpTools
from llorch.resources import ServerConfig
from llorch.runtime.errors import ProvisionError
from llorch.runtime.gpus import GpuInventory, detect
from llorch.runtime.outbound.fetch import OutboundClient
from llorch.runtime.provision import find_engine, find_llama_server
from llorch.runtime.registry import ReplicaRegistry
from llorch.store.artifacts import ArtifactStore
from llorch.store.audit import AuditLog
from llorch.store.cache import WeightsCache
from llorch.store.db import StateDB
from llorch.store.manifests import ManifestStore


def engine_binary(engine: str) -> Path:
    """As llorchd finds engines, without building one: the cached llama-server, others on PATH."""
    if engine != "llamacpp":
        return find_engine(engine)
    found = find_llama_server()
    if found is None:
        raise ProvisionError("no llama-server in the cache")
    return found


def app_context(
    tmp_path: Path,
    *,
    config: ServerConfig | None = None,
    tokens: tuple[str, ...] = (),
    metrics: Metrics | None = None,
    outbound: OutboundClient | None = None,
    oidc: OidcVerifier | None = None,
    inventory: GpuInventory | None = None,
) -> AppContext:
    """Manifests in `tmp_path/manifests`, state (and the audit trail) in `tmp_path/state.sqlite`,
    artifact content under `tmp_path/artifacts`; `tokens` are legacy admin tokens, `config`'s
    auth.keys named keys; `outbound` makes the HTTP tools' calls; `inventory`: the GPUs (this
    machine's NVML when not given). The caller stops `ctx.tasks` and closes `ctx.db` and
    `ctx.audit` (`close`)."""
    folder = tmp_path / "manifests"
    folder.mkdir()
    store = ManifestStore(folder)
    store.load()
    db = StateDB(tmp_path / "state.sqlite")
    audit = AuditLog(tmp_path / "state.sqlite")
    registry = ReplicaRegistry()
    config = config or ServerConfig()
    gpus = inventory if inventory is not None else detect()
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
        tasks=TaskService(store=store, db=db, registry=registry, metrics=metrics, audit=audit),
        keys=KeyRing(config.auth.keys, tokens),
        audit=audit,
        tools=HttpTools(store, audit, outbound or OutboundClient(), max_in_flight=4),
        changed=lambda keys: None,
        diagnostics=Checkup(
            config=lambda: config,
            store=store,
            inventory=gpus,
            folders={"state": tmp_path, "cache": tmp_path / "cache"},
            engine_binary=engine_binary,
        ),
        inventory=gpus,
        oidc=oidc,
    )


def close(ctx: AppContext) -> None:
    ctx.tasks.stop()
    ctx.audit.close()
    ctx.db.close()


@contextlib.contextmanager
def served(app: falcon.App, *, threads: int = 4) -> Iterator[str]:
    """The app over real loopback HTTP, as llorchd serves it (waitress, lookahead 1 so a client
    that leaves is seen); its base URL. It stops as llorchd's own stop does: the handler threads
    finish, then every socket of its map closes at once (the listener, the trigger, open
    connections), so the loop thread ends and no late answer meets a half-closed server."""
    sockets: dict[int, Any] = {}
    server = waitress.create_server(
        app, host="127.0.0.1", port=0, threads=threads, channel_request_lookahead=1, map=sockets
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"  # type: ignore[union-attr]
    finally:
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
        # On the loop's own thread, between two selects: it is then left with no socket and ends.
        server.trigger.pull_trigger(lambda: wasyncore.close_all(sockets))  # type: ignore[union-attr]
        thread.join(5)
