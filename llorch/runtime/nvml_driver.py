"""The NVIDIA driver as NVML reports it, or why NVML does not load: what `llorchctl doctor` shows
where the GPU inventory (llorch.runtime.gpus) only says "no GPUs"."""

from __future__ import annotations

from dataclasses import dataclass

import pynvml

from llorch.runtime.gpus import nvml_text


@dataclass(frozen=True)
class Driver:
    loaded: bool
    version: str | None = None
    cuda_version: str | None = None
    error: str | None = None


def read_driver() -> Driver:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return Driver(loaded=False, error=str(exc))
    try:
        version = pynvml.nvmlSystemGetDriverVersion()
        cuda = int(pynvml.nvmlSystemGetCudaDriverVersion())
        # NVML encodes CUDA 12.4 as 12040.
        return Driver(
            loaded=True, version=nvml_text(version), cuda_version=f"{cuda // 1000}.{cuda % 1000 // 10}"
        )
    except pynvml.NVMLError as exc:
        return Driver(loaded=True, error=str(exc))
    finally:
        # NVML counts its users: this pairs the init above and leaves the inventory's own in place.
        pynvml.nvmlShutdown()
