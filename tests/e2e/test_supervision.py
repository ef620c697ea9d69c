"""Supervision as a person living with it sees it: crash loops, adoption, drain, rolling reload."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from llorch.daemon.wiring import DETACHED_EXIT_STATUS
from tests.e2e.conftest import (
    BIN,
    LONG_CONTEXT,
    LONG_CONTEXT_ARGS,
    REPO,
    Llorchd,
    read_sse,
    start_llorchd,
    stop_llorchd,
    wait_for,
)

pytestmark = [pytest.mark.engine, pytest.mark.slow]


def apply_demo(llorchd: Llorchd, replicas: int = 1, **spec: Any) -> None:
    llorchd.ctl("apply", "-f", str(REPO / "manifests" / "model-demo.yaml"))
    llorchd.write_pool(replicas=replicas, **spec)
    wait_for(f"{replicas} ready replica(s)", lambda: llorchd.ready_replicas() == replicas, timeout=60)


def replica_statuses(llorchd: Llorchd) -> list[dict[str, Any]]:
    pool = llorchd.pool()
    assert pool is not None
    return list(pool["status"]["replicaStatuses"])


def test_crash_loop_backs_off_and_reports_it(llorchd: Llorchd) -> None:
    """SIGKILL the replica again and again: restarts come 0 s, then 1 s, 2 s, 4 s apart (test config)."""
    apply_demo(llorchd)
    restarted_at: list[float] = []
    for n in range(1, 4):
        (victim,) = llorchd.engine_pids()
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        wait_for(f"restart {n}", lambda v=victim: llorchd.engine_pids() - {v}, timeout=30, every=0.05)
        restarted_at.append(time.monotonic() - killed)
        wait_for("ready again", lambda: llorchd.ready_replicas() == 1, timeout=30)
    assert restarted_at[0] < 1.0, "the first restart is immediate"
    assert restarted_at[1] >= 0.9 and restarted_at[2] >= 1.9, restarted_at
    (replica,) = replica_statuses(llorchd)
    assert replica["restarts"] == 3 and replica["lastExit"] == "killed by SIGKILL"
    assert replica["logTail"], "the last lines of the engine's log are kept"
    described = llorchd.ctl("describe", "pool/demo").stdout
    assert "BackOff" in described


def test_a_restarted_llorchd_adopts_live_replicas(
    tmp_path: Path, llama_server_bin: Path, demo_model: Path
) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    first = start_llorchd(tmp_path, manifests, tmp_path / "state")
    apply_demo(first, replicas=2)
    pids = first.engine_pids()
    first.proc.send_signal(signal.SIGQUIT)
    assert first.proc.wait(30) == DETACHED_EXIT_STATUS, "the status that tells systemd to start the next one"
    first.http.close()
    assert all(Path(f"/proc/{pid}").exists() for pid in pids), "SIGQUIT leaves replicas running"

    second = start_llorchd(tmp_path, manifests, tmp_path / "state")
    try:
        wait_for("both adopted replicas ready", lambda: second.ready_replicas() == 2, timeout=30)
        statuses = replica_statuses(second)
        assert {r["pid"] for r in statuses} == pids
        assert all(r["adopted"] for r in statuses)
        frames = second.stream({"pool": "demo", "prompt": "Hello", "max_tokens": 8, "seed": 1})
        assert frames[-1][0] == "end" and frames[-1][1]["tokens_out"] == 8
        assert "Adopted" in [e["reason"] for e in (second.pool() or {})["events"]]
    finally:
        stop_llorchd(second)
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()], (
        "a plain stop stops adopted replicas too"
    )


def test_drain_finishes_in_flight_work_then_stops(llorchd: Llorchd) -> None:
    apply_demo(llorchd, context=2048)
    resp = llorchd.http.post(
        llorchd.url + "/v1/tasks",
        json={"pool": "demo", "prompt": "Long story", "max_tokens": 2000, "seed": 3},
    )
    sse_url = llorchd.url + resp.json()["streams"]["sse"]
    frames: list[tuple[str, dict[str, Any]]] = []
    reader = threading.Thread(target=read_sse, args=(llorchd.http, sse_url, frames))
    reader.start()
    wait_for("tokens to flow", lambda: any(e == "token" for e, _ in frames), every=0.01)
    out = llorchd.ctl("drain", "pool/demo", "--deadline", "30s").stdout
    assert "pool/demo draining" in out
    refused = llorchd.http.post(llorchd.url + "/v1/tasks", json={"pool": "demo", "prompt": "x"})
    assert refused.status_code == 503 and refused.json()["code"] == "POOL_DRAINING"
    reader.join(60)
    assert frames[-1][0] == "end", "the in-flight task finished before the replica stopped"
    wait_for("the replicas to stop", lambda: not llorchd.engine_pids(), timeout=30)
    assert "Drained" in llorchd.ctl("get", "pools").stdout

    llorchd.ctl("resume", "pool/demo")
    wait_for("the pool back", lambda: llorchd.ready_replicas() == 1, timeout=60)


def test_drain_past_its_deadline_ends_tasks_with_pool_drained(llorchd: Llorchd) -> None:
    apply_demo(llorchd, context=LONG_CONTEXT, engineArgs=LONG_CONTEXT_ARGS)
    resp = llorchd.http.post(
        llorchd.url + "/v1/tasks",
        json={"pool": "demo", "prompt": "Long story", "max_tokens": 8000, "seed": 3},
    )
    frames: list[tuple[str, dict[str, Any]]] = []
    reader = threading.Thread(
        target=read_sse, args=(llorchd.http, llorchd.url + resp.json()["streams"]["sse"], frames)
    )
    reader.start()
    wait_for("tokens to flow", lambda: any(e == "token" for e, _ in frames), every=0.01)
    llorchd.http.post(llorchd.url + "/v1/pools/demo/drain", json={"deadline_ms": 100})
    reader.join(60)
    assert frames[-1][0] == "error" and frames[-1][1]["code"] == "POOL_DRAINED"
    wait_for("the replicas to stop", lambda: not llorchd.engine_pids(), timeout=30)


def test_drain_survives_a_restart(tmp_path: Path, llama_server_bin: Path, demo_model: Path) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    first = start_llorchd(tmp_path, manifests, tmp_path / "state")
    try:
        apply_demo(first)
        first.ctl("drain", "pool/demo", "--deadline", "1s")
        wait_for("drained", lambda: not first.engine_pids(), timeout=30)
    finally:
        stop_llorchd(first)
    second = start_llorchd(tmp_path, manifests, tmp_path / "state")
    try:
        time.sleep(1.5)
        assert not second.engine_pids() and (second.pool() or {})["status"]["draining"] is True
    finally:
        stop_llorchd(second)


def test_reload_rolls_without_losing_service_and_a_bad_reload_rolls_back(llorchd: Llorchd) -> None:
    apply_demo(llorchd)
    (before,) = replica_statuses(llorchd)
    assert "reload started" in llorchd.ctl("reload", "pool/demo").stdout

    def rolled() -> bool:
        statuses = replica_statuses(llorchd)
        return len(statuses) == 1 and statuses[0]["id"] != before["id"] and statuses[0]["phase"] == "Ready"

    wait_for("the rolling restart", rolled, timeout=60)
    (after,) = replica_statuses(llorchd)
    assert after["pid"] != before["pid"]

    llorchd.write_pool(replicas=1, engineArgs=["--definitely-not-a-flag"])

    def rolled_back() -> bool:
        pool = llorchd.pool() or {}
        degraded = [c for c in pool.get("status", {}).get("conditions", []) if c["type"] == "Degraded"]
        return bool(degraded) and degraded[0]["reason"] == "RolloutFailed"

    wait_for("the rollout to fail", rolled_back, timeout=60)
    (serving,) = replica_statuses(llorchd)
    assert serving["id"] == after["id"] and serving["phase"] == "Ready", "the old replica keeps serving"
    frames = llorchd.stream({"pool": "demo", "prompt": "Hi", "max_tokens": 4})
    assert frames[-1][0] == "end"
    events = [e["reason"] for e in (llorchd.pool() or {})["events"]]
    assert "RolloutFailed" in events


def test_health_shows_replicas(llorchd: Llorchd) -> None:
    apply_demo(llorchd, replicas=2)
    health = llorchd.get("/v1/pools/demo/health")
    assert health["live"] and health["ready"] and not health["draining"]
    assert len(health["replicas"]) == 2 and all(r["pid"] and r["port"] for r in health["replicas"])
    assert health["metrics"]["slots_total"] == 4


def test_sigterm_with_streams_open_ends_them_and_exits(
    tmp_path: Path, llama_server_bin: Path, demo_model: Path
) -> None:
    """A stop signal must not get lost inside the HTTP loop while it is busy writing streams."""
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    daemon = start_llorchd(tmp_path, manifests, tmp_path / "state")
    apply_demo(daemon, slots=2, context=LONG_CONTEXT, engineArgs=LONG_CONTEXT_ARGS)
    long = {"pool": "demo", "prompt": "On and on", "max_tokens": 8000, "seed": 6}
    urls = [daemon.url + daemon.http.post(daemon.url + "/v1/tasks", json=long).json()["streams"]["sse"]
            for _ in range(3)]  # fmt: skip
    streams: list[list[tuple[str, dict[str, Any]]]] = [[] for _ in urls]
    opened = [threading.Event() for _ in urls]
    readers = [
        threading.Thread(target=read_sse, args=(daemon.http, u, f, o))
        for u, f, o in zip(urls, streams, opened, strict=True)
    ]
    for reader in readers:
        reader.start()
    # The queued task's stream too: a request still waiting for a server thread is not a stream.
    wait_for("every stream open", lambda: all(o.is_set() for o in opened))
    wait_for(
        "tokens on two streams",
        lambda: sum(any(e == "token" for e, _ in f) for f in streams) == 2,
        every=0.01,
    )
    pids = daemon.engine_pids()
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.proc.wait(20) == 0, daemon.logs()
    for reader in readers:
        reader.join(10)
    assert [f[-1][0] for f in streams] == ["error"] * 3
    assert {f[-1][1]["code"] for f in streams} == {"WORKER_RESET"}
    assert pids and not [pid for pid in pids if Path(f"/proc/{pid}").exists()]
    daemon.http.close()


def test_a_port_in_use_fails_the_start_before_any_replica(tmp_path: Path, llama_server_bin: Path) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    for name in ("model-demo.yaml", "pool-demo.yaml"):
        (manifests / name).write_text((REPO / "manifests" / name).read_text())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [str(BIN / "llorchd"), "--bind", f"127.0.0.1:{port}", "--manifests", str(manifests),
             "--state", str(tmp_path / "state"), "--log-format", "text"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}: something else does" in done.stderr
    assert not (tmp_path / "state" / "logs").exists(), "no replica was started"
