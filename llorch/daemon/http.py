"""llorchd's HTTP server: waitress, taught llorch's request limits.

waitress reads a whole request (headers and body) before a thread runs the app, so the limits
that protect llorchd must hold while it reads:

* a request line and headers over `server.maxHeaderBytes`: 431 at once;
* a `Content-Length` over the path's limit (`server.maxBodyBytes`, larger for artifacts): 413
  before the body is read, and the connection closed (waitress's `max_request_body_size` caps
  chunked bodies the same way as they arrive);
* a request still incomplete `server.requestTimeoutSeconds` after its first byte (a client
  sending one byte a second): its connection is closed. waitress's own `channel_timeout` only
  closes connections that send nothing at all, and no thread is held meanwhile: none is given
  to a request before it is whole.

waitress answers these itself, so its error answers are rendered here as llorch's envelope with
an `X-Correlation-Id`, like every other error.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import MultiSocketServer, TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher
from waitress.utilities import Error

from llorch.api.errors import RequestError, envelope
from llorch.api.middleware import BodyLimit
from llorch.api.relay.shapes import dialect_of, error_json
from llorch.resources import ServerConfig
from llorch.resources.errors import ErrorCode

log = logging.getLogger("llorch.daemon")

# How often the server looks for requests that take too long to arrive.
_SWEEP_SECONDS = 1.0
_CODE_BY_STATUS = {
    400: ErrorCode.INVALID_PARAMS,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    431: ErrorCode.REQUEST_HEADERS_TOO_LARGE,
}


class EnvelopeError(Error):
    """A refusal waitress makes before the app runs, answered in llorch's envelope, or in the
    client's own error shape on the OpenAI and Anthropic routes."""

    def __init__(
        self, status: int, reason: str, message: str, correlation_id: str | None, path: str = ""
    ) -> None:
        super().__init__(message)
        self.code = status
        self.reason = reason
        self._error = RequestError(_CODE_BY_STATUS.get(status, ErrorCode.INVALID_PARAMS), message)
        self._correlation_id = correlation_id or str(uuid.uuid4())
        self._dialect = dialect_of(path)

    # The stub says the body is str; waitress writes it to the socket as it is, so it is bytes.
    def to_response(self, ident: str | None = None) -> tuple[str, list[tuple[str, str]], bytes]:  # type: ignore[override]
        shaped = (
            envelope(self._error, self._correlation_id)
            if self._dialect is None
            else error_json(self._dialect, self._error)
        )
        body = json.dumps(shaped).encode()
        headers = [("Content-Type", "application/json"), ("X-Correlation-Id", self._correlation_id)]
        return f"{self.code} {self.reason}", headers, body


class LimitedParser(HTTPRequestParser):
    """waitress's request parser with llorch's per-path body limits applied as soon as the
    headers are in, and its own refusals rendered as llorch's envelope."""

    body_limits: BodyLimit

    def __init__(self, adj: Adjustments) -> None:
        super().__init__(adj)
        self.started = time.monotonic()

    def received(self, data: bytes) -> int:
        had_headers = self.headers_finished
        consumed = int(super().received(data))
        limit, setting = self.body_limits.limit(self._path())
        too_large = f"body of {self.content_length} bytes exceeds {limit} (set by {setting})"
        if self.headers_finished and not had_headers and self.error is None and self.content_length > limit:
            self.error = EnvelopeError(
                413, "Content Too Large", too_large, self._correlation_id(), self._path()
            )
            self.completed = True
        if self.error is not None and not isinstance(self.error, EnvelopeError):
            message = {
                413: too_large
                if self.content_length > limit
                else f"the body exceeds {limit} (set by {setting})",
                431: f"the request line and headers exceed {self.adj.max_request_header_size} bytes "
                "(server.maxHeaderBytes)",
            }.get(self.error.code, self.error.body)
            self.error = EnvelopeError(
                self.error.code, self.error.reason, message, self._correlation_id(), self._path()
            )
        return consumed

    def _correlation_id(self) -> str | None:
        return self.headers.get("X_CORRELATION_ID")

    def _path(self) -> str:
        return str(getattr(self, "path", ""))


def _channel_for(body_limits: BodyLimit) -> type[HTTPChannel]:
    class Parser(LimitedParser):
        pass

    Parser.body_limits = body_limits

    class Channel(HTTPChannel):
        parser_class = Parser

    return Channel


class LimitedServer(TcpWSGIServer):
    """Closes connections whose request is not whole `request_timeout` seconds after it began."""

    def __init__(self, app: Any, *, body_limits: BodyLimit, request_timeout: float, **kw: Any) -> None:
        # Set before waitress starts accepting: its first connection may come at once.
        self.channel_class = _channel_for(body_limits)
        self.request_timeout = request_timeout
        super().__init__(app, **kw)

    def maintenance(self, now: int) -> None:
        super().maintenance(now)
        started_before = time.monotonic() - self.request_timeout
        channels: dict[int, HTTPChannel] = self.active_channels  # type: ignore[assignment]
        for channel in list(channels.values()):
            request = channel.request
            if isinstance(request, LimitedParser) and request.started < started_before:
                log.warning(
                    "closed a connection from %s: its request was not whole after %g s "
                    "(server.requestTimeoutSeconds)",
                    channel.addr[0] if channel.addr else "?",
                    self.request_timeout,
                )
                channel.will_close = True


def create_server(
    app: Any,
    config: ServerConfig,
    body_limits: BodyLimit,
    *,
    host: str,
    port: int,
    map: dict[int, Any] | None = None,
    **adjustments: Any,
) -> LimitedServer | MultiSocketServer:
    """waitress's `create_server` for TCP, with llorch's limits (see the module docstring)."""
    limits = config.server
    adj = Adjustments(
        host=host,
        port=port,
        max_request_header_size=limits.max_header_bytes,
        # Chunked bodies have no length up front: waitress stops them at the largest limit.
        max_request_body_size=body_limits.largest + 1,
        cleanup_interval=_SWEEP_SECONDS,
        **adjustments,
    )
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    servers = [
        LimitedServer(
            app,
            body_limits=body_limits,
            request_timeout=limits.request_timeout_seconds,
            map=map,
            dispatcher=dispatcher,
            adj=adj,
            sockinfo=sockinfo,
        )
        for sockinfo in adj.listen
    ]
    if len(servers) == 1:
        return servers[0]
    # Only for waitress's "serving on" message, which llorchd writes itself.
    listening = [(host, port) for _ in servers]
    return MultiSocketServer(map, adj, listening, dispatcher)
