"""The vertical slice as a user drives it: manifests in, llama-server processes out, tokens streamed."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from tests.e2e.conftest import REPO, Llorchd, start_llorchd, stop_llorchd, wait_for, write_atomic

pytestmark = [pytest.mark.engine, pytest.mark.slow]


def apply_demo(llorchd: Llorchd) -> None:
    """The embedded default as a user applies it: the whole folder (demo and demo-embed)."""
    result = llorchd.ctl("apply", "-f", str(REPO / "manifests"))
    assert "pool/demo created" in result.stdout
    assert "model/tiny-llama created" in result.stdout
    assert "pool/demo-embed created" in result.stdout
    wait_for("the demo pool to be Ready", lambda: llorchd.ready_replicas() == 1, timeout=60)


def apply_demo_pool(llorchd: Llorchd) -> None:
    """The demo pool alone, for tests that count its engine processes."""
    for name in ("model-demo.yaml", "pool-demo.yaml"):
        llorchd.ctl("apply", "-f", str(REPO / "manifests" / name))
    wait_for("the demo pool to be Ready", lambda: llorchd.ready_replicas() == 1, timeout=60)


def test_apply_demo_and_stream_a_completion(llorchd: Llorchd) -> None:
    apply_demo(llorchd)
    table = llorchd.ctl("get", "pools").stdout
    assert table.splitlines()[0].split()[:4] == ["NAME", "MODEL", "ENGINE", "READY"]
    assert "demo" in table and "1/1" in table and "Ready" in table

    frames = llorchd.stream({"pool": "demo", "prompt": "Hello", "max_tokens": 48, "seed": 7})
    events = [event for event, _ in frames]
    assert events[0] == "started" and events[-1] == "end"
    assert set(events[1:-1]) <= {"token", "metrics"}
    tokens = [data for event, data in frames if event == "token"]
    assert [t["i"] for t in tokens] == list(range(len(tokens)))
    end = frames[-1][1]
    assert end["tokens_out"] == len(tokens) == 48
    assert end["finish_reason"] == "length"
    assert end["ttft_ms"] >= 0 and end["decode_ms"] >= 0
    assert frames[0][1]["replica"].startswith("demo-0-")

    run = llorchd.ctl("run", "demo", "Hello", "--max-tokens", "16", "--seed", "7")
    assert run.stdout == "".join(t["t"] for t in tokens[:16])
    assert "16 tokens" in run.stderr


def test_same_seed_gives_the_same_tokens(llorchd: Llorchd) -> None:
    apply_demo(llorchd)
    body = {"pool": "demo", "prompt": "Once upon a time", "max_tokens": 40, "seed": 1234, "temperature": 0.9}
    first = [d["t"] for e, d in llorchd.stream(body) if e == "token"]
    second = [d["t"] for e, d in llorchd.stream(body) if e == "token"]
    other = [d["t"] for e, d in llorchd.stream({**body, "seed": 99}) if e == "token"]
    assert len(first) == 40
    assert first == second
    assert first != other, "a different seed should sample differently at temperature 0.9"


def test_scale_by_editing_the_file(llorchd: Llorchd) -> None:
    llorchd.ctl("apply", "-f", str(REPO / "manifests" / "model-demo.yaml"))
    llorchd.write_pool(replicas=1)
    wait_for("1 ready replica", lambda: llorchd.ready_replicas() == 1, timeout=60)
    assert len(llorchd.engine_pids()) == 1

    llorchd.write_pool(replicas=2)
    wait_for("2 ready replicas", lambda: llorchd.ready_replicas() == 2, timeout=60)
    assert len(llorchd.engine_pids()) == 2
    assert "2/2" in llorchd.ctl("get", "pools").stdout

    llorchd.write_pool(replicas=0)
    wait_for("no llama-server left", lambda: not llorchd.engine_pids(), timeout=30)

    llorchd.write_pool(replicas=1)
    wait_for("1 ready replica again", lambda: llorchd.ready_replicas() == 1, timeout=60)
    (llorchd.manifests / "pool-demo.yaml").unlink()
    wait_for("the pool to be gone", lambda: llorchd.pool() is None and not llorchd.engine_pids(), timeout=30)
    assert "demo" not in llorchd.ctl("get", "pools").stdout


def test_a_killed_replica_comes_back(llorchd: Llorchd) -> None:
    apply_demo_pool(llorchd)
    (victim,) = llorchd.engine_pids()
    os.kill(victim, signal.SIGKILL)
    wait_for("a new llama-server", lambda: llorchd.engine_pids() - {victim}, timeout=30)
    wait_for("the pool Ready again", lambda: llorchd.ready_replicas() == 1, timeout=60)
    pool = llorchd.pool()
    assert pool is not None
    replica = pool["status"]["replicaStatuses"][0]
    assert replica["restarts"] == 1 and replica["lastExit"] == "killed by SIGKILL"
    reasons = [e["reason"] for e in pool["events"]]
    assert "BackOff" in reasons and reasons.count("Started") == 2
    assert "BackOff" in llorchd.ctl("describe", "pool/demo").stdout


def test_a_broken_file_keeps_the_replicas_running(llorchd: Llorchd) -> None:
    apply_demo_pool(llorchd)
    pids = llorchd.engine_pids()
    pool_file = llorchd.manifests / "pool-demo.yaml"
    good = pool_file.read_text()
    write_atomic(pool_file, good.replace("replicas: 1", "replicas: [1"))

    def reported() -> bool:
        pool = llorchd.pool()
        return bool(pool and pool["errors"])

    wait_for("the manifest error to show", reported, timeout=15)
    pool = llorchd.pool()
    assert pool is not None
    error = pool["errors"][0]
    assert error["file"] == "pool-demo.yaml" and error["line"] is not None
    time.sleep(1.0)
    assert llorchd.engine_pids() == pids and llorchd.ready_replicas() == 1
    described = llorchd.ctl("describe", "pool/demo").stdout
    assert "pool-demo.yaml:" in described
    assert "ManifestError" in llorchd.ctl("get", "pools").stdout

    write_atomic(pool_file, good.replace("replicas: 1", "replicas: lots"))
    wait_for("the validation error", lambda: "spec.replicas" in json.dumps((llorchd.pool() or {})["errors"]))
    assert llorchd.engine_pids() == pids

    write_atomic(pool_file, good)
    wait_for("the error to clear", lambda: not (llorchd.pool() or {"errors": [1]})["errors"])
    assert llorchd.engine_pids() == pids


def test_apply_dry_run_diff_and_delete(llorchd: Llorchd, tmp_path: Path) -> None:
    apply_demo_pool(llorchd)
    changed = tmp_path / "bigger.yaml"
    changed.write_text(
        (REPO / "manifests" / "pool-demo.yaml").read_text().replace("replicas: 1", "replicas: 2")
    )
    before = (llorchd.manifests / "pool-demo.yaml").read_text()

    dry = llorchd.ctl("apply", "-f", str(changed), "--dry-run")
    assert "pool/demo configured (dry run)" in dry.stdout
    diff = llorchd.ctl("diff", "-f", str(changed), check=False)
    assert diff.returncode == 1 and "-  replicas: 1" in diff.stdout and "+  replicas: 2" in diff.stdout
    assert (llorchd.manifests / "pool-demo.yaml").read_text() == before

    assert "pool/demo configured" in llorchd.ctl("apply", "-f", str(changed)).stdout
    wait_for("2 ready replicas", lambda: llorchd.ready_replicas() == 2, timeout=60)
    assert llorchd.ctl("diff", "-f", str(changed)).returncode == 0
    assert "pool/demo unchanged" in llorchd.ctl("apply", "-f", str(changed)).stdout

    assert "pool/demo deleted" in llorchd.ctl("delete", "pool/demo").stdout
    wait_for("the replicas to stop", lambda: not llorchd.engine_pids(), timeout=30)
    assert not (llorchd.manifests / "pool-demo.yaml").exists()


def test_stopping_llorchd_leaves_no_engine_running(
    tmp_path: Path, llama_server_bin: Path, demo_model: Path
) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    daemon = start_llorchd(tmp_path, manifests, tmp_path / "state")
    try:
        daemon.ctl("apply", "-f", str(REPO / "manifests"))
        daemon.write_pool(replicas=2)
        wait_for("2 ready replicas", lambda: daemon.ready_replicas() == 2, timeout=60)
        wait_for("demo-embed Ready", lambda: daemon.ready_replicas("demo-embed") == 1, timeout=60)
        pids = daemon.engine_pids()
        assert len(pids) == 3, "demo's two replicas and demo-embed's"
    finally:
        code = stop_llorchd(daemon)
    assert code == 0, daemon.logs()
    assert not [pid for pid in pids if psutil.pid_exists(pid)]


def test_tokens_and_errors_use_the_envelope(llorchd: Llorchd) -> None:
    resp = llorchd.http.post(llorchd.url + "/v1/tasks", json={"pool": "nope", "prompt": "x"})
    assert resp.status_code == 404
    body = resp.json()
    assert body["code"] == "NOT_FOUND" and body["correlation_id"] == resp.headers["X-Correlation-Id"]
    resp = llorchd.http.get(llorchd.url + "/v1/tasks/missing/events", headers={"X-Correlation-Id": "abc-123"})
    assert resp.status_code == 404 and resp.headers["X-Correlation-Id"] == "abc-123"
    assert resp.json()["correlation_id"] == "abc-123"
    resp = llorchd.http.post(
        llorchd.url + "/v1/tasks", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 400 and resp.json()["code"] == "INVALID_PARAMS"
    resp = llorchd.http.post(llorchd.url + "/v1/tasks", json={"pool": "demo", "prompt": "x", "bogus": 1})
    assert resp.status_code == 400 and "bogus" in resp.json()["message"]
