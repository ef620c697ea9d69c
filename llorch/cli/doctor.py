"""`llorchctl doctor`'s checks, in the order things break: the server answers, both sides speak the
same API, the clocks agree, the token is taken, then the server's own machine (GPU driver, engine
binaries, free disk) as `GET /v1/diagnostics` reports it. Each failure says what to do."""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal

from llorch.cli.client import ApiError, Client, Unreachable
from llorch.cli.render.values import human_size
from llorch.resources.diagnostics import Caller, Diagnostics, DiskReport, EngineReport, GpuReport
from llorch.resources.version import VersionInfo, this_version

Status = Literal["ok", "warn", "fail", "skip"]

GIB = 1024**3
MIB = 1024**2
# (warn below, fail below), in bytes: the cache holds model weights (gigabytes each); the state
# folder holds sqlite and replica logs, and llorchd stops writing status when it is full.
DISK_LIMITS = {"cache": (5 * GIB, 1 * GIB), "state": (1 * GIB, 256 * MIB)}
# OIDC tokens are checked with 30 s of leeway (auth.oidc.leewaySeconds), and session TTLs and
# RFC 3339 times are compared across the two machines.
CLOCK_SKEW_SECONDS = 30.0

_UNREACHABLE_FIX = (
    "start llorchd on the box (systemctl --user start llorchd, or ./dev up in a checkout); check the "
    "address (--server, or the context: llorchctl config get-contexts); from another machine, "
    "open a tunnel: llorchctl tunnel user@box"
)
_DRIVER_FIX = (
    "install the NVIDIA driver (Debian: nvidia-driver, then reboot) and check that nvidia-smi works "
    "as the user llorchd runs as; under systemd see the runbook's 'GPU not detected'"
)


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


def checkup(client: Client, now: float | None = None) -> list[Check]:
    """Every check against the server `client` talks to; what cannot be checked is `skip`."""
    try:
        health = client.healthz()
        server_version, date = client.version()
    except Unreachable as exc:
        return [Check("server", "fail", str(exc), _UNREACHABLE_FIX), *_skipped("the server does not answer")]
    except ApiError as exc:
        fix = "something else answers on that address, or llorchd is older than this llorchctl"
        return [Check("server", "fail", f"{client.server} answers, but not as llorchd: {exc}", fix)]
    checks = [
        server(client.server, health),
        versions(this_version(), VersionInfo.model_validate(server_version)),
        clock(date, time.time() if now is None else now),
    ]
    try:
        found = Diagnostics.model_validate(client.diagnostics())
    except ApiError as exc:
        return [
            *checks,
            refused(exc),
            *_skipped("the server's diagnostics need a token it accepts", token=False),
        ]
    return [
        *checks,
        token(found.caller),
        gpu(found.gpu, found.gpu_pools),
        *engines(found),
        *disks(found.disks),
    ]


def _skipped(why: str, *, token: bool = True) -> list[Check]:
    names = ["versions", "clock", "token"] if token else []
    return [Check(name, "skip", why) for name in [*names, "gpu", "engines", "disk"]]


def server(url: str, health: dict[str, object]) -> Check:
    errors = health.get("manifestErrors")
    if isinstance(errors, int) and errors:
        return Check(
            "server",
            "warn",
            f"{url} answers; {errors} manifest error(s): the last good version of those objects runs",
            "llorchctl get pools (or describe) shows each error with its file, line and field",
        )
    return Check("server", "ok", f"{url} answers")


def versions(client: VersionInfo, server: VersionInfo) -> Check:
    detail = f"client {client.version}, server {server.version}, API {server.api_version}"
    if client.api_version != server.api_version:
        return Check(
            "versions",
            "fail",
            f"{detail}: the client speaks {client.api_version}",
            "upgrade the older side (pipx upgrade llorch, on the laptop or the box)",
        )
    if client.version != server.version:
        return Check("versions", "warn", detail, "the same API, but upgrade the older side when you can")
    return Check("versions", "ok", detail)


def clock(date_header: str | None, now: float) -> Check:
    if date_header is None:
        return Check("clock", "skip", "the server sent no Date header")
    try:
        skew = now - parsedate_to_datetime(date_header).timestamp()
    except (TypeError, ValueError):
        return Check("clock", "skip", f"the server's Date header {date_header!r} does not parse")
    # The header has whole seconds and was written before the answer travelled: a second is noise.
    side = "behind" if skew > 0 else "ahead of"
    detail = (
        f"the server's clock is {abs(skew):.0f} s {side} this one" if abs(skew) >= 2 else "the clocks agree"
    )
    if abs(skew) > CLOCK_SKEW_SECONDS:
        return Check(
            "clock",
            "warn",
            detail,
            "turn on NTP on both machines (timedatectl set-ntp true): tokens, session TTLs and "
            "times in status are compared across them",
        )
    return Check("clock", "ok", detail)


