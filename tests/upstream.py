"""What HTTP tool calls reach in tests: a real HTTP server on loopback, and the doubles that make
sure nothing else is ever reached (a transport and a resolver that fail the test when used)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from llorch.resources.hosts import IPAddress, address_of

LOOPBACK_HOSTS = ("127.0.0.1", "::1")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: pytest shows what matters."""

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _serve(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        server: Upstream = self.server.upstream  # type: ignore[attr-defined]
        server.seen.append((self.command, self.path, dict(self.headers.items())))
        if url.path in server.files:
            self._send(200, server.files[url.path], {"Content-Type": "application/json"})
        elif url.path == "/echo":
            echoed = {"method": self.command, "path": self.path, "headers": dict(self.headers.items())}
            echoed["body"] = body.decode()
            self._send(200, json.dumps(echoed).encode(), {"Content-Type": "application/json"})
        elif url.path == "/redirect":
            self._send(int(query.get("status", "302")), b"", {"Location": query["to"]})
        elif url.path == "/big":
            self._send(200, b"x" * int(query["n"]))
        elif url.path == "/secrets":
            self._send(
                200,
                b'{"token": "tok_abcdef123456", "note": "Authorization: Bearer abc.def.ghi12345"}',
                {"Set-Cookie": "session=s3cr3tcookie", "X-Internal-Key": "k-987654321", "X-Plain": "fine"},
            )
        elif url.path == "/drip":
            # Headers at once, then one byte every `every` seconds, for much longer than any timeout.
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            every = float(query.get("every", "0.2"))
            try:
                for _ in range(1000):
                    self.wfile.write(b".")
                    self.wfile.flush()
                    time.sleep(every)
            except OSError:
                return
        elif url.path == "/stall":
            time.sleep(float(query.get("seconds", "5")))
            self._send(200, b"late")
        else:
            self._send(404, b"no such path")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve


@dataclass
class Upstream:
    port: int
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    """Served as they are at their paths (a JWKS document, say)."""

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@contextmanager
def upstream() -> Iterator[Upstream]:
    """A real HTTP server on 127.0.0.1 (see `_Handler` for its paths), stopped afterwards."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    state = Upstream(server.server_address[1])
    server.upstream = state  # type: ignore[attr-defined]
    # A short poll: shutdown() waits for it, at the end of every test.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class LoopbackOnly(httpx.BaseTransport):
    """A real transport for loopback on the given ports; any other destination fails the test:
    a refusal must come before any connection, and a test never sends traffic elsewhere."""

    def __init__(self, *ports: int) -> None:
        self._ports = set(ports)
        self._real = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host not in LOOPBACK_HOSTS or request.url.port not in self._ports:
            pytest.fail(f"an outbound connection to {host}:{request.url.port} was attempted")
        return self._real.handle_request(request)

    def close(self) -> None:
        self._real.close()


@dataclass
class FakeDns:
    """Answers only the names it was given; looking up any other fails the test (a name that a
    rule denies must not even be resolved)."""

    answers: dict[str, list[str]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.asked.append(host)
        if host not in self.answers:
            pytest.fail(f"the resolver was asked for {host}")
        return [a for a in (address_of(text) for text in self.answers[host]) if a is not None]
