"""GPU inventory: what NVML says about each GPU right now, plus a simulated box for tests and demos.

`NvmlInventory` is the real one. On a machine without an NVIDIA driver it reports no GPUs (and says
so once in the log) instead of failing: llorch still runs CPU pools there. `SimulatedInventory` is
the test double: the same interface over GPUs you describe, whose memory use you can change.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

import pynvml

log = logging.getLogger("llorch.runtime")

GIB = 1024**3

T = TypeVar("T")


@dataclass(frozen=True)
class GpuProcess:
    """A process holding memory on a GPU (NVML's compute processes)."""

    pid: int
    used_bytes: int


@dataclass(frozen=True)
class Gpu:
    """One GPU as observed at one moment. `index` is NVML's (PCI bus order)."""

    index: int
    uuid: str
    name: str
    total_bytes: int
    free_bytes: int
    used_bytes: int
    utilization_pct: int | None
    temperature_c: int | None
    processes: tuple[GpuProcess, ...] = ()


class GpuInventory(Protocol):
    def gpus(self) -> list[Gpu]:
        """Every GPU, in index order, observed now."""
        ...


class NvmlInventory:
    """The GPUs NVML reports. Initialises NVML once, on first use, from whichever thread gets there first.

    Rules:
    * NVML cannot start (no driver, no library): no GPUs, logged once at info level, never raised.
    * A field NVML cannot give for a device (utilization or temperature unsupported, process list
      denied): None / empty for that field; the GPU is still listed.
    * The memory numbers are the point of the inventory, so a device whose handle, UUID or memory
      cannot be read is left out (warned once per distinct error) rather than listed with made-up numbers.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready: bool | None = None  # None: not tried yet
        self._warned: set[str] = set()

    def gpus(self) -> list[Gpu]:
        if not self._init():
            return []
        try:
            count = int(pynvml.nvmlDeviceGetCount())
        except pynvml.NVMLError as exc:
            self._warn_once(f"NVML could not count GPUs: {exc}")
            return []
        found = [self._read(i) for i in range(count)]
        return [gpu for gpu in found if gpu is not None]

    def _init(self) -> bool:
        with self._lock:
            if self._ready is None:
                try:
                    pynvml.nvmlInit()
                    self._ready = True
                except pynvml.NVMLError as exc:
                    self._ready = False
                    log.info("no NVIDIA driver/NVML: CPU-only inventory (%s)", exc)
            return self._ready

    def _read(self, index: int) -> Gpu | None:
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            uuid = nvml_text(pynvml.nvmlDeviceGetUUID(handle))
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
        except pynvml.NVMLError as exc:
            self._warn_once(f"NVML could not read GPU{index}, leaving it out: {exc}")
            return None
        name = _optional(lambda: nvml_text(pynvml.nvmlDeviceGetName(handle)))
        return Gpu(
            index=index,
            uuid=uuid,
            name=name or f"GPU{index}",
            total_bytes=int(memory.total),
            free_bytes=int(memory.free),
            used_bytes=int(memory.used),
            utilization_pct=_optional(lambda: int(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)),
            temperature_c=_optional(
                lambda: int(pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU))
            ),
            processes=_optional(lambda: _processes(handle)) or (),
        )

    def _warn_once(self, message: str) -> None:
        # The inventory is polled on every reconcile; a GPU that stays broken should not flood the log.
        with self._lock:
            if message in self._warned:
                return
            self._warned.add(message)
        log.warning("%s", message)


def _optional(read: Callable[[], T]) -> T | None:
    """One per-device field: None when NVML cannot give it (unsupported on this GPU, no permission)."""
    try:
        return read()
    except pynvml.NVMLError:
        return None


def _processes(handle: Any) -> tuple[GpuProcess, ...]:
    # usedGpuMemory is None where the driver will not say (e.g. inside some containers); count it as 0.
    return tuple(
        GpuProcess(pid=int(p.pid), used_bytes=int(p.usedGpuMemory or 0))
        for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
    )


def nvml_text(value: str | bytes) -> str:
    # Older pynvml releases return bytes, newer ones str.
    return value.decode() if isinstance(value, bytes) else value


class SimulatedInventory:
    """A test double: fixed GPUs whose used memory you can change. Not a real GPU in sight."""

    def __init__(self, gpus: Sequence[Gpu]) -> None:
        self._lock = threading.Lock()  # tests change it while a controller thread reads it
        self._gpus = {gpu.index: gpu for gpu in gpus}

    def gpus(self) -> list[Gpu]:
        with self._lock:
            return [self._gpus[i] for i in sorted(self._gpus)]

    def set_used(self, index: int, used_bytes: int) -> None:
        """Simulate another program taking (or giving back) VRAM: used = `used_bytes`, free = the rest."""
        with self._lock:
            gpu = self._gpus.get(index)
            if gpu is None:
                raise ValueError(f"no simulated GPU{index} (have {sorted(self._gpus)})")
            if not 0 <= used_bytes <= gpu.total_bytes:
                raise ValueError(f"GPU{index} has {gpu.total_bytes} bytes; cannot use {used_bytes}")
            self._gpus[index] = replace(gpu, used_bytes=used_bytes, free_bytes=gpu.total_bytes - used_bytes)


def simulated_gpu(index: int, name: str, total_gib: int, uuid: str) -> Gpu:
    """An idle simulated GPU: everything free, cool, nothing running."""
    total = total_gib * GIB
    return Gpu(
        index=index,
        uuid=uuid,
        name=name,
        total_bytes=total,
        free_bytes=total,
        used_bytes=0,
        utilization_pct=0,
        temperature_c=35,
    )


def simulated_home_box() -> SimulatedInventory:
    """The reference workstation, simulated: an RTX 3090 (24 GiB, GPU0) and an RTX 3060 (12 GiB, GPU1)."""
    return SimulatedInventory(
        [
            simulated_gpu(0, "NVIDIA GeForce RTX 3090", 24, "GPU-sim-3090-0000-0000-000000000000"),
            simulated_gpu(1, "NVIDIA GeForce RTX 3060", 12, "GPU-sim-3060-0000-0000-000000000001"),
        ]
    )


def detect() -> GpuInventory:
    """The real inventory. It reports no GPUs (it does not fail) where there is no NVIDIA driver."""
    return NvmlInventory()
