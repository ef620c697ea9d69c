"""A client's OpenAI- or Anthropic-shaped request relayed to an engine that speaks it.

The body goes out as the client wrote it, `model` set to the engine's name for the model; the
engine's bytes come back as they are, one `Chunk` per read from its socket (streams are cut only
at event boundaries, so a chunk is whole SSE events). `UsageReader` looks at each event for
what llorch counts. The one change to the engine's bytes: when llorch itself asked the engine
for a stream's usage (`strip_usage`), the usage chunk the client did not ask for is left out.

An engine's error status comes back as `RelayError`, which keeps the engine's status and its
error object, so the client sees what it would have seen from the engine directly.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from llorch.runtime.engines.base import Finished, Upstream
from llorch.runtime.engines.sse import HeldRequest, json_body, request_headers, status_error
from llorch.runtime.engines.usage import UsageReader, is_usage_chunk
from llorch.runtime.errors import EngineError

# The paths llorch relays, as engines serve them.
CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
EMBEDDINGS = "/v1/embeddings"
RERANK = "/v1/rerank"
RESPONSES = "/v1/responses"
MESSAGES = "/v1/messages"
COUNT_TOKENS = "/v1/messages/count_tokens"
# Where `stream_options.include_usage` asks an OpenAI-shaped stream for its usage.
USAGE_OPTION_PATHS = frozenset({CHAT, COMPLETIONS})

# No read timeout, for the reason llorch.runtime.engines.sse gives.
_TIMEOUT = httpx.Timeout(10.0, read=None)


@dataclass(frozen=True)
class RelayRequest:
    """`path` is the engine's, e.g. /v1/chat/completions; `body` the client's, llorch's own fields
    taken out. `max_tokens` and `seed` are what admission and determinism look at."""

    path: str
    body: dict[str, Any]
    stream: bool
    max_tokens: int
    strip_usage: bool = False
    seed: int | None = None
    correlation_id: str | None = None
    headers: tuple[tuple[str, str], ...] = field(default=())


@dataclass(frozen=True)
class Chunk:
    """Engine bytes to pass on unchanged, and the decode steps they carried."""

    raw: bytes
    tokens: int


RelayEvent = Chunk | Finished


class RelayError(EngineError):
    """The engine refused or failed: its HTTP status and its own error object. `relayed`: the
    error came inside a stream whose bytes already went to the client, error event included."""

    def __init__(self, status: int, upstream: dict[str, Any], engine: str, *, relayed: bool = False) -> None:
        message = str(upstream.get("message") or f"{engine} answered {status}")
        mapped = status_error(status, message, engine)
        super().__init__(mapped.code, message, retriable=mapped.retriable, engine=engine)
        self.status = status
        self.upstream = upstream
        self.relayed = relayed

    def frame(self) -> dict[str, Any]:
        return {**super().frame(), "status": self.status, "upstream": self.upstream, "relayed": self.relayed}


def upstream_error(status: int, text: str) -> dict[str, Any]:
    """The engine's error object from its body: OpenAI's `{"error": {...}}`, Anthropic's
    `{"type": "error", "error": {...}}`, TGI's `{"error": "...", "error_type"}`, or plain text."""
    payload = json_body(text)
    error = payload.get("error")
    if isinstance(error, dict):
        return error
    if isinstance(error, str):
        return {"message": error, "type": payload.get("error_type")}
    return {"message": text[:500] or f"status {status}"}


class RelayStream(HeldRequest):
    """One relayed request; iterate once. `close()` may be called from any thread."""

    def __init__(self, client: httpx.Client, upstream: Upstream, request: RelayRequest, engine: str) -> None:
        super().__init__(client, engine)
        self._upstream = upstream
        self._request = request
        # The connection's socket as soon as it is connected, before any response: an engine
        # answering a whole (non-streamed) request sends its headers only when it is done.
        self._socket: socket.socket | None = None

    def close(self) -> None:
        super().close()
        with self._lock:
            if self._response is None and self._socket is not None:
                _shut(self._socket)

    def _trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook: the new connection's socket (the client for whole requests keeps
        no connection alive, so each one is new and its socket is this request's alone)."""
        if event != "connection.connect_tcp.complete":
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, socket.socket):
            with self._lock:
                self._socket = sock
                if self._closed.is_set():
                    _shut(sock)

    def __iter__(self) -> Iterator[RelayEvent]:
        if self._closed.is_set():
            return
        request = self._request
        body = json.dumps({**request.body, "model": self._upstream.model}).encode()
        headers = {
            **request_headers(self._upstream.headers, request.correlation_id),
            **dict(request.headers),
            "Content-Type": "application/json",
        }
        sent = self._client.build_request(
            "POST",
            self._upstream.base_url + request.path,
            content=body,
            headers=headers,
            timeout=_TIMEOUT,
            extensions={"trace": self._trace},
        )
        response = self._send(sent)
        if response is None:
            return
        try:
            if not response.is_success:
                response.read()
                raise RelayError(
                    response.status_code, upstream_error(response.status_code, response.text), self._engine
                )
            if request.stream and response.headers.get("content-type", "").startswith("text/event-stream"):
                yield from self._events(response)
            else:
                yield from self._whole(response)
        except httpx.HTTPError as exc:
            if self._closed.is_set():
                return
            raise self._reset(f"stream broke: {exc}") from exc
        finally:
            with self._lock:
                self._socket = None
            self._release(response)

    def _whole(self, response: httpx.Response) -> Iterator[RelayEvent]:
        raw = response.read()
        reader = UsageReader()
        payload = json_body(raw.decode(errors="replace"))
        reader.whole(payload)
        if self._closed.is_set():
            return
        yield Chunk(raw, 0)
        yield reader.finished()

    def _events(self, response: httpx.Response) -> Iterator[RelayEvent]:
        reader = UsageReader()
        strip = self._request.strip_usage
        pending = b""
        for piece in response.iter_bytes():
            if self._closed.is_set():
                return
            pending += piece.replace(b"\r\n", b"\n") if b"\r" in piece else piece
            end = pending.rfind(b"\n\n")
            if end < 0:
                continue
            whole, pending = pending[: end + 2], pending[end + 2 :]
            kept: list[bytes] = []
            tokens = 0
            for event in whole.split(b"\n\n")[:-1]:
                payload = _payload(event)
                if payload is not None:
                    tokens += reader.chunk(payload)
                    if strip and is_usage_chunk(payload):
                        continue
                kept.append(event + b"\n\n")
            yield Chunk(b"".join(kept), tokens)
            if reader.error is not None:
                status = reader.error.get("code")
                raise RelayError(
                    status if isinstance(status, int) and status >= 400 else 500,
                    reader.error,
                    self._engine,
                    relayed=True,
                )
        if pending.strip() and not self._closed.is_set():
            yield Chunk(pending, 0)
        if not self._closed.is_set():
            yield reader.finished()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _payload(event: bytes) -> dict[str, Any] | None:
    """An SSE event's data as a JSON object; None for `[DONE]`, comments and anything else."""
    data = b"\n".join(line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:"))
    if not data or data == b"[DONE]":
        return None
    try:
        payload = json.loads(data)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None
