"""Host names and addresses in one canonical spelling, and which addresses are not the public internet.

Every check of a host (a Policy's HTTP tool rules, the URL a tool call names, each redirect hop)
compares canonical forms, so that `API.Example.com.`, `127.1`, `0x7f000001`, `2130706433` and
`[::ffff:127.0.0.1]` cannot slip past a rule written as `api.example.com` or `127.0.0.1`.
"""

from __future__ import annotations

import ipaddress
import re

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# A DNS label as resolvers accept it; underscores occur in real names (service records, some LANs).
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_MAX_NAME = 253

# The cloud metadata services, named in refusals because reaching them is the classic SSRF prize.
METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, DigitalOcean
        ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    }
)
# IPv6 prefixes that carry an IPv4 address a gateway may forward to (NAT64, RFC 6052).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _ipv4_part(text: str) -> int | None:
    """One dotted part as inet_aton reads it: 0x.. hex, a leading 0 octal, else decimal."""
    try:
        if text[:2] in ("0x", "0X"):
            return int(text[2:], 16) if text[2:] else 0
        if len(text) > 1 and text.startswith("0"):
            return int(text[1:], 8)
        return int(text, 10) if text.isdigit() else None
    except ValueError:
        return None


def _numeric_ipv4(text: str) -> ipaddress.IPv4Address | None:
    """`127.1`, `0x7f000001`, `2130706433`, `0177.0.0.1`: what libc's inet_aton (and so curl and
    browsers) would connect to. None when `text` is not written as numbers at all."""
    parts = text.split(".")
    if not parts[-1] or _ipv4_part(parts[-1]) is None:
        return None
    if len(parts) > 4:
        raise ValueError(f"{text!r} ends in a number but has more than 4 parts: not an IPv4 address")
    values = [_ipv4_part(part) for part in parts]
    if any(value is None for value in values):
        raise ValueError(f"{text!r} mixes numbers and names: not an address and not a host name")
    numbers = [value for value in values if value is not None]
    *leading, last = numbers
    if any(value > 255 for value in leading) or last >= 256 ** (4 - len(leading)):
        raise ValueError(f"{text!r} is out of range for an IPv4 address")
    packed = 0
    for value in leading:
        packed = packed * 256 + value
    return ipaddress.IPv4Address(packed * 256 ** (4 - len(leading)) + last)


def canonical_host(text: str) -> str:
    """`text` as every check compares it: lower case, no trailing dot, IDNA (punycode) for
    non-ASCII names, an IPv4 address in dotted quad whatever numeric form it was written in, an
    IPv6 address compressed and without brackets. ValueError says what is wrong."""
    host = text.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        if "%" in host:
            raise ValueError(f"{text!r}: IPv6 zone ids are not accepted")
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise ValueError(f"{text!r} is not an IPv6 address: {exc}") from exc
        return address.compressed
    host = host.rstrip(".") if host.endswith(".") and not host.endswith("..") else host
    if not host:
        raise ValueError("the host is empty")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError(f"{text!r} is not a valid international host name: {exc}") from exc
    host = host.lower()
    numeric = _numeric_ipv4(host)
    if numeric is not None:
        return str(numeric)
    labels = host.split(".")
    if len(host) > _MAX_NAME or not all(_LABEL.match(label) for label in labels):
        raise ValueError(
            f"{text!r} is not a host name (letters, digits, '-' and '_' in dot-separated labels)"
        )
    return host


def address_of(host: str) -> IPAddress | None:
    """The address a canonical host is, or None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for: mapped (::ffff:a.b.c.d), 6to4, NAT64."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def non_public_kind(address: IPAddress) -> str | None:
    """What makes `address` something other than the public internet ("loopback", "private",
    "link-local", "cloud metadata", "non-public"), or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return non_public_kind(embedded)
    if address in METADATA_ADDRESSES:
        return "cloud metadata"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_private and not address.is_unspecified:
        return "private"
    # Unspecified (0.0.0.0 reaches this host on Linux), multicast, reserved, shared (CGNAT), ...
    if not address.is_global or address.is_multicast:
        return "non-public"
    return None
