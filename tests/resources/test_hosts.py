"""One canonical spelling per host, and what is not the public internet."""

from __future__ import annotations

import ipaddress

import pytest

from llorch.resources.hosts import address_of, canonical_host, non_public_kind


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("127.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("[::1]", "::1"),
        ("[0:0:0:0:0:0:0:1]", "::1"),
        ("[::FFFF:127.0.0.1]", "::ffff:7f00:1"),
        ("API.Example.COM.", "api.example.com"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("_svc.lan", "_svc.lan"),
    ],
)
def test_every_spelling_becomes_one(written: str, canonical: str) -> None:
    assert canonical_host(written) == canonical


@pytest.mark.parametrize(
    "bad",
    [
        "",
        ".",
        "a..b",
        "exa mple.com",
        "1.2.3.4.5",
        "1.2.x.4",
        "256.1.1.1",
        "0x1.0x100000000",
        "[fe80::1%eth0]",
        "a/b",
    ],
)
def test_what_is_neither_a_name_nor_an_address_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        canonical_host(bad)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:7f00:1", "loopback"),
        ("64:ff9b::a00:1", "private"),
        ("2002:7f00:1::", "loopback"),
        ("10.0.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.0.1", "private"),
        ("fd12::1", "private"),
        ("169.254.10.1", "link-local"),
        ("fe80::1", "link-local"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("0.0.0.0", "non-public"),
        ("::", "non-public"),
        ("100.64.0.1", "non-public"),
        ("224.0.0.1", "non-public"),
        ("93.184.215.14", None),
        ("2606:4700::1111", None),
    ],
)
def test_non_public_addresses_are_named(address: str, kind: str | None) -> None:
    assert non_public_kind(ipaddress.ip_address(address)) == kind


def test_names_are_not_addresses() -> None:
    assert address_of("example.com") is None and address_of("::1") == ipaddress.ip_address("::1")
