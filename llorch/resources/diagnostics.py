"""The answer of `GET /v1/diagnostics`: what `llorchctl doctor` checks on the server's side (who
the caller is, the GPU driver, the engine binaries, free disk), one pydantic model each so that
`schema/` carries it and the client reads the same shape."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    # An older client reads a newer server's answer: fields it does not know are skipped.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Caller(_Wire):
    identity: str = Field(
        description="`token:<name>`, `oidc:<sub>`, or `anonymous` (no credential configured)."
    )
    scopes: list[str]


class GpuDevice(_Wire):
    index: int
    name: str
    uuid: str
    total_bytes: int
    free_bytes: int


class GpuReport(_Wire):
    nvml: bool = Field(description="NVML loaded: the NVIDIA driver and its management library are there.")
    driver_version: str | None = None
    cuda_version: str | None = Field(default=None, description="The newest CUDA the driver runs, e.g. 12.4.")
    error: str | None = Field(default=None, description="Why NVML did not load or answer.")
    devices: list[GpuDevice] = Field(default_factory=list)


class EngineReport(_Wire):
    engine: str
    pools: list[str] = Field(description="Pools that run on this engine (llamacpp is always checked).")
    binary: str | None = None
    version: str | None = None
    backend: str | None = Field(
        default=None,
        description="llamacpp: cpu or cuda, as engines.llamacpp.backend says (a configured binary as it is).",
    )
    error: str | None = Field(default=None, description="Why the binary cannot be found or run.")


class DiskReport(_Wire):
    name: str = Field(description="state | cache")
    path: str
    free_bytes: int
    total_bytes: int


class Diagnostics(_Wire):
    caller: Caller
    gpu: GpuReport
    gpu_pools: list[str] = Field(description="Pools that ask for GPUs (gpus.count > 0).")
    engines: list[EngineReport]
    disks: list[DiskReport]
