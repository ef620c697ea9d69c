"""Free loopback ports for engines llorch spawns."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for an unused port.

    Another process may take it before the engine binds; the engine then exits, and the
    pool controller restarts it on a fresh port, so the race costs a restart, not a failure.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