def refused(exc: ApiError) -> Check:
    if exc.code == "MISSING_TOKEN":
        return Check(
            "token",
            "fail",
            "the server needs a token and none was sent",
            "pass --token, set LLORCH_TOKEN, or give the context a token file: "
            "llorchctl config set-context NAME --server URL --token-file FILE",
        )
    if exc.code == "BAD_TOKEN":
        return Check(
            "token",
            "fail",
            "the server does not accept this token",
            "on the box: llorchctl token create --name laptop --scopes read,submit, add the line it "
            "prints under auth.keys in llorch.yaml, then systemctl reload llorchd",
        )
    if exc.code == "INSUFFICIENT_SCOPE":
        return Check("token", "fail", str(exc), "give the key the read scope (auth.keys in llorch.yaml)")
    if exc.status == 404:
        return Check(
            "token", "skip", "the server has no /v1/diagnostics (an older llorchd)", "upgrade llorchd"
        )
    return Check("token", "fail", str(exc))


def token(caller: Caller) -> Check:
    scopes = ", ".join(caller.scopes)
    if caller.identity == "anonymous":
        return Check(
            "token", "ok", f"none needed: the server has no keys and serves loopback only ({scopes})"
        )
    return Check("token", "ok", f"{caller.identity}, scopes {scopes}")


def gpu(report: GpuReport, gpu_pools: list[str]) -> Check:
    # No GPU is a fault only for a box whose pools ask for one.
    status: Status = "fail" if gpu_pools else "warn"
    wanted = f"; pools {', '.join(gpu_pools)} ask for GPUs" if gpu_pools else "; CPU pools still run"
    if not report.nvml:
        return Check("gpu", status, f"NVML does not load on the server: {report.error}{wanted}", _DRIVER_FIX)
    if not report.devices:
        return Check("gpu", status, f"driver {report.driver_version} sees no GPU{wanted}", _DRIVER_FIX)
    devices = ", ".join(
        f"GPU{d.index} {d.name} {human_size(d.total_bytes)} ({human_size(d.free_bytes)} free)"
        for d in report.devices
    )
    return Check("gpu", "ok", f"driver {report.driver_version}, CUDA {report.cuda_version}: {devices}")


def engines(found: Diagnostics) -> list[Check]:
    return [_engine(e, found.gpu_pools) for e in found.engines if e.engine == "llamacpp" or e.pools]


def _engine(report: EngineReport, gpu_pools: list[str]) -> Check:
    name = f"engine {report.engine}"
    users = f" (pools {', '.join(report.pools)})" if report.pools else ""
    if report.error is not None:
        fix = (
            "run llorchd provision on the box (or set engines.llamacpp.binary in llorch.yaml)"
            if report.engine == "llamacpp"
            else f"install it, set engines.{report.engine}.binary (llorch.yaml), or give the pool an endpoint"
        )
        return Check(name, "fail", f"{report.error}{users}", fix)
    detail = f"{report.binary} {report.version or ''}".rstrip() + users
    on_cpu = sorted(set(gpu_pools) & set(report.pools)) if report.backend == "cpu" else []
    if on_cpu:
        return Check(
            name,
            "warn",
            f"{detail}: the CPU build, yet pools {', '.join(on_cpu)} ask for GPUs: they compute on the CPU",
            "set engines.llamacpp.backend: cuda in llorch.yaml, llorchd provision --cuda, restart llorchd",
        )
    return Check(name, "ok", detail)


def disks(reports: list[DiskReport]) -> list[Check]:
    checks = []
    for disk in reports:
        warn_below, fail_below = DISK_LIMITS.get(disk.name, (GIB, 256 * MIB))
        detail = (
            f"{disk.name} {disk.path}: {human_size(disk.free_bytes)} free of {human_size(disk.total_bytes)}"
        )
        fix = (
            "free space or move the folder (--cache, cacheDir); llorchctl cache prune drops unused weights"
            if disk.name == "cache"
            else "free space or move the folder (--state, stateDir); llorchctl artifact gc drops artifacts"
        )
        if disk.free_bytes < fail_below:
            checks.append(Check("disk", "fail", detail, fix))
        elif disk.free_bytes < warn_below:
            checks.append(Check("disk", "warn", detail, fix))
        else:
            checks.append(Check("disk", "ok", detail))
    return checks
