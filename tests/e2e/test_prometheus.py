"""The real Prometheus server (Debian's `prometheus`) scrapes a live llorchd with the bearer token,
as examples/prometheus/prometheus.yml says, while a few tasks run; then every query of every
panel of examples/grafana/llorch.json goes through Prometheus' HTTP API and must parse and
return series."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.conftest import REPO, free_port, wait_for
from tests.e2e.observed import Observed, observed_llorchd, run_workload

pytestmark = [pytest.mark.engine, pytest.mark.slow]

DASHBOARD = REPO / "examples" / "grafana" / "llorch.json"
SCRAPE_CONFIG = REPO / "examples" / "prometheus" / "prometheus.yml"
# What Grafana puts in for its variables: a rate window that spans the whole test run, and the
# pool variable's "All".
GRAFANA_VARIABLES = {"$__rate_interval": "2m", "$pool": ".*"}


@dataclass
class Prometheus:
    url: str
    http: httpx.Client

    def query(self, expr: str) -> dict[str, Any]:
        resp = self.http.get(self.url + "/api/v1/query", params={"query": expr})
        body: dict[str, Any] = resp.json()
        return body


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title and ref id, expression) of every target of every panel."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(f"{p['title']} [{t['refId']}]", t["expr"]) for p in panels for t in p["targets"]]


def with_grafana_variables(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


@pytest.fixture
def observed(tmp_path: Path, llama_server_bin: Path, demo_model: Path) -> Iterator[Observed]:
    yield from observed_llorchd(tmp_path)


@pytest.fixture
def prometheus(tmp_path: Path, observed: Observed) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip(
            "PROMETHEUS MISSING: the Prometheus server (Debian package `prometheus`) is not installed, "
            "so the dashboard's queries were not checked; `just system-deps` installs it as root"
        )
    config = yaml.safe_load(SCRAPE_CONFIG.read_text())
    config["global"]["scrape_interval"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    (job,) = config["scrape_configs"]
    job["authorization"]["credentials_file"] = str(observed.token_file)
    job["static_configs"][0]["targets"] = [observed.daemon.url.removeprefix("http://")]
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    promtool = shutil.which("promtool")
    if promtool is not None:
        checked = subprocess.run(
            [promtool, "check", "config", str(config_file)], capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
    port = free_port()
    log = tmp_path / "prometheus.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
                # The web UI and API on loopback only.
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Prometheus(f"http://127.0.0.1:{port}", httpx.Client(timeout=10))

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"prometheus exited with {proc.returncode}:\n{log.read_text()}")
        try:
            return server.http.get(server.url + "/-/ready").status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for("Prometheus to be ready", ready, timeout=60)
        yield server
    finally:
        proc.terminate()
        proc.wait(30)
        server.http.close()


def test_every_dashboard_query_returns_series_from_a_real_prometheus(
    observed: Observed, prometheus: Prometheus
) -> None:
    def scraped() -> bool:
        result = prometheus.query('up{job="llorch"}')["data"]["result"]
        return bool(result) and result[0]["value"][1] == "1"

    wait_for("Prometheus to scrape llorchd with the token", scraped, timeout=30)
    run_workload(observed.daemon)
    # Enough scrapes after the last task for every rate window to hold two samples of it.
    last = prometheus.query("llorch_tokens_out_total")["data"]["result"]
    assert last, "llorch's metrics are in Prometheus"
    wait_for(
        "a few more scrapes",
        lambda: len(prometheus.query("llorch_tokens_out_total[5s]")["data"]["result"][0]["values"]) >= 3,
        timeout=30,
    )
    queries = dashboard_queries()
    assert len(queries) >= 14
    empty, broken = [], []
    for where, expr in queries:
        answer = prometheus.query(with_grafana_variables(expr))
        if answer.get("status") != "success":
            broken.append(f"{where}: {expr}: {answer.get('error')}")
        elif not answer["data"]["result"]:
            empty.append(f"{where}: {expr}")
    assert not broken, "queries Prometheus refused:\n" + "\n".join(broken)
    assert not empty, "queries without series:\n" + "\n".join(empty)
    pools = prometheus.query("count by (pool_id) (llorch_queue_depth)")["data"]["result"]
    assert {p["metric"]["pool_id"] for p in pools} == {"demo"}, "the dashboard's pool variable has values"
