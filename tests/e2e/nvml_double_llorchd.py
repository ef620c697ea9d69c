"""`python -m tests.e2e.nvml_double_llorchd ARGS`: llorchd, with the NVML double
(tests/runtime/nvml_double.py) standing in for an NVIDIA driver where this machine has none, so
the GPU metrics carry samples. Where NVML works (a GPU box), the real GPUs are reported."""

from __future__ import annotations

import pynvml

from llorch.daemon.main import main
from tests.runtime.nvml_double import FakeNvml, nvml_loads

if __name__ == "__main__":
    if not nvml_loads():
        FakeNvml().install(lambda name, value: setattr(pynvml, name, value))
    main()
