"""One outbound HTTP call, hop by hop: parse, check the name, resolve, check the addresses, connect
to the checked address, read at most so many bytes within the deadline; a redirect starts the next
hop from the top.

The connection goes to the address the guard saw: the request's URL carries that address and the
`Host` header (and TLS SNI and certificate check) the name, so a resolver answering differently
the second time (DNS rebinding) is never asked a second time.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urljoin

import httpx

from llorch.resources.hosts import IPAddress, address_of
from llorch.runtime.outbound.errors import UpstreamTimeout, UpstreamUnreachable
from llorch.runtime.outbound.resolve import Resolver, system_resolver
from llorch.runtime.outbound.url import OutboundUrl, parse_url

MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Set by llorch for every hop, never taken from the caller.
_OWN_HEADERS = frozenset(
    {
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer",
        "upgrade", "expect", "accept-encoding", "proxy-connection",
    }
)  # fmt: skip
_CREDENTIAL_HEADER = re.compile(r"auth|token|secret|passw|api[-_]?key|cookie|session", re.IGNORECASE)


def is_credential_header(name: str) -> bool:
    """Headers that carry a credential: never carried to another origin on a redirect."""
    return bool(_CREDENTIAL_HEADER.search(name))


class Guard(Protocol):
    """Decides each hop; refuses by raising."""

    def before_resolving(self, method: str, url: OutboundUrl) -> None: ...

    def before_connecting(self, method: str, url: OutboundUrl, addresses: Sequence[IPAddress]) -> None: ...


@dataclass(frozen=True)
class OutboundRequest:
    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@dataclass(frozen=True)
class Fetched:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    truncated: bool
    """The body went on past `max_bytes`; `body` is its first `max_bytes`."""
    method: str
    url: OutboundUrl
    """The last hop's method and URL."""


TransportFactory = Callable[[], httpx.BaseTransport]


class OutboundClient:
    """`resolver` and `transport` are what tests replace: a resolver that answers a loopback
    address for a public name, a transport that fails the test if anything reaches it."""

    def __init__(
        self, *, resolver: Resolver = system_resolver, transport: TransportFactory = httpx.HTTPTransport
    ) -> None:
        self._resolver = resolver
        self._transport = transport

    def fetch(
        self, request: OutboundRequest, guard: Guard, *, max_bytes: int, timeout_seconds: float
    ) -> Fetched:
        deadline = time.monotonic() + timeout_seconds
        method, raw_url, body = request.method.upper(), request.url, request.body
        headers = [(k, v) for k, v in request.headers if k.lower() not in _OWN_HEADERS]
        first: OutboundUrl | None = None
        for hop in range(MAX_REDIRECTS + 1):
            url = parse_url(raw_url)
            first = first or url
            if url.origin != first.origin:
                headers = [(k, v) for k, v in headers if not is_credential_header(k)]
            guard.before_resolving(method, url)
            address = address_of(url.host)
            addresses = [address] if address is not None else self._resolver(url.host, url.port)
            if not addresses:
                raise UpstreamUnreachable(f"{url.host} has no address")
            guard.before_connecting(method, url, addresses)
            fetched = self._send(
                method, url, addresses[0], headers, body, deadline, max_bytes, timeout_seconds
            )
            location = dict((k.lower(), v) for k, v in fetched.headers).get("location")
            if fetched.status not in _REDIRECTS or location is None or hop == MAX_REDIRECTS:
                return fetched
            raw_url = urljoin(str(url), location)
            if fetched.status == 303 or (fetched.status in (301, 302) and method == "POST"):
                method = "GET" if method != "HEAD" else method
                body = b""
                headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
        raise AssertionError("unreachable: the last hop returns")  # pragma: no cover

    def _send(
        self,
        method: str,
        url: OutboundUrl,
        address: IPAddress,
        headers: list[tuple[str, str]],
        body: bytes,
        deadline: float,
        max_bytes: int,
        timeout_seconds: float,
    ) -> Fetched:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise UpstreamTimeout(f"no answer within {timeout_seconds:g} s (timeoutSeconds)")
        path, _, query = url.target.partition("?")
        pinned = httpx.URL(
            scheme=url.scheme, host=str(address), port=url.port, path=path, query=query.encode()
        )
        extensions = {"sni_hostname": url.host} if url.scheme == "https" and not url.is_address else {}
        sent = [("Host", url.authority), ("Accept-Encoding", "identity"), *headers]
        # trust_env off: a proxy from the environment would connect somewhere the guard never saw.
        with httpx.Client(transport=self._transport(), trust_env=False, timeout=remaining) as client:
            try:
                outgoing = client.build_request(
                    method, pinned, headers=sent, content=body or None, extensions=extensions
                )
                response = client.send(outgoing, stream=True)
                try:
                    chunks: list[bytes] = []
                    size, truncated = 0, False
                    # No chunk size: httpx would wait to fill one, past the deadline.
                    for chunk in response.iter_raw():
                        if time.monotonic() > deadline:
                            late = f"{url.authority} was still sending after {timeout_seconds:g} s"
                            raise UpstreamTimeout(f"{late} (timeoutSeconds)")
                        chunks.append(chunk)
                        size += len(chunk)
                        if size > max_bytes:
                            truncated = True
                            break
                finally:
                    response.close()
            except httpx.TimeoutException as exc:
                raise UpstreamTimeout(
                    f"{url.authority} did not answer within {timeout_seconds:g} s (timeoutSeconds)"
                ) from exc
            except httpx.HTTPError as exc:
                raise UpstreamUnreachable(
                    f"cannot reach {url.authority}: {exc or type(exc).__name__}"
                ) from exc
        return Fetched(
            status=response.status_code,
            headers=tuple(response.headers.multi_items()),
            body=b"".join(chunks)[:max_bytes],
            truncated=truncated,
            method=method,
            url=url,
        )
