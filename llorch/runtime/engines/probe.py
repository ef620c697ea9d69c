"""The small GET requests every adapter makes of its engine: health, version, load."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from llorch.runtime.engines.base import Upstream

# Probes run on the reconcile and dispatch paths; an engine that takes longer than this to say
# whether it is healthy counts as not healthy.
HEALTH_TIMEOUT = 1.0
INFO_TIMEOUT = 2.0


def get(client: httpx.Client, upstream: Upstream, path: str, timeout: float) -> httpx.Response | None:
    try:
        return client.get(f"{upstream.base_url}{path}", headers=dict(upstream.headers), timeout=timeout)
    except httpx.HTTPError:
        return None


def answers_ok(client: httpx.Client, upstream: Upstream, *paths: str) -> bool:
    """Every path answers 200."""
    for path in paths:
        resp = get(client, upstream, path, HEALTH_TIMEOUT)
        if resp is None or resp.status_code != 200:
            return False
    return True


def json_of(client: httpx.Client, upstream: Upstream, path: str) -> Any:
    """The JSON a path answers with 200, or None."""
    resp = get(client, upstream, path, INFO_TIMEOUT)
    if resp is None or resp.status_code != 200:
        return None
    try:
        return resp.json()
    except ValueError:
        return None


def json_text(client: httpx.Client, upstream: Upstream, path: str, field: str) -> str | None:
    """One string field of a path's JSON object (an engine's version), or None."""
    body = json_of(client, upstream, path)
    found = body.get(field) if isinstance(body, dict) else None
    return str(found) if found else None


def positive_int(value: Any) -> int | None:
    """An engine's count (a context size), or None when the field is missing or not a count."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def gauge_sum(client: httpx.Client, upstream: Upstream, name: str) -> int | None:
    """The sum of Prometheus metric `name` over its label sets on /metrics; None when missing."""
    samples = _samples(client, upstream, name)
    return int(sum(samples)) if samples else None


def gauge_max(client: httpx.Client, upstream: Upstream, *names: str) -> float | None:
    """The largest sample of the first of `names` the engine's /metrics has; None when it has none."""
    for name in names:
        samples = _samples(client, upstream, name)
        if samples:
            return max(samples)
    return None


def _samples(client: httpx.Client, upstream: Upstream, name: str) -> list[float]:
    resp = get(client, upstream, "/metrics", INFO_TIMEOUT)
    if resp is None or resp.status_code != 200:
        return []
    try:
        families = list(text_string_to_metric_families(resp.text))
    except ValueError:
        return []
    return [s.value for family in families for s in family.samples if s.name == name]
