"""GET /metrics of llorchd's own wiring (llorch.daemon.wiring.Daemon, the NVML double for GPUs)
over loopback HTTP, checked against contracts/metrics.yaml both ways.

tests/e2e/test_metrics_contract.py does the same against a llorchd process running real
llama-server replicas, where the replica and engine families carry samples too.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llorch.daemon.wiring import Daemon
from llorch.resources import ServerConfig
from llorch.runtime.gpus import GIB, Gpu, SimulatedInventory
from tests.api.test_app import POOL
from tests.api.test_metrics_endpoint import MODEL
from tests.metrics_contract import contract, parse, problems

# No replica: the daemon's controllers run, but spawn nothing (and need no engine binary).
MANIFESTS = POOL.replace("replicas: 1", "replicas: 0") + "---\n" + MODEL


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[httpx.Client, str]]:
    """The daemon's objects and HTTP server, without provisioning an engine (nothing is spawned:
    the one pool has no replicas) and without the signal-driven serving loop."""
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "demo.yaml").write_text(MANIFESTS)
    config = ServerConfig.model_validate(
        {"bind": "127.0.0.1:0", "stateDir": str(tmp_path / "state"), "manifestsDir": str(manifests)}
    )
    gpu = Gpu(0, "GPU-double-0", "RTX 3090 (double)", 24 * GIB, 20 * GIB, 4 * GIB, 37, 50)
    d = Daemon(config, base_dir=tmp_path, inventory=SimulatedInventory([gpu]))
    d.store.load()
    d._listen()
    assert d.server is not None
    thread = threading.Thread(target=d.server.run, daemon=True)
    thread.start()
    d.manager.set_desired_keys(d.store.keys())
    d.manager.start()
    port = d.server.effective_port  # type: ignore[union-attr]
    with httpx.Client(timeout=10) as http:
        yield http, f"http://127.0.0.1:{port}"
    d.manager.stop()
    d.server.trigger.pull_trigger(d.server.close)  # type: ignore[union-attr]
    thread.join(5)
    d.db.close()
    d.audit.close()


def test_the_scrape_and_contracts_metrics_yaml_agree_both_ways(served: tuple[httpx.Client, str]) -> None:
    http, url = served
    refused = http.post(url + "/v1/tasks", json={"pool": "demo", "prompt": "hi", "max_tokens": 4})
    assert refused.status_code in (429, 503), refused.text
    assert http.get(url + "/v1/tasks/not-a-task").status_code == 404
    assert http.get(url + "/no/such/path").status_code == 404
    text = http.get(url + "/metrics").text
    assert problems(text) == []
    exposed = parse(text)
    routes = {labels["route"] for _, labels in exposed["llorch_http_requests_total"].samples}
    assert {"/v1/tasks", "/v1/tasks/{task_id}", "unmatched"} <= routes, "templates, never raw paths"
    assert "not-a-task" not in text
    gpu = {labels["device"] for _, labels in exposed["llorch_vram_total_bytes"].samples}
    assert gpu == {"0"}, "from the inventory (the NVML double here)"
    names = {labels["name"] for _, labels in exposed["llorch_workqueue_adds_total"].samples}
    assert names == {"reconcile"}


def test_promtool_check_metrics_finds_nothing_to_lint(served: tuple[httpx.Client, str]) -> None:
    """Prometheus' own linter (naming, units, _total, help) on a live scrape."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip(
            "PROMTOOL MISSING: promtool (Debian package `prometheus`) is not installed, so the scrape "
            "was not linted; `just system-deps` installs it when run as root with apt-get"
        )
    http, url = served
    http.post(url + "/v1/tasks", json={"pool": "demo", "prompt": "hi", "max_tokens": 4})
    text = http.get(url + "/metrics").text
    linted = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert linted.returncode == 0 and not linted.stdout.strip(), linted.stdout + linted.stderr


def test_the_checker_reports_what_the_file_lacks_and_what_it_lists_in_vain() -> None:
    listed = contract()["families"][0]
    text = (
        "# HELP llorch_mystery_total Something new.\n# TYPE llorch_mystery_total counter\n"
        "llorch_mystery_total 1\n"
    )
    text += (
        "# HELP llorch_queue_depth Tasks waiting for a slot, per pool and priority.\n"
        "# TYPE llorch_queue_depth gauge\n"
        'llorch_queue_depth{pool_id="demo",priority="urgent"} 1\n'
        'llorch_queue_depth{pool_id="demo",task_id="t-1"} 1\n'
    )
    found = problems(text)
    assert "exposed but not in metrics.yaml: llorch_mystery_total" in found
    assert any("priority='urgent'" in problem for problem in found), found
    assert any("labels ['pool_id', 'task_id']" in problem for problem in found), found
    assert f"in metrics.yaml but not exposed: {listed['name']}" in found


def test_every_name_in_the_contract_follows_prometheus_naming() -> None:
    for family in contract()["families"]:
        name = family["name"]
        assert name.startswith(("llorch_", "process_", "python_")), name
        assert (family["type"] == "counter") == name.endswith("_total"), name
        assert not any(bad in name for bad in ("_ms", "_milliseconds", "_percent")), name
