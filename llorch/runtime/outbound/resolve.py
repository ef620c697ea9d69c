"""Host names to addresses, once per hop: the caller checks what this returns and connects to it."""

from __future__ import annotations

import socket
from collections.abc import Callable

from llorch.resources.hosts import IPAddress, address_of
from llorch.runtime.outbound.errors import UpstreamUnreachable

Resolver = Callable[[str, int], list[IPAddress]]
"""(canonical host name, port) -> its addresses, in the order to try them."""


def system_resolver(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UpstreamUnreachable(f"cannot resolve {host}: {exc.strerror or exc}") from exc
    found: list[IPAddress] = []
    for info in infos:
        address = address_of(str(info[4][0]).split("%", 1)[0])
        if address is not None and address not in found:
            found.append(address)
    return found
