"""A llorchd process with real llama-server replicas, after answers, a refusal, a cancel and a
replica killed mid-answer: its /metrics against contracts/metrics.yaml both ways, and through
promtool's linter."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.observed import Observed, observed_llorchd, run_workload
from tests.metrics_contract import parse, problems

pytestmark = [pytest.mark.engine, pytest.mark.slow]


@pytest.fixture
def observed(tmp_path: Path, llama_server_bin: Path, demo_model: Path) -> Iterator[Observed]:
    yield from observed_llorchd(tmp_path)


def test_a_busy_llorchd_exposes_exactly_the_contracts_metric_set(observed: Observed) -> None:
    daemon = observed.daemon
    assert daemon.http.get(daemon.url + "/metrics", headers={"Authorization": ""}).status_code == 401
    run_workload(daemon)
    text = daemon.http.get(daemon.url + "/metrics").text
    assert problems(text) == []
    exposed = parse(text)

    def values(family: str, label: str) -> set[str]:
        return {labels[label] for _, labels in exposed[family].samples}

    assert values("llorch_tasks_started_total", "engine") == {"llamacpp"}
    assert values("llorch_tasks_rejected_total", "reason") == {"INVALID_PARAMS"}
    assert values("llorch_tasks_canceled_total", "reason") == {"cancel"}
    assert values("llorch_tasks_failed_total", "code") == {"WORKER_RESET"}
    assert values("llorch_replica_restarts_total", "pool_id") == {"demo"}
    assert values("llorch_engine_up", "pool_id") == {"demo"}
    assert values("llorch_kv_cache_usage_ratio", "engine") == {"llamacpp"}, "from llama-server's /slots"
    assert values("llorch_reconcile_total", "controller") >= {"Model", "Pool"}
    assert "/v1/tasks/{task_id}/cancel" in values("llorch_http_requests_total", "route")
    assert values("llorch_vram_used_bytes", "device"), "NVML (or its double) reports the GPUs"
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("PROMTOOL MISSING: install Debian's `prometheus` (`just system-deps`) to lint the scrape")
    linted = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert linted.returncode == 0, linted.stdout + linted.stderr
