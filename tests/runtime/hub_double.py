"""HubDouble: a test double of the Hugging Face Hub, on a real loopback socket.

The Hub cannot be reached from a test, so this answers the two requests `hf_hub_download` makes
for one file: `HEAD /{repo}/resolve/{revision}/{file}` (the commit in `X-Repo-Commit`, the file's
sha256 as its ETag, its size) and the same path with GET (Range honoured, for huggingface_hub's
resume after a broken connection). Unknown repos, revisions and files answer 404 with the
`X-Error-Code` header the Hub sends, so huggingface_hub raises its own errors. Nothing else of the
Hub is modelled. Point huggingface_hub at it with `HF_ENDPOINT`.
"""

from __future__ import annotations

import hashlib
import http.server
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<file>.+)$")
_RANGE = re.compile(r"bytes=(\d+)-")


@dataclass
class Revision:
    commit: str
    files: dict[str, bytes]


@dataclass
class HubDouble:
    url: str
    repos: dict[str, dict[str, Revision]]
    """repo → revision name (a branch, or the commit itself) → what it holds."""
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)
    """(method, path, Range header) of every request."""
    cut_after: int | None = None
    """The next GET sends this many bytes of its body, then closes the connection."""


def commit_of(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()


def _handler(hub: HubDouble) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:
            self._answer(send_body=False)

        def do_GET(self) -> None:
            self._answer(send_body=True)

        def _answer(self, *, send_body: bool) -> None:
            hub.seen.append((self.command, self.path, self.headers.get("Range")))
            match = _RESOLVE.match(self.path.split("?", 1)[0])
            revisions = hub.repos.get(match["repo"]) if match else None
            if match is None or revisions is None:
                return self._missing("RepoNotFound")
            revision = revisions.get(match["revision"])
            if revision is None:
                return self._missing("RevisionNotFound")
            data = revision.files.get(match["file"])
            if data is None:
                return self._missing("EntryNotFound", revision.commit)
            start = 0
            wanted = _RANGE.match(self.headers.get("Range") or "")
            if send_body and wanted:
                start = int(wanted[1])
            body = data[start:]
            self.send_response(206 if start else 200)
            self.send_header("X-Repo-Commit", revision.commit)
            self.send_header("ETag", '"' + hashlib.sha256(data).hexdigest() + '"')
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if not send_body:
                return
            cut, hub.cut_after = hub.cut_after, None
            if cut is not None:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

        def _missing(self, code: str, commit: str | None = None) -> None:
            self.send_response(404)
            self.send_header("X-Error-Code", code)
            if commit is not None:
                self.send_header("X-Repo-Commit", commit)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


@contextmanager
def hub_double(repos: dict[str, dict[str, Revision]]) -> Iterator[HubDouble]:
    hub = HubDouble("", repos)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    httpd.daemon_threads = True
    hub.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield hub
    finally:
        httpd.shutdown()
        httpd.server_close()
