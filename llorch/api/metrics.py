"""GET /metrics: the daemon's Prometheus registry in the text exposition format (0.0.4).

Behind the same bearer token as the rest of the API (pool and model names are not for everyone);
Prometheus sends one with `authorization: {credentials: ...}` in its scrape config.
"""

from __future__ import annotations

import falcon
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4


class MetricsResource:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.data = generate_latest(self._registry)
        resp.content_type = CONTENT_TYPE_PLAIN_0_0_4
        resp.cache_control = ["no-cache"]
