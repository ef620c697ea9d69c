"""What a pool's replicas should run now, derived fresh from its spec on every reconcile, and
what keeps the pool from running at all."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llorch.resources import Lifecycle, Model, PoolSpec
from llorch.resources.errors import LlorchError
from llorch.resources.status import is_true
from llorch.runtime.engines.base import EngineAdapter, LaunchRequest, Upstream
from llorch.runtime.vram import (
    CPU_OVERHEAD_BYTES,
    DEFAULT_OVERHEAD_BYTES,
    cache_types_from_args,
    estimate_llamacpp,
    format_bytes,
)
from llorch.store.db import StateDB
from llorch.store.manifests import ManifestStore

AdapterFor = Callable[[str], EngineAdapter]
EngineBinary = Callable[[str], Path]


@dataclass(frozen=True)
class Target:
    spec: PoolSpec
    adapter: EngineAdapter
    template: LaunchRequest | None  # None for an endpoint: nothing to launch
    revision: str
    # What one replica reserves (VRAM on GPUs, host memory on the CPU; 0 when nothing can tell)
    # and how that figure was reached.
    memory_bytes: int
    memory_text: str


@dataclass(frozen=True)
class Blocker:
    """Why the pool cannot run now; replicas already running keep running meanwhile, unless `drain`."""

    reason: str
    message: str
    # When to look again; None: only a change (of the pool, its model, the engine) can help.
    retry_after: float | None
    # Waiting for something that is on its way is ordinary start-up, not trouble.
    warning: bool = True
    # The replicas must stop too (a Retired model): running tasks get until `drain_deadline`
    # (unix seconds; None: supervision.drainGraceSeconds), then end with POOL_DRAINED.
    drain: bool = False
    drain_deadline: float | None = None


class Targets:
    def __init__(
        self, *, store: ManifestStore, db: StateDB, engine_binary: EngineBinary, adapter_for: AdapterFor
    ) -> None:
        self._store = store
        self._db = db
        self._engine_binary = engine_binary
        self._adapter_for = adapter_for

    def resolve(self, pool: str, spec: PoolSpec) -> Target | Blocker:
        """The pool's target, or what blocks it (a spec that cannot become a command line is
        blocked until it is edited)."""
        blocker = self.blocker(spec)
        if blocker is not None:
            return blocker
        try:
            return self.target(pool, spec)
        except ValueError as exc:
            return Blocker("InvalidSpec", str(exc), None)

    def blocker(self, spec: PoolSpec) -> Blocker | None:
        try:
            self._adapter_for(spec.engine)
        except LlorchError as exc:
            return Blocker("UnsupportedEngine", exc.message, None)
        if spec.endpoint is not None:
            return None
        try:
            self._engine_binary(spec.engine)
        except LlorchError as exc:
            return Blocker("EngineNotInstalled", exc.message, 30.0)
        entry = self._store.get(f"Model/{spec.model}")
        if entry is None:
            return Blocker("ModelNotFound", f"no Model named {spec.model!r}", 5.0)
        if isinstance(entry.obj, Model) and entry.obj.spec.lifecycle is Lifecycle.RETIRED:
            message = (
                f"Model {spec.model!r} is Retired: running tasks finish until the deadline, then the "
                "replicas stop; setting it Active starts them again"
            )
            deadline = self._db.model_runtime(spec.model).retire_deadline
            return Blocker("ModelRetired", message, None, drain=True, drain_deadline=deadline)
        model = self._db.model_status(spec.model)
        if model is not None and model.downloading:
            return Blocker("Pending", f"{model.download_text()} of Model {spec.model!r}", 1.0, warning=False)
        if model is None or not is_true(model.conditions, "Ready") or model.resolved_path is None:
            return Blocker("ModelNotReady", f"Model {spec.model!r} is not Ready yet", 1.0, warning=False)
        return None

    def target(self, pool: str, spec: PoolSpec) -> Target:
        """Raises ValueError when the spec cannot be turned into a command line (a KV cache type
        llama-server does not know, say): only an edit of the pool helps."""
        adapter = self._adapter_for(spec.engine)
        if spec.endpoint is not None:
            revision = _hash(("endpoint", spec.endpoint.url, spec.endpoint.served_model, spec.model))
            return Target(spec, adapter, None, revision, 0, "")
        model = self._db.model_status(spec.model)
        assert model is not None and model.resolved_path is not None, "blocker() said the Model is Ready"
        model_path = Path(model.resolved_path)
        template = LaunchRequest(
            binary=self._engine_binary(spec.engine),
            model_path=model_path,
            model_name=spec.model,
            port=0,
            spec=spec,
        )
        launch = adapter.launch(template)
        reload_token = self._db.pool_runtime(pool).reload_token
        revision = _hash((launch.argv, sorted(launch.env.items()), reload_token))
        entry = self._store.get(f"Model/{spec.model}")
        weights_format = entry.obj.spec.format if entry is not None and isinstance(entry.obj, Model) else None
        memory_bytes, memory_text = _memory(spec, model_path, weights_format)
        return Target(spec, adapter, template, revision, memory_bytes, memory_text)


def _memory(spec: PoolSpec, model_path: Path, weights_format: str | None) -> tuple[int, str]:
    if spec.gpus.vram_mib is not None and spec.gpus.count > 0:
        amount = spec.gpus.vram_mib * 1024 * 1024
        return amount, f"{format_bytes(amount)} (set in the pool's gpus.vramMiB)"
    if spec.gpus.count == 0 and (spec.engine != "llamacpp" or weights_format not in (None, "gguf")):
        # Only a GGUF tells its size before it loads; other CPU engines reserve nothing here.
        return 0, ""
    cache_k, cache_v = cache_types_from_args(spec.engine_args)
    estimate = estimate_llamacpp(
        model_path,
        context_total=spec.context * spec.slots,
        cache_type_k=cache_k,
        cache_type_v=cache_v,
        # A CPU process has no CUDA context to pay for; its own heap is small next to the weights.
        overhead_bytes=DEFAULT_OVERHEAD_BYTES if spec.gpus.count else CPU_OVERHEAD_BYTES,
    )
    return estimate.total_bytes, estimate.describe()


def _hash(value: object) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]


def loopback(spec: PoolSpec, port: int) -> Upstream:
    return Upstream(base_url=f"http://127.0.0.1:{port}", model=spec.model)


def endpoint_upstream(spec: PoolSpec) -> Upstream:
    assert spec.endpoint is not None
    headers: tuple[tuple[str, str], ...] = ()
    if spec.endpoint.auth_header_env:
        value = os.environ.get(spec.endpoint.auth_header_env, "")
        if value:
            headers = (("Authorization", value),)
    return Upstream(
        base_url=spec.endpoint.url.rstrip("/"),
        model=spec.endpoint.served_model or spec.model,
        headers=headers,
    )
