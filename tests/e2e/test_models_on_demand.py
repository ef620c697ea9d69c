"""Models on demand against a real llorchd and real llama-server processes on the CPU: autoscaled
pools that start on their first task, share a host memory capacity that holds one replica but not
two (so they evict each other's idle replica), never evict a busy or a higher-priority one, go idle
after idleSeconds, and grow and shrink with their queue."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from llorch.runtime.vram import CPU_OVERHEAD_BYTES, estimate_llamacpp
from tests.e2e.conftest import (
    LONG_CONTEXT_ARGS,
    REPO,
    TEST_CONFIG,
    Llorchd,
    read_sse,
    start_llorchd,
    stop_llorchd,
    wait_for,
    write_atomic,
)

pytestmark = [pytest.mark.engine, pytest.mark.slow]

SLOTS = 2
CONTEXT = 4096
MIB = 1024 * 1024
Frames = list[tuple[str, dict[str, Any]]]


def replica_mib(demo_model: Path) -> int:
    """What one demo replica reserves, as llorchd estimates it."""
    estimate = estimate_llamacpp(demo_model, context_total=SLOTS * CONTEXT, overhead_bytes=CPU_OVERHEAD_BYTES)
    return math.ceil(estimate.total_bytes / MIB)


def pool_doc(name: str, *, priority: int = 0, **autoscale: Any) -> dict[str, Any]:
    return {
        "apiVersion": "llorch.dev/v1",
        "kind": "Pool",
        "metadata": {"name": name, "labels": {"app": "on-demand"}},
        "spec": {
            "model": "tiny-llama",
            "slots": SLOTS,
            "context": CONTEXT,
            "priority": priority,
            "autoscale": {"min": 0, "max": 1, "idleSeconds": 600, **autoscale},
            "engineArgs": ["--threads", "1", *LONG_CONTEXT_ARGS],
        },
    }


def policy(activation_timeout: float) -> dict[str, Any]:
    return {
        "apiVersion": "llorch.dev/v1",
        "kind": "Policy",
        "metadata": {"name": "on-demand"},
        "spec": {
            "selector": {"matchLabels": {"app": "on-demand"}},
            "admission": {"activationTimeoutSeconds": activation_timeout},
        },
    }


def start(tmp_path: Path, *, host_mib: int, pools: list[dict[str, Any]]) -> Llorchd:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "model.yaml").write_text((REPO / "manifests" / "model-demo.yaml").read_text())
    (manifests / "policy.yaml").write_text(yaml.safe_dump(policy(120)))
    for doc in pools:
        (manifests / f"pool-{doc['metadata']['name']}.yaml").write_text(yaml.safe_dump(doc))
    config = {**TEST_CONFIG, "capacity": {"hostMemoryMiB": host_mib}}
    return start_llorchd(tmp_path, manifests, tmp_path / "state", config)


@pytest.fixture
def one_fits(tmp_path: Path, llama_server_bin: Path, demo_model: Path) -> Iterator[tuple[Llorchd, int]]:
    """Host memory for one demo replica, not two."""
    need = replica_mib(demo_model)
    daemon = start(tmp_path, host_mib=need + need // 2, pools=[])
    try:
        yield daemon, need
    finally:
        stop_llorchd(daemon)


def put_pool(daemon: Llorchd, doc: dict[str, Any]) -> None:
    write_atomic(daemon.manifests / f"pool-{doc['metadata']['name']}.yaml", yaml.safe_dump(doc))
    wait_for(f"pool {doc['metadata']['name']}", lambda: daemon.pool(doc["metadata"]["name"]) is not None)


def run(daemon: Llorchd, pool: str, max_tokens: int = 8, **extra: Any) -> Frames:
    body = {"pool": pool, "prompt": "Hello", "max_tokens": max_tokens, "seed": 1, "temperature": 0, **extra}
    resp = daemon.http.post(daemon.url + "/v1/tasks", json=body)
    assert resp.status_code == 202, resp.text
    return read_sse(daemon.http, daemon.url + resp.json()["streams"]["sse"])


def reasons(daemon: Llorchd, pool: str) -> list[str]:
    return [e["reason"] for e in daemon.get(f"/v1/pools/{pool}")["events"]]


def status(daemon: Llorchd, pool: str) -> dict[str, Any]:
    found = daemon.pool(pool)
    assert found is not None
    return dict(found["status"])


def test_two_pools_sharing_memory_for_one_take_turns_and_no_task_is_refused(
    one_fits: tuple[Llorchd, int],
) -> None:
    daemon, need = one_fits
    put_pool(daemon, pool_doc("a"))
    put_pool(daemon, pool_doc("b"))
    wait_for("both idle", lambda: status(daemon, "a").get("idle") and status(daemon, "b").get("idle"))
    assert status(daemon, "a")["memoryPerReplicaMiB"] == need
    caps = {p["pool"]: p for p in daemon.get("/v1/capabilities")["pools"]}
    assert caps["a"]["idle"] is True, "an idle pool is still listed"
    assert {m["id"] for m in daemon.get("/v1/models")["data"]} >= {"a", "b"}

    for pool in ("a", "b", "a", "b"):
        frames = run(daemon, pool)
        assert frames[-1][0] == "end", frames[-1]
        assert len(daemon.engine_pids()) <= 1, "never two replicas in memory for one"
    assert "Activating" in reasons(daemon, "a") and "Activating" in reasons(daemon, "b")
    evicted = [e for e in daemon.get("/v1/pools/a")["events"] if e["reason"] == "Evicted"]
    assert evicted and "to make room for pool b" in evicted[0]["message"]
    top = daemon.ctl("top").stdout
    assert "a " in top and "b " in top and "MEMORY" in top


def test_a_replica_running_a_task_is_never_evicted_the_other_pool_waits(
    one_fits: tuple[Llorchd, int],
) -> None:
    daemon, _ = one_fits
    put_pool(daemon, pool_doc("a"))
    put_pool(daemon, pool_doc("b"))
    assert run(daemon, "a")[-1][0] == "end"
    long: Frames = []
    body = {"pool": "a", "prompt": "Count", "max_tokens": 3500, "seed": 3, "temperature": 0}
    resp = daemon.http.post(daemon.url + "/v1/tasks", json=body)
    assert resp.status_code == 202
    reader = threading.Thread(
        target=read_sse, args=(daemon.http, daemon.url + resp.json()["streams"]["sse"], long)
    )
    reader.start()
    wait_for("a's long task to run", lambda: any(e == "token" for e, _ in long))
    waited = run(daemon, "b", max_tokens=4)
    reader.join(timeout=120)
    assert long[-1][0] == "end" and long[-1][1]["finish_reason"] == "length", "the busy replica kept its task"
    assert waited[-1][0] == "end", "b's task waited for the room, then ran"
    b_started = next(d for e, d in waited if e == "started")
    assert b_started["queued_ms"] > 100, "it waited for a's task to finish"


def test_an_idle_replica_of_a_higher_priority_pool_is_not_evicted_for_a_lower_one(
    one_fits: tuple[Llorchd, int],
) -> None:
    daemon, _ = one_fits
    put_pool(daemon, pool_doc("a", priority=10))
    put_pool(daemon, pool_doc("b", priority=0))
    assert run(daemon, "a")[-1][0] == "end"
    # Short only now: a's own cold start on a busy machine must not run into it.
    write_atomic(daemon.manifests / "policy.yaml", yaml.safe_dump(policy(4)))
    wait_for(
        "the short activation timeout",
        lambda: daemon.get("/v1/policies/on-demand")["spec"]["admission"]["activationTimeoutSeconds"] == 4,
    )
    frames = run(daemon, "b")
    event, data = frames[-1]
    assert event == "error" and data["code"] == "POOL_UNAVAILABLE", frames
    assert "activationTimeoutSeconds" in data["message"] and "priority 10 > 0" in data["message"]
    assert "pool a replica a-0-" in data["message"], "it names what holds the memory"
    assert status(daemon, "a")["readyReplicas"] == 1


def test_a_pool_goes_idle_after_idle_seconds(one_fits: tuple[Llorchd, int]) -> None:
    daemon, _ = one_fits
    put_pool(daemon, pool_doc("a", idleSeconds=2))
    assert run(daemon, "a")[-1][0] == "end"
    assert len(daemon.engine_pids()) == 1
    wait_for("a to go idle", lambda: status(daemon, "a").get("idle"), timeout=30)
    wait_for("its engine to stop", lambda: not daemon.engine_pids(), timeout=30)
    assert "ScaledToZero" in reasons(daemon, "a")
    assert "Idle" in daemon.ctl("get", "pools").stdout


def test_a_deep_queue_grows_the_pool_and_a_quiet_one_shrinks_it(
    tmp_path: Path, llama_server_bin: Path, demo_model: Path
) -> None:
    need = replica_mib(demo_model)
    doc = pool_doc("grow", min=1, max=2, queuePerReplica=1, stabilizationSeconds=1)
    daemon = start(tmp_path, host_mib=3 * need, pools=[doc])
    try:
        wait_for("one replica", lambda: status(daemon, "grow").get("readyReplicas") == 1, timeout=60)
        results: list[Frames] = [[] for _ in range(6)]
        threads = [
            threading.Thread(target=lambda out=out: out.extend(run(daemon, "grow", max_tokens=3000)))
            for out in results
        ]
        for thread in threads:
            thread.start()
        wait_for("a second replica", lambda: status(daemon, "grow").get("readyReplicas") == 2, timeout=60)
        assert "ScaledUp" in reasons(daemon, "grow")
        for thread in threads:
            thread.join(timeout=180)
        assert all(frames and frames[-1][0] == "end" for frames in results)
        wait_for("back to one", lambda: status(daemon, "grow").get("readyReplicas") == 1, timeout=60)
        assert "ScaledDown" in reasons(daemon, "grow")
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            assert status(daemon, "grow")["readyReplicas"] >= 1, "never below min"
            time.sleep(0.2)
    finally:
        stop_llorchd(daemon)
