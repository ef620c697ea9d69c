"""GET /metrics over real loopback HTTP: the contract's names, in the Prometheus text format."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from llorch.dataplane.metrics import Metrics
from llorch.runtime.gpus import SimulatedInventory
from tests.api.test_app import POOL, Api, serve

# The names as a scraper reads them off `# TYPE` lines (counters keep their _total); the whole
# set, with labels, is contracts/metrics.yaml (tests/api/test_metrics_contract.py).
CONTRACT = {
    "llorch_tasks_enqueued_total": "counter",
    "llorch_tasks_started_total": "counter",
    "llorch_tasks_canceled_total": "counter",
    "llorch_tasks_rejected_total": "counter",
    "llorch_queue_depth": "gauge",
    "llorch_tokens_in_total": "counter",
    "llorch_tokens_out_total": "counter",
    "llorch_latency_first_token_seconds": "histogram",
    "llorch_latency_decode_seconds": "histogram",
    "llorch_admission_backpressure_events_total": "counter",
    "llorch_replica_slots_busy": "gauge",
    "llorch_replica_slots": "gauge",
    "llorch_gpu_utilization_ratio": "gauge",
    "llorch_vram_used_bytes": "gauge",
    "llorch_model_state": "gauge",
    "llorch_placement_decisions_total": "counter",
    "llorch_catalog_verifications_total": "counter",
    "llorch_kv_cache_usage_ratio": "gauge",
    "llorch_engine_up": "gauge",
}

MODEL = """\
apiVersion: llorch.dev/v1
kind: Model
metadata:
  name: tiny-llama
spec:
  source:
    path: tiny.gguf
"""


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from serve(tmp_path, metrics=Metrics(inventory=SimulatedInventory([])))


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Api]:
    yield from serve(tmp_path, tokens=("s3cret",), metrics=Metrics())


def test_metrics_has_every_contract_name_in_the_text_format(api: Api) -> None:
    resp = api.http.get(api.url + "/metrics")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    declared = dict(line.split()[2:4] for line in resp.text.splitlines() if line.startswith("# TYPE "))
    assert {name: declared.get(name) for name in CONTRACT} == CONTRACT
    families = list(text_string_to_metric_families(resp.text))
    assert families, "the body parses as Prometheus text"


def test_api_traffic_shows_up_on_the_next_scrape(api: Api) -> None:
    headers = {"Content-Type": "application/yaml"}
    api.http.post(api.url + "/v1/manifests", content=POOL + "---\n" + MODEL, headers=headers)
    refused = api.http.post(api.url + "/v1/tasks", json={"pool": "demo", "prompt": "hi"})
    assert refused.json()["code"] == "POOL_UNREADY"
    text = api.http.get(api.url + "/metrics").text
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert values[("llorch_tasks_rejected_total", (("pool_id", "demo"), ("reason", "POOL_UNREADY")))] == 1
    assert values[("llorch_queue_depth", (("pool_id", "demo"), ("priority", "interactive")))] == 0
    assert values[("llorch_model_state", (("model_id", "tiny-llama"), ("state", "Active")))] == 1
    assert "task_id" not in text and "session_id" not in text


def test_metrics_needs_the_token_like_the_rest_of_the_api(secured: Api) -> None:
    assert secured.http.get(secured.url + "/metrics").status_code == 401
    ok = secured.http.get(secured.url + "/metrics", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and "llorch_tasks_enqueued_total" in ok.text
