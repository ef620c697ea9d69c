"""What `GET /v1/diagnostics` reports of this machine: the GPU driver, the engine binaries the
pools need, and free disk where llorchd writes. Read fresh on every call: a doctor is run when
something is wrong, and a cached answer would hide what changed."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from llorch.resources import Pool, ServerConfig
from llorch.resources.diagnostics import Caller, Diagnostics, DiskReport, EngineReport, GpuDevice, GpuReport
from llorch.runtime.errors import ProvisionError
from llorch.runtime.gpus import GpuInventory
from llorch.runtime.nvml_driver import read_driver
from llorch.runtime.provision import LAUNCHERS, llama_server_version
from llorch.store.manifests import ManifestStore


class Checkup:
    def __init__(
        self,
        *,
        config: Callable[[], ServerConfig],
        store: ManifestStore,
        inventory: GpuInventory,
        folders: dict[str, Path],
        engine_binary: Callable[[str], Path],
    ) -> None:
        """`config`: the settings in force (a reload changes them); `folders`: name → path of
        where llorchd writes; `engine_binary`: the launcher llorchd uses for an engine (raises
        ProvisionError when there is none)."""
        self._config = config
        self._store = store
        self._inventory = inventory
        self._folders = folders
        self._engine_binary = engine_binary

    def __call__(self, caller: Caller) -> Diagnostics:
        pools = [e.obj for e in self._store.entries("Pool") if isinstance(e.obj, Pool)]
        spawned = [p for p in pools if p.spec.endpoint is None]
        return Diagnostics(
            caller=caller,
            gpu=self._gpu(),
            gpu_pools=sorted(p.metadata.name for p in spawned if p.spec.gpus.count > 0),
            engines=[self._engine(engine, spawned) for engine in ("llamacpp", *LAUNCHERS)],
            disks=[_disk(name, path) for name, path in self._folders.items()],
        )

    def _gpu(self) -> GpuReport:
        driver = read_driver()
        devices = [
            GpuDevice(
                index=g.index, name=g.name, uuid=g.uuid, total_bytes=g.total_bytes, free_bytes=g.free_bytes
            )
            for g in self._inventory.gpus()
        ]
        return GpuReport(
            nvml=driver.loaded,
            driver_version=driver.version,
            cuda_version=driver.cuda_version,
            error=driver.error,
            devices=devices,
        )

    def _engine(self, engine: str, pools: list[Pool]) -> EngineReport:
        users = sorted(p.metadata.name for p in pools if p.spec.engine.value == engine)
        backend = self._config().engines.llamacpp.backend if engine == "llamacpp" else None
        if engine != "llamacpp" and not users:
            # Not installed is no fault for an engine no pool uses: looking would only add noise.
            return EngineReport(engine=engine, pools=users)
        try:
            binary = self._engine_binary(engine)
            version = llama_server_version(binary) if engine == "llamacpp" else None
        except ProvisionError as exc:
            return EngineReport(engine=engine, pools=users, backend=backend, error=exc.message)
        return EngineReport(engine=engine, pools=users, binary=str(binary), version=version, backend=backend)


def _disk(name: str, path: Path) -> DiskReport:
    usage = shutil.disk_usage(_existing(path))
    return DiskReport(name=name, path=str(path), free_bytes=usage.free, total_bytes=usage.total)


def _existing(path: Path) -> Path:
    """The folder itself, or its nearest existing parent: where it will be made counts the same."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
