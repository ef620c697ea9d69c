"""A server span per request, parented on the client's W3C `traceparent`, and current while the
request runs: what llorch does for it (an admission, a relayed engine call) joins the client's
trace, whichever front door it came through."""

from __future__ import annotations

from typing import Any

import falcon

from llorch.runtime import tracing

_SPAN = "tracing.span"
_TOKEN = "tracing.token"


class TraceContext:
    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        span = tracing.start_span(
            req.method,
            {"http.request.method": req.method, "url.path": req.path},
            parent=tracing.extract(req.headers),
            kind="server",
        )
        req.context[_SPAN] = span
        req.context[_TOKEN] = tracing.attach(span.context)

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: Any
    ) -> None:
        span = req.context.get(_SPAN)
        if isinstance(span, tracing.SpanHandle) and resource is not None and req.uri_template:
            span.rename(f"{req.method} {req.uri_template}")
            span.set({"http.route": req.uri_template})

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any, ok: bool) -> None:
        span: tracing.SpanHandle | None = req.context.get(_SPAN)
        if span is None:
            return
        span.set(
            {
                "http.response.status_code": resp.status_code,
                tracing.CORRELATION_ID: req.context.get("correlation_id"),
            }
        )
        if resp.status_code >= 500:
            span.fail(f"HTTP {resp.status_code}")
        # The thread goes back to waitress's pool: this request's context must not stay current.
        tracing.detach(req.context.get(_TOKEN))
        span.end()
