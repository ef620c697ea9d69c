"""The data plane as clients use it, against a real llorchd and real llama-server replicas."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import (
    LONG_CONTEXT,
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

BUDGET_POLICY = """\
apiVersion: llorch.dev/v1
kind: Policy
metadata:
  name: budgeted
spec:
  budgets:
    tokens: 60
  sessions:
    ttlSeconds: 600
    maxTurns: 8
"""


def apply_demo(llorchd: Llorchd, replicas: int = 1, **spec: Any) -> None:
    llorchd.ctl("apply", "-f", str(REPO / "manifests" / "model-demo.yaml"))
    llorchd.write_pool(replicas=replicas, **spec)
    wait_for("ready replicas", lambda: llorchd.ready_replicas() == replicas, timeout=60)


def tokens(frames: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [d["t"] for e, d in frames if e == "token"]


def test_stream_true_answers_with_the_sse_stream_in_one_round_trip(llorchd: Llorchd) -> None:
    apply_demo(llorchd)
    body = {"pool": "demo", "prompt": "Hi", "max_tokens": 6, "seed": 2, "stream": True}
    with llorchd.http.stream("POST", llorchd.url + "/v1/tasks", json=body) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        assert resp.headers["X-Task-Id"]
        text = "".join(resp.iter_text())
    assert text.startswith(": stream open") and "event: end" in text and text.count("event: token") == 6


def test_late_subscribers_replay_and_last_event_id_resumes(llorchd: Llorchd) -> None:
    apply_demo(llorchd)
    resp = llorchd.http.post(
        llorchd.url + "/v1/tasks", json={"pool": "demo", "prompt": "Hi", "max_tokens": 10}
    )
    url = llorchd.url + resp.json()["streams"]["sse"]
    full = read_sse(llorchd.http, url)
    again = read_sse(llorchd.http, url)
    assert again == full, "a client that connects late gets every frame from the start"
    resumed = []
    with llorchd.http.stream("GET", url, headers={"Last-Event-ID": "5"}) as stream:
        resumed = [line for line in stream.iter_lines() if line.startswith("id: ")]
    assert resumed[0] == "id: 6" and len(resumed) == len(full) - 6


def test_strict_determinism_gives_the_same_tokens_under_concurrent_load(llorchd: Llorchd) -> None:
    apply_demo(llorchd, slots=4, context=512)
    strict = {"pool": "demo", "prompt": "The weather", "max_tokens": 64, "seed": 77, "temperature": 0.9,
              "determinism": "strict"}  # fmt: skip
    alone = tokens(llorchd.stream(strict))
    results: list[list[str]] = []
    noise = {"pool": "demo", "prompt": "Other text entirely", "max_tokens": 200, "seed": 1}

    def run(body: dict[str, Any]) -> None:
        results.append(tokens(llorchd.stream(body))) if body is strict else llorchd.stream(body)

    threads = [threading.Thread(target=run, args=(b,)) for b in (noise, strict, noise, strict, noise)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [alone, alone]
    refused = llorchd.http.post(llorchd.url + "/v1/tasks", json={**strict, "seed": None})
    assert refused.status_code == 400 and "seed" in refused.json()["message"]


def test_cancel_stops_the_engine_and_ends_the_stream(llorchd: Llorchd) -> None:
    apply_demo(llorchd, slots=1, context=LONG_CONTEXT, engineArgs=LONG_CONTEXT_ARGS)
    resp = llorchd.http.post(
        llorchd.url + "/v1/tasks", json={"pool": "demo", "prompt": "Go on", "max_tokens": 8000, "seed": 4}
    )
    task_id = resp.json()["task_id"]
    frames: list[tuple[str, dict[str, Any]]] = []
    reader = threading.Thread(
        target=read_sse, args=(llorchd.http, llorchd.url + f"/v1/tasks/{task_id}/events", frames)
    )
    reader.start()
    wait_for("tokens", lambda: len(tokens(frames)) > 5, every=0.01)
    assert llorchd.http.post(llorchd.url + f"/v1/tasks/{task_id}/cancel").status_code == 204
    # The server's frame list is the truth: frames still in flight on the socket arrive later.
    at_cancel = llorchd.get(f"/v1/tasks/{task_id}")
    reader.join(30)
    assert at_cancel["state"] == "canceled"
    assert len(frames) == at_cancel["frames"], "no frame was added after the cancel returned"
    assert frames[-1][0] == "error" and frames[-1][1]["code"] == "CANCELED"
    assert llorchd.http.post(llorchd.url + f"/v1/tasks/{task_id}/cancel").status_code == 204, "idempotent"

    (replica,) = llorchd.pool()["status"]["replicaStatuses"]  # type: ignore[index]
    slots_url = replica["url"] + "/slots"
    idle = lambda: not httpx.get(slots_url).json()[0]["is_processing"]  # noqa: E731
    wait_for("the engine's slot idle", idle, timeout=1.0, every=0.05)


def test_a_client_leaving_a_queued_stream_takes_its_task_out_of_the_queue(llorchd: Llorchd) -> None:
    apply_demo(llorchd, slots=1, context=LONG_CONTEXT, engineArgs=LONG_CONTEXT_ARGS)
    hold = {"pool": "demo", "prompt": "Go on", "max_tokens": LONG_CONTEXT - 100, "seed": 4}
    holder = llorchd.http.post(llorchd.url + "/v1/tasks", json=hold).json()["task_id"]
    wait_for("the slot taken", lambda: llorchd.get(f"/v1/tasks/{holder}")["state"] == "running")
    try:
        with llorchd.http.stream("POST", llorchd.url + "/v1/tasks", json={**hold, "stream": True}) as resp:
            waiting = resp.headers["X-Task-Id"]
            assert next(resp.iter_lines()) == ": stream open"
        # Nothing is written to a queued task's stream until its heartbeat, 15 s away: the server
        # has to notice the closed connection on its own.
        left = wait_for("the queued task to end", lambda: _ended(llorchd, waiting), timeout=5)
        assert left["state"] == "canceled" and left["replica"] is None, "it never ran"
        assert left["result"]["message"] == "the client closed the stream"
        assert llorchd.get(f"/v1/tasks/{holder}")["state"] == "running"
    finally:
        llorchd.http.post(llorchd.url + f"/v1/tasks/{holder}/cancel")


def _ended(llorchd: Llorchd, task_id: str) -> dict[str, Any] | None:
    task = dict(llorchd.get(f"/v1/tasks/{task_id}"))
    return task if task["state"] not in ("queued", "running") else None


def test_a_pool_asking_more_context_than_the_engine_gives_is_held_to_the_engines(llorchd: Llorchd) -> None:
    # llama-server caps each slot at the demo model's trained context, 2048 tokens.
    apply_demo(llorchd, context=4096)
    (replica,) = llorchd.pool()["status"]["replicaStatuses"]  # type: ignore[index]
    assert replica["context"] == 2048
    (caps,) = [p for p in llorchd.get("/v1/capabilities")["pools"] if p["pool"] == "demo"]
    assert caps["ctx_max"] == caps["max_tokens_out"] == 2048
    refused = llorchd.http.post(
        llorchd.url + "/v1/tasks", json={"pool": "demo", "prompt": "x", "max_tokens": 3000}
    )
    assert refused.status_code == 400 and refused.json()["code"] == "INVALID_PARAMS"
    assert "context 2048" in refused.json()["message"]
    described = llorchd.ctl("describe", "pool/demo").stdout
    assert "4096 tokens per slot (the engine gives 2048)" in described
    assert "ContextCapped" in described


def test_kv_hint_cold_makes_the_engine_read_the_whole_prompt_again(llorchd: Llorchd) -> None:
    apply_demo(llorchd, slots=1)
    (replica,) = llorchd.pool()["status"]["replicaStatuses"]  # type: ignore[index]

    def prompt_tokens_read() -> int:
        # llama-server's own count of prompt tokens it evaluated (cached ones are not).
        text = httpx.get(replica["url"] + "/metrics").text
        (line,) = [line for line in text.splitlines() if line.startswith("llamacpp:prompt_tokens_total ")]
        return int(float(line.split()[1]))

    body = {"pool": "demo", "prompt": "word " * 200, "max_tokens": 4, "seed": 1}
    reads = []
    for hint in ("reuse", "reuse", "cold"):
        assert llorchd.stream({**body, "kv_hint": hint})[-1][0] == "end"
        reads.append(prompt_tokens_read())
    first, reused, cold = reads[0], reads[1] - reads[0], reads[2] - reads[1]
    assert first > 150 and reused < 5, "the same prompt again came from the slot's cache"
    assert cold == first, "kv_hint cold read it all again"


def test_a_task_whose_deadline_passes_in_the_queue_ends_with_deadline_unmet(llorchd: Llorchd) -> None:
    apply_demo(llorchd, slots=1, context=LONG_CONTEXT, engineArgs=LONG_CONTEXT_ARGS)
    hold = {"pool": "demo", "prompt": "Go on", "max_tokens": LONG_CONTEXT - 100, "seed": 4}
    holder = llorchd.http.post(llorchd.url + "/v1/tasks", json=hold).json()["task_id"]
    try:
        frames = llorchd.stream({"pool": "demo", "prompt": "Quick", "max_tokens": 4, "deadline_ms": 300})
        assert [e for e, _ in frames] == ["error"] and frames[0][1]["code"] == "DEADLINE_UNMET"
        # It ended while the task ahead of it (seconds long) still runs, which was not touched.
        assert llorchd.get(f"/v1/tasks/{holder}")["state"] == "running"
    finally:
        llorchd.http.post(llorchd.url + f"/v1/tasks/{holder}/cancel")


def test_queue_positions_and_predictions_shrink_as_work_drains(llorchd: Llorchd) -> None:
    apply_demo(llorchd, slots=1, context=1024)
    ids = []
    # Six, so that the last still waits behind at least two when the first look comes, however
    # busy the machine is.
    for _ in range(6):
        resp = llorchd.http.post(
            llorchd.url + "/v1/tasks", json={"pool": "demo", "prompt": "Count", "max_tokens": 800, "seed": 9}
        )
        assert resp.status_code == 202
        ids.append(resp.json()["task_id"])
    last = ids[-1]
    positions, predictions = [], []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        summary = llorchd.get(f"/v1/tasks/{last}")
        if summary["state"] != "queued":
            break
        positions.append(summary["queue_position"])
        predictions.append(summary["predicted_start_ms"])
        time.sleep(0.05)
    assert positions[0] >= 2 and positions == sorted(positions, reverse=True) and positions[-1] < positions[0]
    assert predictions[-1] <= predictions[0]


def test_sessions_count_turns_and_budgets_end_tasks(llorchd: Llorchd) -> None:
    write_atomic(llorchd.manifests / "policy.yaml", BUDGET_POLICY)
    apply_demo(llorchd)
    body = {"pool": "demo", "prompt": "Hello", "max_tokens": 20, "seed": 3, "session_id": "chat-1"}
    first = llorchd.http.post(llorchd.url + "/v1/tasks", json=body)
    assert first.headers["X-Budget-Tokens-Remaining"] == "60"
    end = read_sse(llorchd.http, llorchd.url + first.json()["streams"]["sse"])[-1]
    assert end[0] == "end" and end[1]["finish_reason"] == "length"
    session = llorchd.get("/v1/sessions/chat-1")
    used = session["tokens_used"]
    assert session["turns"] == 1 and used == 20 + end[1]["tokens_in"]

    second = llorchd.http.post(llorchd.url + "/v1/tasks", json={**body, "max_tokens": 500})
    assert second.headers["X-Budget-Tokens-Remaining"] == str(60 - used)
    frames = read_sse(llorchd.http, llorchd.url + second.json()["streams"]["sse"])
    assert frames[-1][0] == "end" and frames[-1][1]["finish_reason"] == "budget"
    assert len(tokens(frames)) == 60 - used

    refused = llorchd.http.post(llorchd.url + "/v1/tasks", json=body)
    assert refused.status_code == 429 and refused.json()["code"] == "BUDGET_EXCEEDED"
    assert int(refused.headers["Retry-After"]) > 0
    assert llorchd.get("/v1/sessions/chat-1")["tokens_budget_remaining"] == 0
    assert llorchd.http.delete(llorchd.url + "/v1/sessions/chat-1").status_code == 204
    assert llorchd.http.delete(llorchd.url + "/v1/sessions/chat-1").status_code == 204
    assert llorchd.http.get(llorchd.url + "/v1/sessions/chat-1").status_code == 404


def test_control_stays_responsive_while_every_stream_slot_is_busy(
    tmp_path: Path, llama_server_bin: Path, demo_model: Path
) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    config = {**TEST_CONFIG, "server": {"maxStreams": 3, "controlThreads": 2}}
    daemon = start_llorchd(tmp_path, manifests, tmp_path / "state", config)
    try:
        apply_demo(daemon, slots=1, context=2048)
        long = {"pool": "demo", "prompt": "Long", "max_tokens": 2000, "seed": 5}
        urls = [daemon.url + daemon.http.post(daemon.url + "/v1/tasks", json=long).json()["streams"]["sse"]
                for _ in range(4)]  # fmt: skip
        clients = [httpx.Client(timeout=60) for _ in urls]
        results: list[str] = []
        readers = [threading.Thread(target=lambda c=c, u=u: results.append(read_sse(c, u)[-1][0]))
                   for c, u in zip(clients, urls, strict=True)]  # fmt: skip
        for reader in readers:
            reader.start()
        time.sleep(0.5)
        started = time.monotonic()
        assert daemon.http.get(daemon.url + "/v1/pools").status_code == 200
        assert time.monotonic() - started < 2.0, "control answered while 3 streams held their threads"
        for reader in readers:
            reader.join(120)
        assert results == ["end"] * 4, "the 4th stream waited for a thread instead of failing"
        for client in clients:
            client.close()
    finally:
        stop_llorchd(daemon)


def test_a_replica_dying_mid_stream_ends_it_with_worker_reset(llorchd: Llorchd) -> None:
    apply_demo(llorchd, slots=1, context=LONG_CONTEXT, engineArgs=LONG_CONTEXT_ARGS)
    resp = llorchd.http.post(
        llorchd.url + "/v1/tasks", json={"pool": "demo", "prompt": "Go", "max_tokens": 8000, "seed": 8}
    )
    frames: list[tuple[str, dict[str, Any]]] = []
    reader = threading.Thread(
        target=read_sse, args=(llorchd.http, llorchd.url + resp.json()["streams"]["sse"], frames)
    )
    reader.start()
    wait_for("tokens", lambda: len(tokens(frames)) > 5, every=0.01)
    (pid,) = llorchd.engine_pids()
    os.kill(pid, signal.SIGKILL)
    reader.join(30)
    assert not reader.is_alive(), "the client is never left hanging"
    assert frames[-1][0] == "error"
    assert frames[-1][1]["code"] == "WORKER_RESET" and frames[-1][1]["retriable"] is True
