"""The doctor's checks, one at a time, on the answers a server gives (the whole run against a real
llorchd is in tests/e2e/test_doctor.py)."""

from __future__ import annotations

from email.utils import formatdate

from llorch.cli.client import ApiError
from llorch.cli.doctor import GIB, MIB, clock, disks, engines, gpu, refused, versions
from llorch.resources.diagnostics import Caller, Diagnostics, DiskReport, EngineReport, GpuDevice, GpuReport
from llorch.resources.version import VersionInfo

NOW = 1_800_000_000.0


def version(number: str, api: str = "llorch.dev/v1") -> VersionInfo:
    return VersionInfo(version=number, api_version=api, python="3.11", platform="linux-x86_64")


def test_versions_fail_on_another_api_and_warn_on_another_release() -> None:
    assert versions(version("0.1.0"), version("0.1.0")).status == "ok"
    assert versions(version("0.2.0"), version("0.1.0")).status == "warn"
    other = versions(version("0.2.0"), version("0.1.0", "llorch.dev/v2"))
    assert other.status == "fail" and "pipx upgrade llorch" in other.fix


def test_the_clock_is_read_from_the_date_header() -> None:
    assert clock(formatdate(NOW, usegmt=True), NOW + 0.7).detail == "the clocks agree"
    late = clock(formatdate(NOW - 90, usegmt=True), NOW)
    assert late.status == "warn" and late.detail == "the server's clock is 90 s behind this one"
    assert "timedatectl set-ntp true" in late.fix
    assert clock(None, NOW).status == "skip" and clock("yesterday", NOW).status == "skip"


def test_each_refusal_says_what_to_do() -> None:
    missing = refused(ApiError(401, "MISSING_TOKEN", "needs a token"))
    assert missing.status == "fail" and "--token-file" in missing.fix
    bad = refused(ApiError(401, "BAD_TOKEN", "not accepted"))
    assert "llorchctl token create" in bad.fix and "systemctl reload llorchd" in bad.fix
    assert refused(ApiError(404, "NOT_FOUND", "no route")).status == "skip"


def test_no_gpu_fails_only_a_box_whose_pools_want_one() -> None:
    absent = GpuReport(nvml=False, error="NVML Shared Library Not Found")
    assert gpu(absent, []).status == "warn"
    wanted = gpu(absent, ["chat"])
    assert (
        wanted.status == "fail" and "pools chat ask for GPUs" in wanted.detail and "nvidia-smi" in wanted.fix
    )
    two = GpuReport(
        nvml=True,
        driver_version="550.54",
        cuda_version="12.4",
        devices=[
            GpuDevice(index=0, name="RTX 3090", uuid="u0", total_bytes=24 * GIB, free_bytes=22 * GIB),
            GpuDevice(index=1, name="RTX 3060", uuid="u1", total_bytes=12 * GIB, free_bytes=12 * GIB),
        ],
    )
    seen = gpu(two, ["chat"])
    assert seen.status == "ok" and "GPU1 RTX 3060 12.0GiB (12.0GiB free)" in seen.detail


def diagnostics(*reports: EngineReport, gpu_pools: list[str]) -> Diagnostics:
    return Diagnostics(
        caller=Caller(identity="anonymous", scopes=["read"]),
        gpu=GpuReport(nvml=False),
        gpu_pools=gpu_pools,
        engines=list(reports),
        disks=[],
    )


def test_engines_a_missing_binary_and_gpu_pools_on_a_cpu_build() -> None:
    cpu = EngineReport(
        engine="llamacpp", pools=["chat"], binary="/c/llama-server", version="7", backend="cpu"
    )
    vllm = EngineReport(engine="vllm", pools=["big"], error="vllm is not installed here")
    idle = EngineReport(engine="tgi", pools=[])
    checks = engines(diagnostics(cpu, vllm, idle, gpu_pools=["chat"]))
    assert [c.name for c in checks] == ["engine llamacpp", "engine vllm"], (
        "an engine no pool uses is no check"
    )
    assert checks[0].status == "warn" and "llorchd provision --cuda" in checks[0].fix
    assert checks[1].status == "fail" and "engines.vllm.binary" in checks[1].fix
    cuda = cpu.model_copy(update={"backend": "cuda"})
    assert engines(diagnostics(cuda, gpu_pools=["chat"]))[0].status == "ok"


def test_disk_space_by_what_each_folder_holds() -> None:
    def disk(name: str, free: int) -> DiskReport:
        return DiskReport(name=name, path=f"/{name}", free_bytes=free, total_bytes=100 * GIB)

    found = disks([disk("cache", 3 * GIB), disk("state", 3 * GIB), disk("state", 100 * MIB)])
    assert [c.status for c in found] == ["warn", "ok", "fail"]
    assert "llorchctl cache prune" in found[0].fix and "llorchctl artifact gc" in found[2].fix
