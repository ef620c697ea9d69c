"""Each adapter's command line and environment, argument by argument, for CPU, 1-GPU and 2-GPU pools."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psutil
import pytest

from llorch.resources import PoolSpec
from llorch.runtime.engines.base import GpuAssignment, LaunchRequest
from llorch.runtime.engines.llamacpp import LlamaCpp, cpu_threads
from llorch.runtime.engines.tgi import Tgi, master_port
from llorch.runtime.engines.triton import Triton
from llorch.runtime.engines.vllm import VLlm, gpu_memory_utilization

CPU = GpuAssignment()
ONE_GPU = GpuAssignment(indexes=(1,), tensor_split=(1.0,))
TWO_GPUS = GpuAssignment(indexes=(0, 1), tensor_split=(0.67, 0.33))


def request(engine: str, binary: str, assignment: GpuAssignment = CPU, **spec: Any) -> LaunchRequest:
    fields: dict[str, Any] = {"model": "tiny", "engine": engine, "slots": 4, "context": 4096}
    fields |= spec
    return LaunchRequest(
        binary=Path(f"/opt/bin/{binary}"),
        model_path=Path("/models/tiny"),
        model_name="tiny",
        port=18080,
        spec=PoolSpec.model_validate(fields),
        gpus=assignment,
    )


# -- llama.cpp ---------------------------------------------------------------------------------

LLAMA_COMMON = [
    "/opt/bin/llama-server",
    "--model", "/models/tiny",
    "--alias", "tiny",
    "--host", "127.0.0.1",
    "--port", "18080",
    "--ctx-size", "16384",  # 4 slots x 4096
    "--parallel", "4",
    "--metrics",
    "--slots",
    "--no-webui",
    "--jinja",  # a completion pool: the model's own chat template, tools included
]  # fmt: skip


def test_llamacpp_cpu_pool_hides_every_gpu() -> None:
    launch = LlamaCpp().launch(request("llamacpp", "llama-server", engineArgs=["--threads", "8"]))
    assert launch.argv == [*LLAMA_COMMON, "--n-gpu-layers", "0", "--threads", "8"]
    assert launch.env == {"CUDA_VISIBLE_DEVICES": ""}


@pytest.fixture
def eight_cores_four_physical(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: 8 if logical else 4)


@pytest.mark.usefixtures("eight_cores_four_physical")
def test_llamacpp_cpu_pool_leaves_a_core_for_llorchd() -> None:
    assert cpu_threads() == 3
    launch = LlamaCpp().launch(request("llamacpp", "llama-server"))
    assert launch.argv == [*LLAMA_COMMON, "--n-gpu-layers", "0", "--threads", "3"]
    for chosen in (["-t", "6"], ["--threads=6"]):
        argv = LlamaCpp().launch(request("llamacpp", "llama-server", engineArgs=chosen)).argv
        assert argv == [*LLAMA_COMMON, "--n-gpu-layers", "0", *chosen], "the pool's own choice wins"


def test_a_single_core_still_gets_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert cpu_threads() == 1


def test_llamacpp_one_gpu() -> None:
    launch = LlamaCpp().launch(request("llamacpp", "llama-server", ONE_GPU, gpus={"count": 1}))
    assert launch.argv == [*LLAMA_COMMON, "--n-gpu-layers", "999"]
    assert launch.env == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "1"}


def test_llamacpp_two_gpus_split_layers() -> None:
    launch = LlamaCpp().launch(request("llamacpp", "llama-server", TWO_GPUS, gpus={"count": 2, "layers": 40}))
    assert launch.argv == [
        *LLAMA_COMMON,
        "--n-gpu-layers", "40",
        "--split-mode", "layer",
        "--tensor-split", "0.67,0.33",
    ]  # fmt: skip
    assert launch.env == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "0,1"}


# -- vLLM --------------------------------------------------------------------------------------


def vllm_argv(tensor_parallel: int, utilization: str) -> list[str]:
    return [
        "/opt/bin/vllm", "serve", "/models/tiny",
        "--host", "127.0.0.1",
        "--port", "18080",
        "--served-model-name", "tiny",
        "--max-model-len", "4096",
        "--max-num-seqs", "4",
        "--tensor-parallel-size", str(tensor_parallel),
        "--gpu-memory-utilization", utilization,
    ]  # fmt: skip


def test_vllm_one_gpu() -> None:
    made = request("vllm", "vllm", ONE_GPU, gpus={"count": 1}, engineArgs=["--enforce-eager"])
    launch = VLlm().launch(made)
    assert launch.argv == [*vllm_argv(1, "0.9"), "--enforce-eager"]
    assert launch.env == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "1"}


def test_vllm_two_gpus_tensor_parallel() -> None:
    launch = VLlm().launch(request("vllm", "vllm", TWO_GPUS, gpus={"count": 2}))
    assert launch.argv == vllm_argv(2, "0.9")
    assert launch.env == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "0,1"}


def test_vllm_cpu_pool_still_runs_one_worker() -> None:
    launch = VLlm().launch(request("vllm", "vllm"))
    assert launch.argv == vllm_argv(1, "0.9")
    assert launch.env == {"CUDA_VISIBLE_DEVICES": ""}


@pytest.mark.parametrize(
    ("vram_mib", "total_mib", "expected"),
    [
        (None, (24576,), 0.9),  # no budget: vLLM's own default
        (12288, (), 0.9),  # budget but GPU sizes unknown
        (12288, (24576,), 0.5),
        (12288, (24576, 24576), 0.25),  # tensor parallel halves the per-GPU share
        (12288, (24576, 16384), 0.375),  # the smallest GPU decides
        (100, (81920,), 0.05),  # clamped: vLLM cannot start in less
        (80000, (24576,), 0.95),  # clamped: leave room for the CUDA context
    ],
)
def test_vllm_memory_utilization_from_vram_budget(
    vram_mib: int | None, total_mib: tuple[int, ...], expected: float
) -> None:
    assert gpu_memory_utilization(vram_mib, total_mib) == pytest.approx(expected)


# -- TGI ---------------------------------------------------------------------------------------


def tgi_argv(shards: int) -> list[str]:
    return [
        "/opt/bin/text-generation-launcher",
        "--model-id", "/models/tiny",
        "--hostname", "127.0.0.1",
        "--port", "18080",
        "--num-shard", str(shards),
        "--max-concurrent-requests", "4",
        "--max-total-tokens", "4096",
        "--max-input-tokens", "4095",
        "--shard-uds-path", "/tmp/llorch-tgi-18080",
    ]  # fmt: skip


def test_tgi_one_gpu() -> None:
    launch = Tgi().launch(request("tgi", "text-generation-launcher", ONE_GPU, gpus={"count": 1}))
    assert launch.argv == tgi_argv(1)
    assert launch.env == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "1"}


def test_tgi_two_gpus_shard_with_their_own_rendezvous_port() -> None:
    made = request(
        "tgi", "text-generation-launcher", TWO_GPUS, gpus={"count": 2}, engineArgs=["--dtype", "bf16"]
    )
    launch = Tgi().launch(made)
    assert launch.argv == [*tgi_argv(2), "--master-port", "18081", "--dtype", "bf16"]
    assert launch.env == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "0,1"}


def test_tgi_master_port_stays_in_range() -> None:
    assert master_port(65535) == 65534


# -- Triton ------------------------------------------------------------------------------------


TRITON_ARGV = [
    "/opt/bin/tritonserver",
    "--model-repository=/models/tiny",
    "--http-address=127.0.0.1",
    "--http-port=18080",
    "--allow-grpc=false",
    "--allow-metrics=false",
    "--backend-config=python,shm-region-prefix-name=llorch18080",
]


def test_triton_one_gpu() -> None:
    launch = Triton().launch(request("triton", "tritonserver", ONE_GPU, gpus={"count": 1}))
    assert launch.argv == TRITON_ARGV
    assert launch.env == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "1"}


def test_triton_two_gpus() -> None:
    launch = Triton().launch(
        request("triton", "tritonserver", TWO_GPUS, gpus={"count": 2}, engineArgs=["--log-verbose=1"])
    )
    assert launch.argv == [*TRITON_ARGV, "--log-verbose=1"]
    assert launch.env == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "0,1"}


@pytest.mark.parametrize("adapter", [LlamaCpp(), VLlm(), Tgi(), Triton()], ids=lambda a: a.name)
def test_launch_is_a_pure_function_of_the_request(adapter: LlamaCpp | VLlm | Tgi | Triton) -> None:
    # The pool controller recomputes the command to recognise a running worker after a restart.
    made = request(adapter.name, "engine", TWO_GPUS, gpus={"count": 2})
    assert adapter.launch(made) == adapter.launch(made)


@pytest.mark.parametrize(
    ("spec", "mode"),
    [
        ({"workload": "embedding"}, ["--embeddings"]),
        ({"workload": "embedding", "pooling": "mean"}, ["--embeddings", "--pooling", "mean"]),
        ({"workload": "rerank"}, ["--reranking"]),
    ],
)
def test_llamacpp_starts_in_the_mode_of_the_pools_workload(spec: dict[str, str], mode: list[str]) -> None:
    argv = LlamaCpp().launch(request("llamacpp", "llama-server", **spec)).argv
    assert "--jinja" not in argv
    at = argv.index("--no-webui") + 1
    assert argv[at : at + len(mode)] == mode
