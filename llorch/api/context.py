"""What request handlers may reach: the daemon's parts, handed over once at app creation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llorch.api.auth.keys import KeyRing
from llorch.api.auth.oidc import OidcVerifier
from llorch.dataplane.service import TaskService
from llorch.dataplane.tools import HttpTools
from llorch.resources import ServerConfig
from llorch.resources.diagnostics import Caller, Diagnostics
from llorch.runtime.gpus import GpuInventory
from llorch.runtime.registry import ReplicaRegistry
from llorch.store.artifacts import ArtifactStore
from llorch.store.audit import AuditLog
from llorch.store.cache import WeightsCache
from llorch.store.db import StateDB
from llorch.store.manifests import ManifestStore


@dataclass(frozen=True)
class AppContext:
    config: ServerConfig
    store: ManifestStore
    db: StateDB
    artifacts: ArtifactStore
    cache: WeightsCache
    registry: ReplicaRegistry
    tasks: TaskService
    keys: KeyRing
    audit: AuditLog
    tools: HttpTools
    # Objects the API itself changed (apply, delete): reconcile them now, not at the next file event.
    changed: Callable[[set[str]], None]
    # The machine as llorchctl doctor checks it (llorch.daemon.diagnostics): the API spawns nothing.
    diagnostics: Callable[[Caller], Diagnostics]
    # The GPUs as NVML sees them now (GET /v1/gpus); reading them spawns nothing.
    inventory: GpuInventory
    oidc: OidcVerifier | None = None
