"""The systemd unit, checked by the real `systemd-analyze verify` of this machine."""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llorch.daemon.unit import UNIT_NAME, UnitSpec, render
from llorch.daemon.wiring import DETACHED_EXIT_STATUS

LLORCHD = Path(sys.executable).parent / "llorchd"


def directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def verify(tmp_path: Path, text: str, *, user: bool) -> subprocess.CompletedProcess[str]:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed here")
    unit = tmp_path / UNIT_NAME
    unit.write_text(text)
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    # A user manager's folders hang off XDG_RUNTIME_DIR, which a CI job or a container lacks.
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    command = ["systemd-analyze", *(["--user"] if user else []), "verify", str(unit)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize("user", [False, True], ids=["system", "user"])
def test_systemd_analyze_verify_accepts_the_unit_without_a_warning(tmp_path: Path, user: bool) -> None:
    spec = UnitSpec(llorchd=LLORCHD, user=user, run_as=None if user else getpass.getuser())
    done = verify(tmp_path, render(spec), user=user)
    # verify exits 0 on an unknown key or a bad value, and only prints it: both must be empty.
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_verify_does_fail_a_broken_unit(tmp_path: Path) -> None:
    """The check above means something: the same verify refuses a unit whose llorchd is missing."""
    done = verify(tmp_path, render(UnitSpec(llorchd=tmp_path / "absent", user=True)), user=True)
    assert done.returncode != 0 and "absent" in done.stdout + done.stderr


def test_the_unit_is_hardened_and_keeps_replicas_across_an_upgrade() -> None:
    found = directives(render(UnitSpec(llorchd=LLORCHD, user=False, run_as="llorch")))
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "StateDirectory": "llorch",
        "CacheDirectory": "llorch",
        "StandardError": "journal",
        "Restart": "on-failure",
        "User": "llorch",
        # Only llorchd is signalled: its replicas outlive it for the next one to adopt.
        "KillMode": "process",
        "RestartForceExitStatus": str(DETACHED_EXIT_STATUS),
        "ExecReload": "/bin/kill -HUP $MAINPID",
    }.items():
        assert found[key] == [value], key
    assert "PrivateDevices" not in found and "DevicePolicy" not in found, "the GPUs stay visible"
    start = found["ExecStart"][0].split()
    assert start[0] == str(LLORCHD)
    assert (
        start[start.index("--state") + 1] == "%S/llorch" and start[start.index("--cache") + 1] == "%C/llorch"
    )
    assert found["ReadWritePaths"] == ["%E/llorch/manifests"], "llorchctl apply writes manifests"


def test_a_user_unit_has_no_account_and_starts_with_the_session() -> None:
    found = directives(render(UnitSpec(llorchd=LLORCHD, user=True, run_as="ignored")))
    assert "User" not in found and "After" not in found
    assert found["WantedBy"] == ["default.target"]


def test_nvidia_modprobe_runs_privileged_before_start_when_present() -> None:
    spec = UnitSpec(
        llorchd=LLORCHD, user=False, run_as="me", nvidia_modprobe=Path("/usr/bin/nvidia-modprobe")
    )
    assert directives(render(spec))["ExecStartPre"] == ["-+/usr/bin/nvidia-modprobe -u -c=0"]
