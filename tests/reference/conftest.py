"""The reference environment: a real workstation (the RTX 3090 + RTX 3060 box) at
$LLORCH_REFERENCE_URL, usually through `llorchctl tunnel`, with $LLORCH_REFERENCE_TOKEN if its
llorchd wants one. Unset, every test here is skipped with the reason; `pytest -m reference` runs
only these. Latency and budget figures go to a JSON report ($LLORCH_REFERENCE_REPORT, else
reports/reference-<UTC time>.json)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from llorch.resources.status import PoolStatus

REPO = Path(__file__).resolve().parents[2]
URL_ENV, TOKEN_ENV, REPORT_ENV = "LLORCH_REFERENCE_URL", "LLORCH_REFERENCE_TOKEN", "LLORCH_REFERENCE_REPORT"
UNSET = (
    f"${URL_ENV} is not set: these tests run against a real workstation "
    f"(${URL_ENV}=http://127.0.0.1:PORT from `llorchctl tunnel user@box`, ${TOKEN_ENV} if it wants a key)"
)


@dataclass
class Report:
    """What the run measured, written as JSON when the session ends."""

    server: str
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    figures: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, value: Any) -> None:
        self.figures[name] = value


@dataclass(frozen=True)
class Box:
    url: str
    http: httpx.Client
    report: Report

    def ready_pools(self) -> list[tuple[str, PoolStatus]]:
        pools = self.http.get("/v1/pools").raise_for_status().json().get("items", [])
        statuses = [(p["metadata"]["name"], PoolStatus.model_validate(p.get("status") or {})) for p in pools]
        return [(name, status) for name, status in statuses if status.ready_replicas > 0]


def report_path() -> Path:
    explicit = os.environ.get(REPORT_ENV)
    if explicit:
        return Path(explicit)
    return REPO / "reports" / f"reference-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"


@pytest.fixture(scope="session")
def box() -> Iterator[Box]:
    url = os.environ.get(URL_ENV)
    if not url:
        pytest.skip(UNSET)
    token = os.environ.get(TOKEN_ENV)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    report = Report(server=url)
    with httpx.Client(base_url=url, headers=headers, timeout=httpx.Timeout(30.0, read=300.0)) as http:
        found = Box(url, http, report)
        report.add("version", http.get("/version").json())
        yield found
    path = report_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"server": report.server, "started": report.started, **report.figures}, indent=2)
    )
    print(f"\nreference report: {path}")
