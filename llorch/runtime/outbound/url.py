"""A URL as an outbound call uses it: parsed once, its host canonical, its parts the ones sent."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from llorch.resources.hosts import address_of, canonical_host
from llorch.resources.policy import DEFAULT_PORTS
from llorch.runtime.outbound.errors import InvalidUrl, UnsupportedScheme

# What parsers disagree about (WHATWG turns `\` into `/`, some strip tabs and newlines): refused,
# so no other reading of the URL than this one can exist.
_AMBIGUOUS = re.compile(r"[\\\s\x00-\x1f\x7f]")


@dataclass(frozen=True)
class OutboundUrl:
    scheme: str
    host: str
    """Canonical (llorch.resources.hosts): a lower-case name or an address."""
    port: int
    target: str
    """Path and query, as sent on the request line."""
    userinfo: bool = False
    """The URL carried `user[:password]@`; it is never sent."""

    @property
    def is_address(self) -> bool:
        return address_of(self.host) is not None

    @property
    def authority(self) -> str:
        """host[:port] as the Host header and the URL write it (brackets around IPv6)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port

    def __str__(self) -> str:
        return f"{self.scheme}://{self.authority}{self.target}"

    def without_query(self) -> str:
        return f"{self.scheme}://{self.authority}{self.target.split('?', 1)[0]}"


def scheme_of(url: str) -> str:
    head, colon, _ = url.partition(":")
    return head.strip().lower() if colon else ""


def parse_url(url: str) -> OutboundUrl:
    if _AMBIGUOUS.search(url):
        raise InvalidUrl("the URL holds a backslash, whitespace or a control character")
    scheme = scheme_of(url)
    if scheme not in DEFAULT_PORTS:
        raise UnsupportedScheme(scheme)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidUrl(f"the URL cannot be parsed: {exc}") from exc
    netloc = parts.netloc
    _, at, hostport = netloc.rpartition("@")
    if hostport.startswith("["):
        raw_host = hostport[: hostport.find("]") + 1]
    else:
        raw_host = hostport.rsplit(":", 1)[0] if ":" in hostport else hostport
    if "%" in raw_host:
        raise InvalidUrl("percent-encoded hosts are not accepted")
    try:
        host = canonical_host(raw_host)
    except ValueError as exc:
        raise InvalidUrl(f"bad host: {exc}") from exc
    path = parts.path or "/"
    target = path + (f"?{parts.query}" if parts.query else "")
    return OutboundUrl(scheme, host, port or DEFAULT_PORTS[scheme], target, userinfo=bool(at))
