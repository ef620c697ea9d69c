"""The driver as NVML reports it, on whatever this machine has (a GPU box or none)."""

from __future__ import annotations

import re

from llorch.runtime.gpus import NvmlInventory
from llorch.runtime.nvml_driver import read_driver


def test_the_driver_or_why_there_is_none() -> None:
    driver = read_driver()
    if driver.loaded:
        assert driver.version and re.fullmatch(r"\d+\.\d+", driver.cuda_version or ""), driver
    else:
        assert driver.error, "a machine without NVML says why (the library or the driver is missing)"
        assert NvmlInventory().gpus() == []


def test_reading_the_driver_leaves_the_inventory_working() -> None:
    inventory = NvmlInventory()
    before = inventory.gpus()
    read_driver()
    assert [g.uuid for g in inventory.gpus()] == [g.uuid for g in before]
