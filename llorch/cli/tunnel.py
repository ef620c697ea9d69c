"""An ssh local port forward to the llorchd of another machine, started and watched until it answers.

llorchd listens on the box's loopback (it refuses anything else without a key), so a laptop
reaches it through ssh: `ssh -N -L 127.0.0.1:LOCAL:127.0.0.1:8080 user@box`. The forward binds
the laptop's loopback only, so nobody else on the laptop's network can use it.
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass

import httpx

# Keep-alives every 30 s, given up after 3 missed: a laptop that sleeps or changes network ends
# the tunnel within 2 minutes instead of leaving a forward that silently goes nowhere.
_SSH_OPTIONS = (
    "-o", "ExitOnForwardFailure=yes",
    "-o", "ServerAliveInterval=30",
    "-o", "ServerAliveCountMax=3",
)  # fmt: skip
_POLL_SECONDS = 0.2


class TunnelError(Exception):
    """The forward did not come up, or it came up and nothing answers as llorchd through it."""


@dataclass(frozen=True)
class Forward:
    destination: str
    """`user@box` or `box`, as ssh takes it."""
    local_port: int
    remote_port: int = 8080
    remote_host: str = "127.0.0.1"
    """Where the box's sshd connects to: llorchd's bind address, seen from the box."""
    ssh_args: tuple[str, ...] = ()
    """More ssh options (`-p 2222`, `-i key`, `-J jump`), placed before the destination."""

    def __post_init__(self) -> None:
        if not self.destination or self.destination.startswith("-"):
            raise TunnelError(f"{self.destination!r} is not an ssh destination (user@host)")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local_port}"

    def command(self, ssh: str = "ssh") -> list[str]:
        spec = f"127.0.0.1:{self.local_port}:{self.remote_host}:{self.remote_port}"
        return [ssh, "-N", *_SSH_OPTIONS, "-L", spec, *self.ssh_args, self.destination]


def host_of(destination: str) -> str:
    """`me@box.lan` → `box.lan`: the context name a tunnel gets unless told otherwise."""
    return destination.rpartition("@")[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def open_forward(forward: Forward, ssh: str = "ssh") -> subprocess.Popen[bytes]:
    """Start ssh. Its terminal is the user's, so a passphrase or host-key prompt reaches them."""
    try:
        return subprocess.Popen(forward.command(ssh))
    except OSError as exc:
        raise TunnelError(f"cannot run {ssh}: {exc} (is OpenSSH's client installed?)") from exc


def wait_until_answering(proc: subprocess.Popen[bytes], forward: Forward, timeout: float) -> None:
    """Until llorchd answers /healthz through the forward; TunnelError if ssh ends or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        code = proc.poll()
        if code is not None:
            raise TunnelError(
                f"ssh exited with status {code} before the forward was up (its message is above)"
            )
        try:
            if httpx.get(forward.url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TunnelError(
                f"nothing answers as llorchd at {forward.remote_host}:{forward.remote_port} on "
                f"{host_of(forward.destination)} after {timeout:g}s: is llorchd running there "
                "(systemctl --user status llorchd), and on that port (--remote-port)?"
            )
        time.sleep(_POLL_SECONDS)


def close(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
