"""A test double for the NVML library (no NVIDIA driver exists here): pynvml's functions,
answering for two GPUs, a full-featured RTX 3090 and an RTX 3060 that supports neither
utilization nor temperature. Tests install it with monkeypatch; tests/e2e/nvml_double_llorchd.py
installs it in a llorchd process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pynvml

from llorch.runtime.gpus import GIB


def nvml_loads() -> bool:
    """Whether the real NVML library and driver are there."""
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    pynvml.nvmlShutdown()
    return True


@dataclass
class _Memory:
    total: int
    free: int
    used: int


@dataclass
class _Utilization:
    gpu: int
    memory: int


@dataclass
class _Process:
    pid: int
    usedGpuMemory: int | None  # NVML's field name


class FakeNvml:
    """Two devices: a full-featured 3090 and a 3060 that supports neither utilization nor temperature."""

    def __init__(self) -> None:
        self.init_calls = 0
        self.broken: set[int] = set()

    def install(self, setattr_: Callable[[str, Any], None]) -> None:
        """Replace pynvml's functions with this double's, through `setattr_(name, function)`."""
        for name in (
            "nvmlInit",
            "nvmlDeviceGetCount",
            "nvmlDeviceGetHandleByIndex",
            "nvmlDeviceGetUUID",
            "nvmlDeviceGetName",
            "nvmlDeviceGetMemoryInfo",
            "nvmlDeviceGetUtilizationRates",
            "nvmlDeviceGetTemperature",
            "nvmlDeviceGetComputeRunningProcesses",
        ):
            setattr_(name, getattr(self, name))

    def nvmlInit(self) -> None:
        self.init_calls += 1

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetUUID(self, handle: int) -> bytes:
        return f"GPU-fake-{handle}".encode()  # older pynvml returns bytes

    def nvmlDeviceGetName(self, handle: int) -> str:
        return ["NVIDIA GeForce RTX 3090", "NVIDIA GeForce RTX 3060"][handle]

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> _Memory:
        if handle in self.broken:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        total = [24, 12][handle] * GIB
        return _Memory(total=total, free=total - GIB, used=GIB)

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> _Utilization:
        if handle == 1:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return _Utilization(gpu=42, memory=10)

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        assert sensor == pynvml.NVML_TEMPERATURE_GPU
        if handle == 1:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return 61

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[_Process]:
        if handle == 1:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NO_PERMISSION)
        return [_Process(pid=4242, usedGpuMemory=GIB // 2), _Process(pid=4343, usedGpuMemory=None)]
