"""A real HTTP server on loopback that serves files with Range support (206, Content-Range, 416,
ETag and If-Range), and can cut a connection part-way, once, to interrupt a download."""

from __future__ import annotations

import hashlib
import http.server
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


@dataclass
class RangeServer:
    url: str
    files: dict[str, bytes]
    ranges: list[str | None] = field(default_factory=list)
    """The Range header of every GET, in order (None: none sent)."""
    cut_after: int | None = None
    """The next GET sends this many bytes of its body and closes the connection (then it is cleared)."""
    bytes_per_chunk: int = 64 * 1024
    seconds_per_chunk: float = 0.0
    """A pause after each chunk, so a download lasts long enough to watch."""

    def etag(self, name: str) -> str:
        return '"' + hashlib.sha256(self.files[name]).hexdigest()[:16] + '"'


def _handler(server: RangeServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            name = self.path.lstrip("/")
            if name not in server.files:
                self.send_error(404)
                return
            data = server.files[name]
            wanted = self.headers.get("Range")
            server.ranges.append(wanted)
            start, status = 0, 200
            match = _RANGE.fullmatch(wanted or "")
            if_range = self.headers.get("If-Range")
            if match and (if_range is None or if_range == server.etag(name)):
                start = int(match[1])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            body = data[start:]
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", server.etag(name))
            self.send_header("Accept-Ranges", "bytes")
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            cut, server.cut_after = server.cut_after, None
            sent = 0
            for offset in range(0, len(body), server.bytes_per_chunk):
                chunk = body[offset : offset + server.bytes_per_chunk]
                if cut is not None and sent + len(chunk) > cut:
                    self.wfile.write(chunk[: cut - sent])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(chunk)
                sent += len(chunk)
                time.sleep(server.seconds_per_chunk)

    return Handler


@contextmanager
def range_server(files: dict[str, bytes]) -> Iterator[RangeServer]:
    state = RangeServer("", files)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
