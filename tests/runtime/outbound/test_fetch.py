"""The outbound client connects to the address the guard checked, resolves once per hop, and
reads within its size cap and deadline."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import pytest

from llorch.resources.hosts import IPAddress, address_of
from llorch.runtime.outbound.fetch import OutboundClient, OutboundRequest
from llorch.runtime.outbound.url import OutboundUrl, parse_url
from tests.upstream import LoopbackOnly, upstream


class Recording:
    """A guard that allows everything and remembers what it was shown."""

    def __init__(self) -> None:
        self.hops: list[tuple[str, str, list[str]]] = []

    def before_resolving(self, method: str, url: OutboundUrl) -> None:
        self.hops.append((method, str(url), []))

    def before_connecting(self, method: str, url: OutboundUrl, addresses: Sequence[IPAddress]) -> None:
        self.hops[-1][2].extend(str(a) for a in addresses)


def test_the_connection_goes_to_the_checked_address_not_a_second_answer() -> None:
    answers = iter([["127.0.0.1"], ["10.9.9.9"]])
    asked: list[str] = []

    def rebinding(host: str, port: int) -> list[IPAddress]:
        asked.append(host)
        return [a for a in map(address_of, next(answers)) if a is not None]

    with upstream() as up:
        client = OutboundClient(resolver=rebinding, transport=lambda: LoopbackOnly(up.port))
        guard = Recording()
        fetched = client.fetch(
            OutboundRequest("GET", f"http://svc.example:{up.port}/echo"),
            guard,
            max_bytes=10_000,
            timeout_seconds=5,
        )
    assert fetched.status == 200 and asked == ["svc.example"], "resolved once"
    assert guard.hops == [("GET", f"http://svc.example:{up.port}/echo", ["127.0.0.1"])]
    assert up.seen[0][2]["Host"] == f"svc.example:{up.port}", "the name travels in Host"


def test_redirect_hops_are_each_shown_to_the_guard() -> None:
    with upstream() as up:
        client = OutboundClient(
            resolver=lambda h, p: pytest.fail("nothing to resolve"), transport=lambda: LoopbackOnly(up.port)
        )
        guard = Recording()
        url = up.url("/redirect?status=303&to=/echo")
        fetched = client.fetch(
            OutboundRequest("POST", url, body=b"x"), guard, max_bytes=10_000, timeout_seconds=5
        )
    assert fetched.status == 200 and fetched.method == "GET", "303 turns POST into GET"
    assert [method for method, _, _ in guard.hops] == ["POST", "GET"]
    assert up.seen[1][0] == "GET"


def test_https_names_the_host_for_sni_and_the_certificate() -> None:
    seen: list[httpx.Request] = []

    class Capture(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(204, stream=httpx.ByteStream(b""))

    client = OutboundClient(
        resolver=lambda h, p: [a for a in [address_of("93.184.215.14")] if a], transport=Capture
    )
    client.fetch(
        OutboundRequest("GET", "https://api.example.test/v1?q=1"),
        Recording(),
        max_bytes=10,
        timeout_seconds=5,
    )
    request = seen[0]
    assert request.url.host == "93.184.215.14" and request.url.raw_path == b"/v1?q=1"
    assert request.headers["Host"] == "api.example.test"
    assert request.extensions["sni_hostname"] == "api.example.test"
    assert "authorization" not in request.headers and request.headers["Accept-Encoding"] == "identity"


def test_the_callers_hop_headers_are_replaced() -> None:
    with upstream() as up:
        client = OutboundClient(transport=lambda: LoopbackOnly(up.port))
        client.fetch(
            OutboundRequest(
                "GET", up.url("/echo"), headers=(("Host", "evil.test"), ("Transfer-Encoding", "chunked"))
            ),
            Recording(),
            max_bytes=10_000,
            timeout_seconds=5,
        )
    headers = up.seen[0][2]
    assert headers["Host"] == f"127.0.0.1:{up.port}" and "Transfer-Encoding" not in headers


@pytest.mark.parametrize(
    ("url", "host", "port", "target"),
    [
        ("http://EXAMPLE.com./a?b=1", "example.com", 80, "/a?b=1"),
        ("https://[::1]:8443", "::1", 8443, "/"),
        ("http://u:p@127.1:81/x", "127.0.0.1", 81, "/x"),
    ],
)
def test_urls_parse_to_what_is_sent(url: str, host: str, port: int, target: str) -> None:
    parsed = parse_url(url)
    assert (parsed.host, parsed.port, parsed.target) == (host, port, target)
