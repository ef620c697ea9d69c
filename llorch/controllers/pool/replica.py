"""One replica as its controller tracks it between reconciles, and how it shows in status."""

from __future__ import annotations

from dataclasses import dataclass, field

from llorch.resources.status import GpuRef, ReplicaPhase, ReplicaStatus, stamp
from llorch.runtime.engines.base import EngineAdapter, GpuAssignment, LaunchRequest, Upstream
from llorch.runtime.gpus import Gpu
from llorch.runtime.process import Worker


@dataclass
class ReplicaState:
    id: str
    index: int
    revision: str
    template: LaunchRequest | None  # None for an endpoint replica: nothing to launch
    adapter: EngineAdapter
    upstream: Upstream | None = None
    worker: Worker | None = None
    gpus: tuple[Gpu, ...] = ()
    assignment: GpuAssignment = field(default_factory=GpuAssignment)
    vram_per_gpu: tuple[int, ...] = ()
    # What it reserves: its VRAM over `gpus`, or host memory when it runs on the CPU.
    memory_bytes: int = 0
    phase: ReplicaPhase = "Pending"
    reason: str = ""
    restarts: int = 0
    last_error: str = ""
    last_exit: str = ""
    log_tail: list[str] = field(default_factory=list)
    next_start_at: float = 0.0
    ready_at: float | None = None
    ever_ready: bool = False
    liveness_failures: int = 0
    drain_deadline: float | None = None
    rollout_failure: str = ""
    engine_version: str | None = None
    # Per sequence, as the engine reports it once Ready; None until then or when it does not say.
    context: int | None = None

    @property
    def port(self) -> int:
        return self.template.port if self.template is not None else 0

    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.alive

    def status(self, slots: int, last_used: float | None = None) -> ReplicaStatus:
        worker = self.worker
        return ReplicaStatus(
            id=self.id,
            index=self.index,
            revision=self.revision,
            phase=self.phase,
            reason=self.reason or None,
            pid=worker.pid if worker is not None and worker.alive else None,
            port=self.port or None,
            url=self.upstream.base_url if self.upstream is not None else None,
            gpus=[GpuRef(index=g.index, uuid=g.uuid, name=g.name) for g in self.gpus],
            vram_bytes=list(self.vram_per_gpu),
            restarts=self.restarts,
            last_exit=self.last_exit or None,
            last_error=self.last_error or None,
            log_tail=self.log_tail,
            started_at=stamp(worker.started_at) if worker is not None else None,
            ready_at=stamp(self.ready_at) if self.ready_at is not None else None,
            adopted=worker.adopted if worker is not None else False,
            engine_version=self.engine_version,
            context=self.context,
            log_path=str(worker.log_path) if worker is not None else None,
            slots=slots,
            memory_bytes=self.memory_bytes,
            last_used=stamp(last_used) if last_used is not None else None,
        )
