"""What every SSE-speaking engine adapter shares: send the request, hold the response so another
thread can drop it, turn transport failures into WORKER_RESET, and feed the events to a parser.

Each adapter supplies only two things: a parser (engine events in, `Token`/`Finished` out) and a
mapper from an HTTP error status and body to a contract error code.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from httpx_sse import EventSource, ServerSentEvent

from llorch.resources.errors import ErrorCode
from llorch.runtime.engines.base import Finished, StreamEvent
from llorch.runtime.errors import EngineError

Parser = Callable[[Iterator[ServerSentEvent]], Iterator[StreamEvent]]
ErrorMapper = Callable[[int, str], EngineError]

# No read timeout: a decode step of a large model on a busy GPU can take seconds, and the data
# plane enforces deadlines itself by calling close().
_TIMEOUT = httpx.Timeout(10.0, read=None)


class HeldRequest:
    """A request to an engine whose response another thread may drop at any moment (`close()`),
    so that the engine stops decoding for nobody."""

    def __init__(self, client: httpx.Client, engine: str) -> None:
        self._client = client
        self._engine = engine
        self._response: httpx.Response | None = None
        self._closed = threading.Event()
        self._lock = threading.Lock()

    def close(self) -> None:
        """Effective at once while the body streams. Before the engine has sent its response
        headers (Triton sends them with the first token) there is no connection to hand yet:
        the stream then ends as soon as they arrive, without yielding anything."""
        self._closed.set()
        # Under the lock so the reader cannot have released the connection to the pool (where
        # another request may take it) between our look and the shutdown.
        with self._lock:
            if self._response is not None:
                drop_connection(self._response)

    def _send(self, request: httpx.Request) -> httpx.Response | None:
        """The response, held for close(); None when closed before the engine answered."""
        try:
            response = self._send_once_more_if_dropped(request)
        except httpx.HTTPError as exc:
            if self._closed.is_set():
                return None
            raise self._reset(f"unreachable: {exc}") from exc
        with self._lock:
            self._response = response
        if self._closed.is_set():
            self._release(response)
            return None
        return response

    def _send_once_more_if_dropped(self, request: httpx.Request) -> httpx.Response:
        """An engine may close a kept-alive connection just as it is taken again (llama-server ends
        idle ones on its own clock); it then answered nothing, so the request goes once more."""
        try:
            return self._client.send(request, stream=True)
        except httpx.RemoteProtocolError:
            if self._closed.is_set():
                raise
            return self._client.send(request, stream=True)

    def _release(self, response: httpx.Response) -> None:
        with self._lock:
            self._response = None
        response.close()

    def _reset(self, what: str) -> EngineError:
        return EngineError(
            ErrorCode.WORKER_RESET, f"{self._engine} {what}", retriable=True, engine=self._engine
        )


class SseCompletion(HeldRequest):
    """One streamed completion; iterate once. `close()` may be called from any thread."""

    def __init__(
        self,
        client: httpx.Client,
        url: str,
        body: dict[str, Any],
        headers: dict[str, str],
        *,
        engine: str,
        parse: Parser,
        error: ErrorMapper,
    ) -> None:
        super().__init__(client, engine)
        self._url = url
        self._body = body
        self._headers = headers
        self._parse = parse
        self._error = error

    def __iter__(self) -> Iterator[StreamEvent]:
        if self._closed.is_set():
            return
        request = self._client.build_request(
            "POST", self._url, json=self._body, headers=self._headers, timeout=_TIMEOUT
        )
        response = self._send(request)
        if response is None:
            return
        try:
            if response.status_code != 200:
                response.read()
                raise self._error(response.status_code, response.text)
            yield from self._relay(response)
        except httpx.HTTPError as exc:
            if self._closed.is_set():
                return
            raise self._reset(f"stream broke: {exc}") from exc
        except EngineError:
            # Whatever a dropped connection looks like to the parser, a cancelled stream ends quietly.
            if self._closed.is_set():
                return
            raise
        finally:
            self._release(response)

    def _relay(self, response: httpx.Response) -> Iterator[StreamEvent]:
        # The closed flag is checked before every event handed on: after close() the caller gets
        # at most the event already in hand, not what the engine had buffered beyond it.
        for event in self._parse(EventSource(response).iter_sse()):
            if self._closed.is_set():
                return
            yield event
            if isinstance(event, Finished):
                return
        if not self._closed.is_set():
            raise self._reset("ended the stream without its final chunk")


def drop_connection(response: httpx.Response) -> None:
    """Shut the socket down rather than only closing it: close() from another thread leaves a
    blocked recv() waiting, and the engine sees no FIN until that read returns. shutdown() wakes
    the reader with EOF and tells the engine at once, so it stops decoding for nobody."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if not isinstance(sock, socket.socket):
        response.close()  # a transport without a socket to reach (a test double, HTTP/2)
        return
    # OSError: already closed, the stream is over and the reader has let go of it.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def decode(event: ServerSentEvent, engine: str) -> dict[str, Any]:
    """An event's JSON payload; anything else means the engine broke its protocol."""
    try:
        payload = json.loads(event.data)
    except ValueError as exc:
        raise EngineError(
            ErrorCode.INTERNAL, f"{engine} sent an unparseable event: {event.data[:200]!r}", engine=engine
        ) from exc
    if not isinstance(payload, dict):
        raise EngineError(
            ErrorCode.INTERNAL, f"{engine} sent a non-object event: {event.data[:200]!r}", engine=engine
        )
    return payload


def json_body(text: str) -> dict[str, Any]:
    """An error body as a JSON object, or {} when it is not one (a proxy's HTML page, plain text)."""
    try:
        payload = json.loads(text)
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def status_error(status: int, message: str, engine: str) -> EngineError:
    """The contract code for an engine's HTTP error status, where the status alone decides."""
    if status in (400, 413, 422):
        return EngineError(ErrorCode.INVALID_PARAMS, message, engine=engine)
    if status in (429, 503):
        return EngineError(
            ErrorCode.REPLICA_EXHAUSTED, f"{engine} is overloaded: {message}", retriable=True, engine=engine
        )
    if status == 404:
        return EngineError(
            ErrorCode.POOL_UNAVAILABLE, f"{engine} does not serve the model: {message}", engine=engine
        )
    return EngineError(ErrorCode.INTERNAL, f"{engine} error {status}: {message}", engine=engine)


def request_headers(base: tuple[tuple[str, str], ...], correlation_id: str | None) -> dict[str, str]:
    headers = dict(base)
    if correlation_id:
        headers["X-Correlation-Id"] = correlation_id
    return headers
