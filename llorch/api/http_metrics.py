"""llorch_http_requests_total and llorch_http_request_duration_seconds, by route template (never
the raw path, which holds ids) and status code."""

from __future__ import annotations

import time
from typing import Any

import falcon
from prometheus_client import CollectorRegistry, Counter, Histogram

# Seconds until the response's headers are ready (an SSE stream's body runs on after that).
DURATION_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# The route label of a request no route matched (a 404 of an unknown path, a probe of anything).
UNMATCHED = "unmatched"
_STARTED = "http_metrics.started"


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._requests = Counter(
            "llorch_http_requests_total",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "code"],
            registry=registry,
        )
        self._durations = Histogram(
            "llorch_http_request_duration_seconds",
            "Request received to response headers ready, by method and route template.",
            ["method", "route"],
            buckets=DURATION_BUCKETS_S,
            registry=registry,
        )

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context[_STARTED] = time.monotonic()

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any, ok: bool) -> None:
        route = req.uri_template if resource is not None and req.uri_template else UNMATCHED
        method = req.method if req.method in _METHODS else "OTHER"
        self._requests.labels(method, route, str(resp.status_code)).inc()
        started = req.context.get(_STARTED)
        if started is not None:
            self._durations.labels(method, route).observe(time.monotonic() - started)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
