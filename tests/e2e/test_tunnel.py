"""`llorchctl tunnel` through a real OpenSSH sshd on loopback to a real llorchd, as from a laptop."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.conftest import BIN, Llorchd, free_port, wait_for

SSHD = Path("/usr/sbin/sshd")


@dataclass(frozen=True)
class Sshd:
    port: int
    ssh_args: tuple[str, ...]
    """What `ssh` needs to log in there: port, key, its own known_hosts, no user config."""


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    """An sshd of its own on 127.0.0.1 (its own host key, config and authorized key); the
    account is whoever runs the tests."""
    if not SSHD.exists() or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("needs OpenSSH's sshd and ssh (Debian: openssh-server, openssh-client)")
    folder = tmp_path / "sshd"
    folder.mkdir()
    for key in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / key)], check=True)
    (folder / "authorized_keys").write_text((folder / "client.pub").read_text())
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation needs it when root
    port = free_port()
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPidFile {folder / 'sshd.pid'}\n"
        "StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nAllowTcpForwarding local\n"
    )
    log = folder / "sshd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stderr=out)
    try:

        def listening() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"sshd exited with {proc.returncode}: {log.read_text()}")
            return _listening(port)

        wait_for("sshd to listen", listening, timeout=10)
        args = (
            "-F", "/dev/null", "-p", str(port), "-i", str(folder / "client"),
            "-o", f"UserKnownHostsFile={folder / 'known_hosts'}", "-o", "StrictHostKeyChecking=accept-new",
            "-o", "BatchMode=yes",
        )  # fmt: skip
        yield Sshd(port, args)
    finally:
        proc.terminate()
        proc.wait(10)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_a_tunnel_writes_a_context_that_reaches_the_remote_llorchd(
    llorchd: Llorchd, sshd: Sshd, tmp_path: Path
) -> None:
    contexts = tmp_path / "contexts"
    env = {**os.environ, "LLORCH_CONFIG": str(contexts)}
    remote_port = int(llorchd.url.rsplit(":", 1)[1])
    command = [str(BIN / "llorchctl"), "tunnel", f"{getpass.getuser()}@127.0.0.1", "--context", "box"]
    command += ["--remote-port", str(remote_port), "--", *sshd.ssh_args]
    tunnel = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(
            "the tunnel's context", lambda: contexts.exists() and "box" in contexts.read_text(), timeout=30
        )
        written = yaml.safe_load(contexts.read_text())
        assert written["current-context"] == "box"
        server = written["contexts"][0]["server"]
        assert server.startswith("http://127.0.0.1:") and server != llorchd.url

        got = subprocess.run(
            [str(BIN / "llorchctl"), "get", "pools"], env=env, capture_output=True, text=True, timeout=60
        )
        assert got.returncode == 0, got.stderr
        assert got.stderr == "No resources found.\n"
        assert "GET /v1/pools -> 200" in llorchd.logs(), "the answer came from the remote llorchd"
    finally:
        tunnel.send_signal(signal.SIGINT)
        output, _ = tunnel.communicate(timeout=30)
    assert tunnel.returncode == 0, output
    assert "Forwarding http://127.0.0.1:" in output and "Tunnel closed." in output
    time.sleep(0.2)
    with pytest.raises(httpx.ConnectError):
        httpx.get(server + "/healthz", timeout=2)


def test_a_tunnel_to_nothing_says_what_to_check(sshd: Sshd, tmp_path: Path) -> None:
    closed = free_port()
    command = [
        str(BIN / "llorchctl"),
        "tunnel",
        f"{getpass.getuser()}@127.0.0.1",
        "--remote-port",
        str(closed),
    ]
    command += ["--wait", "2s", "--", *sshd.ssh_args]
    done = subprocess.run(
        command,
        env={**os.environ, "LLORCH_CONFIG": str(tmp_path / "c")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"nothing answers as llorchd at 127.0.0.1:{closed}" in done.stderr
    assert not (tmp_path / "c").exists(), "no context for a tunnel that never worked"
