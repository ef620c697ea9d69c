"""A loopback HTTP server that answers with fixture bytes, for engines that cannot run here.

Routes map (method, path) to a `Reply`; every request is recorded (method, path, headers, JSON
body) for assertions. A streamed reply is written with chunked transfer encoding, one fixture
event per chunk, the way uvicorn, axum and Triton's evhtp frontend send SSE; it can be cut off
mid-body or held open until the client goes away, which is how the cancel tests see the
disconnect from the engine's side.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from llorch.runtime.engines.base import CompletionRequest, Upstream

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "engines"
HOLD_LIMIT_SECONDS = 10.0


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    events: tuple[bytes, ...] | None = None  # set: stream these pieces, chunked
    delay: float = 0.0  # seconds between streamed pieces
    hold: bool = False  # after the last piece, keep the stream open until the client leaves
    cut: bool = False  # after the last piece, drop the connection without ending the body


NO_ROUTE = Reply(status=404, body=b'{"error":"no route"}')


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any  # the JSON body, or None


def fixture(engine: str, name: str) -> bytes:
    return (FIXTURES / engine / name).read_bytes()


def sse_events(data: bytes) -> tuple[bytes, ...]:
    """Split an SSE body after each blank line; joined back, the pieces are the file byte for byte."""
    pieces = [piece + b"\n\n" for piece in data.split(b"\n\n")]
    pieces[-1] = pieces[-1][:-2]
    return tuple(piece for piece in pieces if piece)


def stream_reply(engine: str, name: str, *, status: int = 200, **options: Any) -> Reply:
    return Reply(
        status=status, content_type="text/event-stream", events=sse_events(fixture(engine, name)), **options
    )


def json_reply(engine: str, name: str, *, status: int = 200) -> Reply:
    return Reply(status=status, body=fixture(engine, name))


class ReplayServer:
    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], Reply] = {}
        self._requests: list[Recorded] = []
        self._lock = threading.Lock()
        self.streaming = threading.Event()  # a streamed reply has written its first piece
        self.client_left = threading.Event()  # a held stream saw its client disconnect
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def route(self, method: str, path: str, reply: Reply) -> None:
        with self._lock:
            self._routes[(method, path)] = reply

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _reply_for(self, record: Recorded) -> Reply:
        with self._lock:
            self._requests.append(record)
            return self._routes.get((record.method, record.path), NO_ROUTE)


def _handler_for(server: ReplayServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def handle(self) -> None:
            # Adapters drop the connection as soon as they have the final event, sometimes
            # before reading the end of the body; the reset that follows is not a failure.
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                super().handle()

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            record = Recorded(
                method=self.command,
                path=self.path.split("?", 1)[0],
                headers={name.lower(): value for name, value in self.headers.items()},
                body=json.loads(raw) if raw else None,
            )
            reply = server._reply_for(record)
            if reply.events is None:
                self._send_whole(reply)
            else:
                self._stream(reply)

        def _send_whole(self, reply: Reply) -> None:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        def _stream(self, reply: Reply) -> None:
            assert reply.events is not None
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for i, piece in enumerate(reply.events):
                    if i:
                        time.sleep(reply.delay)
                    self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    self.wfile.flush()
                    server.streaming.set()
            except (BrokenPipeError, ConnectionResetError):
                server.client_left.set()
                self.close_connection = True
                return
            if reply.hold:
                self._wait_for_client_to_leave()
            elif not reply.cut:
                self.wfile.write(b"0\r\n\r\n")
                return
            self.close_connection = True

        def _wait_for_client_to_leave(self) -> None:
            # The client sent its whole request, so the socket turns readable only at EOF.
            deadline = time.monotonic() + HOLD_LIMIT_SECONDS
            sock = self.connection
            while time.monotonic() < deadline:
                readable, _, _ = select.select([sock], [], [], 0.05)
                if not readable:
                    continue
                try:
                    gone = sock.recv(1, socket.MSG_PEEK) == b""
                except (ConnectionResetError, OSError):
                    gone = True
                if gone:
                    server.client_left.set()
                    return

    return Handler


def collect(stream: Iterable[object]) -> list[object]:
    return list(stream)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def held(engine: str, name: str, events: int) -> Reply:
    """The first `events` events of a stream fixture, then the stream stays open."""
    return _prefix(engine, name, events, hold=True)


def cut(engine: str, name: str, events: int) -> Reply:
    """The first `events` events of a stream fixture, then the connection drops mid-body."""
    return _prefix(engine, name, events, cut=True)


def truncated(engine: str, name: str, events: int) -> Reply:
    """The first `events` events of a stream fixture, then a clean end of body."""
    return _prefix(engine, name, events)


def _prefix(engine: str, name: str, events: int, **options: Any) -> Reply:
    pieces = sse_events(fixture(engine, name))[:events]
    return Reply(content_type="text/event-stream", events=pieces, **options)


# One request every wire-fixture test sends: every sampling parameter set, so each engine's
# translation of them can be asserted.
REQUEST = CompletionRequest(
    prompt="The capital of France is",
    max_tokens=16,
    seed=42,
    temperature=0.7,
    top_p=0.9,
    top_k=40,
    stop=["\n\n"],
    correlation_id="corr-123",
)


def upstream(server: ReplayServer) -> Upstream:
    return Upstream(base_url=server.base_url, model="tiny", headers=(("Authorization", "Bearer s3cret"),))
