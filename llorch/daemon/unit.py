"""The systemd unit llorchd installs as: hardened, logging to journald, restarted on failure, and
written so that an upgrade restart keeps the replicas serving.

Why `KillMode=process`: the engines are llorchd's children, in the unit's control group. With the
default (`control-group`), or `mixed`, systemd kills every process of the group whenever the main
process stops or exits, so no replica could outlive llorchd. With `process`, systemd signals
llorchd alone: on `systemctl stop` (SIGTERM) llorchd stops its replicas itself, within its own
grace period; on SIGQUIT it exits leaving them running, with status 75, which
`RestartForceExitStatus=` turns into a start of the (new) llorchd, and that one adopts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llorch.daemon.wiring import DETACHED_EXIT_STATUS

UNIT_NAME = "llorchd.service"
# systemd's own names for the unit's folders: /etc, /var/lib, /var/cache for a system unit, and
# $XDG_CONFIG_HOME, $XDG_STATE_HOME, $XDG_CACHE_HOME for a user unit.
CONFIG_DIR = "%E/llorch"
STATE_DIR = "%S/llorch"
CACHE_DIR = "%C/llorch"
# Stopping waits for llorchd to stop its replicas (supervision.stopGraceSeconds each, in parallel)
# and to end open streams; past this, systemd kills llorchd and the replicas are adopted next time.
STOP_TIMEOUT_SECONDS = 90
RESTART_DELAY_SECONDS = 5


@dataclass(frozen=True)
class UnitSpec:
    llorchd: Path
    """The llorchd to run: the one installing the unit (a pipx or venv path, absolute)."""
    user: bool
    """A user unit (`systemctl --user`) rather than a system one."""
    run_as: str | None = None
    """System units: the account llorchd runs as."""
    config_dir: str = CONFIG_DIR
    nvidia_modprobe: Path | None = None
    """System units: creates /dev/nvidia-uvm before start, which NoNewPrivileges would stop the
    CUDA runtime from doing itself (it runs this setuid helper on first use)."""


def render(spec: UnitSpec) -> str:
    lines = [
        "# Written by `llorchd install-service`; `systemctl edit llorchd` keeps local changes apart.",
        "[Unit]",
        "Description=llorch: LLM inference on this workstation (llorchd)",
    ]
    if not spec.user:
        # A user manager has no network-online.target; a system service waits for the network so
        # a bind to a LAN address does not fail at boot.
        lines += ["Wants=network-online.target", "After=network-online.target"]
    exec_start = (
        f"{spec.llorchd} --config {spec.config_dir}/llorch.yaml "
        f"--state {STATE_DIR} --cache {CACHE_DIR} --log-format json"
    )
    lines += ["", "[Service]", "Type=exec"]
    if not spec.user and spec.run_as:
        lines.append(f"User={spec.run_as}")
    if not spec.user and spec.nvidia_modprobe is not None:
        # "+": with full privileges, despite NoNewPrivileges and User=; "-": a box without the
        # helper (or without a GPU) still starts.
        lines.append(f"ExecStartPre=-+{spec.nvidia_modprobe} -u -c=0")
    lines += [
        f"ExecStart={exec_start}",
        # SIGHUP re-reads llorch.yaml: what can change at run time does, the rest is logged.
        "ExecReload=/bin/kill -HUP $MAINPID",
        # See the module's docstring: systemd signals llorchd only, so replicas can outlive it.
        "KillMode=process",
        "KillSignal=SIGTERM",
        f"TimeoutStopSec={STOP_TIMEOUT_SECONDS}",
        "Restart=on-failure",
        f"RestartSec={RESTART_DELAY_SECONDS}",
        # After SIGQUIT (an upgrade) llorchd exits with this status; start the new one at once.
        f"RestartForceExitStatus={DETACHED_EXIT_STATUS}",
        # Exit status 2 is a settings error: restarting would only repeat it.
        "RestartPreventExitStatus=2",
        "StandardOutput=journal",
        "StandardError=journal",
        "SyslogIdentifier=llorchd",
        "StateDirectory=llorch",
        "CacheDirectory=llorch",
        "ConfigurationDirectory=llorch",
        # The configuration folder is read-only under ProtectSystem=strict, but `llorchctl apply`
        # writes manifests into their folder.
        f"ReadWritePaths={spec.config_dir}/manifests",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectControlGroups=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        # Not set, on purpose: PrivateDevices or DevicePolicy (they hide /dev/nvidia*), and
        # MemoryDenyWriteExecute (the CUDA driver compiles kernels at run time).
        "",
        "[Install]",
        f"WantedBy={'default.target' if spec.user else 'multi-user.target'}",
    ]
    return "\n".join(lines) + "\n"
