"""The answer of `GET /v1/gpus`: each GPU as NVML sees it now, and what llorch's replicas reserve
on it, so a person can tell whose VRAM is whose (the web UI's GPU panel shows this)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GpuReservation(_Wire):
    pool: str
    replica: str
    phase: str
    reserved_bytes: int = Field(description="What the replica reserved on this GPU at placement.")


class GpuView(_Wire):
    index: int = Field(description="NVML's index (PCI bus order).")
    uuid: str
    name: str
    total_bytes: int
    used_bytes: int = Field(description="In use by anything on the GPU, llorch or not.")
    free_bytes: int
    utilization_pct: int | None = Field(default=None, description="None where NVML cannot say.")
    temperature_c: int | None = None
    reservations: list[GpuReservation] = Field(default_factory=list)


class GpuList(_Wire):
    gpus: list[GpuView] = Field(
        description="Empty where there is no NVIDIA driver: llorch runs CPU pools only there."
    )
