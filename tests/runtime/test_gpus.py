"""GPU inventory: the real NVML one on a box without a driver, its field mapping, and the simulated box."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pynvml
import pytest

from llorch.runtime.gpus import (
    GIB,
    Gpu,
    GpuProcess,
    NvmlInventory,
    SimulatedInventory,
    detect,
    simulated_gpu,
    simulated_home_box,
)
from tests.runtime.nvml_double import FakeNvml, nvml_loads

NO_DRIVER = "no NVIDIA driver/NVML: CPU-only inventory"


@pytest.mark.skipif(nvml_loads(), reason="this machine has an NVIDIA driver")
def test_without_a_driver_the_inventory_is_empty_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    inventory = NvmlInventory()
    with caplog.at_level(logging.INFO, logger="llorch.runtime"):
        assert inventory.gpus() == []
        assert inventory.gpus() == []
    said = [r for r in caplog.records if NO_DRIVER in r.getMessage()]
    assert len(said) == 1
    assert said[0].levelno == logging.INFO
    assert said[0].name == "llorch.runtime"


def test_detect_is_the_nvml_inventory() -> None:
    assert isinstance(detect(), NvmlInventory)


# --- NvmlInventory's mapping, against a stand-in for the NVML library ---------------------------


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    fake = FakeNvml()
    fake.install(lambda name, value: monkeypatch.setattr(pynvml, name, value))
    return fake


def test_nvml_fields_map_onto_gpus_and_unsupported_ones_are_none(fake_nvml: FakeNvml) -> None:
    gpu0, gpu1 = NvmlInventory().gpus()
    assert gpu0 == Gpu(
        index=0,
        uuid="GPU-fake-0",
        name="NVIDIA GeForce RTX 3090",
        total_bytes=24 * GIB,
        free_bytes=23 * GIB,
        used_bytes=GIB,
        utilization_pct=42,
        temperature_c=61,
        processes=(GpuProcess(pid=4242, used_bytes=GIB // 2), GpuProcess(pid=4343, used_bytes=0)),
    )
    assert (gpu1.index, gpu1.name, gpu1.total_bytes) == (1, "NVIDIA GeForce RTX 3060", 12 * GIB)
    assert (gpu1.utilization_pct, gpu1.temperature_c, gpu1.processes) == (None, None, ())


def test_a_gpu_whose_memory_cannot_be_read_is_left_out_and_warned_about_once(
    fake_nvml: FakeNvml, caplog: pytest.LogCaptureFixture
) -> None:
    fake_nvml.broken.add(1)
    inventory = NvmlInventory()
    with caplog.at_level(logging.WARNING, logger="llorch.runtime"):
        assert [g.index for g in inventory.gpus()] == [0]
        assert [g.index for g in inventory.gpus()] == [0]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "GPU1" in warnings[0].getMessage()


def test_nvml_is_initialised_once_across_threads(fake_nvml: FakeNvml) -> None:
    inventory = NvmlInventory()
    results: list[list[Gpu]] = []
    threads = [threading.Thread(target=lambda: results.append(inventory.gpus())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fake_nvml.init_calls == 1
    assert len(results) == 8
    assert all(len(r) == 2 for r in results)


def test_init_failure_is_not_retried(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[Any] = []

    def failing_init() -> None:
        calls.append(1)
        raise pynvml.NVMLError(pynvml.NVML_ERROR_DRIVER_NOT_LOADED)

    monkeypatch.setattr(pynvml, "nvmlInit", failing_init)
    inventory = NvmlInventory()
    with caplog.at_level(logging.INFO, logger="llorch.runtime"):
        assert inventory.gpus() == [] and inventory.gpus() == []
    assert len(calls) == 1
    assert sum(NO_DRIVER in r.getMessage() for r in caplog.records) == 1


# --- the simulated box ----------------------------------------------------------------------------


def test_the_simulated_home_box_is_a_3090_and_a_3060() -> None:
    gpu0, gpu1 = simulated_home_box().gpus()
    assert (gpu0.index, gpu0.name, gpu0.total_bytes, gpu0.free_bytes) == (
        0,
        "NVIDIA GeForce RTX 3090",
        24 * GIB,
        24 * GIB,
    )
    assert (gpu1.index, gpu1.name, gpu1.total_bytes, gpu1.free_bytes) == (
        1,
        "NVIDIA GeForce RTX 3060",
        12 * GIB,
        12 * GIB,
    )
    assert gpu0.uuid.startswith("GPU-sim-3090-") and gpu1.uuid.startswith("GPU-sim-3060-")
    assert gpu0.used_bytes == gpu1.used_bytes == 0


def test_set_used_simulates_another_program_taking_vram() -> None:
    box = simulated_home_box()
    box.set_used(1, 5 * GIB)
    gpu1 = box.gpus()[1]
    assert (gpu1.used_bytes, gpu1.free_bytes, gpu1.total_bytes) == (5 * GIB, 7 * GIB, 12 * GIB)
    assert box.gpus()[0].free_bytes == 24 * GIB  # the other GPU is untouched
    box.set_used(1, 0)
    assert box.gpus()[1].free_bytes == 12 * GIB


def test_set_used_rejects_more_than_the_gpu_has() -> None:
    box = simulated_home_box()
    with pytest.raises(ValueError, match="GPU1"):
        box.set_used(1, 13 * GIB)
    with pytest.raises(ValueError, match="GPU7"):
        box.set_used(7, 0)


def test_a_simulated_inventory_lists_gpus_in_index_order() -> None:
    a = simulated_gpu(1, "B", 8, "GPU-sim-b")
    b = simulated_gpu(0, "A", 16, "GPU-sim-a")
    assert [g.index for g in SimulatedInventory([a, b]).gpus()] == [0, 1]
