"""llorchd with OTEL_TRACES_EXPORTER=console and a real llama-server replica: a task sent with a
W3C traceparent leaves its spans, in the client's trace, on llorchd's output, and so does each
reconcile."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.e2e.conftest import REPO, start_llorchd, stop_llorchd, wait_for

pytestmark = [pytest.mark.engine, pytest.mark.slow]

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"


def printed_spans(log: str) -> list[dict[str, Any]]:
    """The console exporter's spans (indented JSON objects) among llorchd's log lines."""
    decoder = json.JSONDecoder()
    spans, at = [], 0
    while (start := log.find("{\n", at)) != -1:
        try:
            found, at = decoder.raw_decode(log, start)
        except json.JSONDecodeError:
            at = start + 1
            continue
        if isinstance(found, dict) and "context" in found and "name" in found:
            spans.append(found)
    return spans


def test_a_traced_task_and_the_reconciles_reach_the_console_exporter(
    tmp_path: Path, llama_server_bin: Path, demo_model: Path
) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    shutil.copy(REPO / "manifests" / "model-demo.yaml", manifests / "model-demo.yaml")
    env = {
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_SERVICE_NAME": "llorchd-e2e",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    daemon = start_llorchd(tmp_path, manifests, tmp_path / "state", env=env)
    try:
        daemon.write_pool(replicas=1)
        wait_for("a ready replica", lambda: daemon.ready_replicas() == 1, timeout=90)
        resp = daemon.http.post(
            daemon.url + "/v1/tasks",
            json={"pool": "demo", "prompt": "Hello", "max_tokens": 8, "seed": 1},
            headers={"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01"},
        )
        assert resp.status_code == 202, resp.text
        task_id = resp.json()["task_id"]
        frames = daemon.stream({"pool": "demo", "prompt": "Untraced", "max_tokens": 4})
        assert frames[-1][0] == "end"
        pids = daemon.engine_pids()
    finally:
        assert stop_llorchd(daemon) == 0, daemon.logs()
    for pid in pids:
        if psutil.pid_exists(pid):
            os.killpg(pid, signal.SIGKILL)

    spans = printed_spans(daemon.logs())
    ours = {s["name"]: s for s in spans if s["context"]["trace_id"] == f"0x{TRACE_ID}"}
    assert set(ours) >= {
        "POST /v1/tasks",
        "llorch.admission",
        "llorch.queue_wait",
        "llorch.dispatch",
        "llorch.engine_request",
    }, sorted(ours)
    assert ours["POST /v1/tasks"]["parent_id"] == f"0x{CLIENT_SPAN}"
    request = ours["llorch.engine_request"]
    assert request["kind"] == "SpanKind.CLIENT"
    assert request["attributes"]["llorch.task_id"] == task_id
    assert request["attributes"]["llorch.engine"] == "llamacpp"
    assert request["attributes"]["llorch.replica"].startswith("demo-")
    assert request["resource"]["attributes"]["service.name"] == "llorchd-e2e"
    reconciles = [s for s in spans if s["name"] in ("reconcile Pool", "reconcile Model")]
    assert {s["attributes"]["llorch.controller"] for s in reconciles} == {"Pool", "Model"}
