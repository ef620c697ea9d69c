"""Reading one number from an engine's own Prometheus /metrics page."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from llorch.runtime.engines.base import Upstream


def gauge_sum(client: httpx.Client, upstream: Upstream, name: str) -> int | None:
    """The sum of `name` over its label sets; None when the page or the metric is missing."""
    try:
        resp = client.get(f"{upstream.base_url}/metrics", headers=dict(upstream.headers), timeout=2.0)
        if resp.status_code != 200:
            return None
        families = list(text_string_to_metric_families(resp.text))
    except (httpx.HTTPError, ValueError):
        return None
    samples = [s.value for family in families for s in family.samples if s.name == name]
    return int(sum(samples)) if samples else None
