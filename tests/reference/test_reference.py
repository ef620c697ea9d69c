"""The reference workstation end to end: admission, streaming, a task on every GPU-placed pool,
and placement across both GPUs; each figure lands in the report (see conftest)."""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from typing import Any

import pytest
from httpx_sse import connect_sse

from llorch.resources.diagnostics import Diagnostics
from tests.reference.conftest import Box

pytestmark = pytest.mark.reference

PROMPT = "Write one sentence about the sea."
MAX_TOKENS = 32


@dataclass(frozen=True)
class Run:
    admission_ms: float
    admitted: dict[str, Any]
    budget_header: str | None
    frames: list[tuple[str, dict[str, Any]]]
    first_token_ms: float | None
    total_ms: float

    @property
    def end(self) -> dict[str, Any]:
        name, data = self.frames[-1]
        assert name == "end", f"the stream ended with {name}: {data}"
        return data

    def figures(self) -> dict[str, Any]:
        end = self.end
        metrics = [data for name, data in self.frames if name == "metrics"]
        decode_s = (end.get("decode_ms") or 0) / 1000
        return {
            "admission_ms": round(self.admission_ms, 1),
            "first_token_ms": None if self.first_token_ms is None else round(self.first_token_ms, 1),
            "total_ms": round(self.total_ms, 1),
            "queue_ms": end.get("queue_ms"),
            "ttft_ms": end.get("ttft_ms"),
            "decode_ms": end.get("decode_ms"),
            "tokens_out": end.get("tokens_out"),
            "tokens_per_second": round(end["tokens_out"] / decode_s, 1) if decode_s else None,
            "finish_reason": end.get("finish_reason"),
            "budget_tokens_remaining_at_admission": self.budget_header,
            "budget_tokens_remaining_last": metrics[-1].get("tokens_budget_remaining") if metrics else None,
        }


def run_task(box: Box, pool: str) -> Run:
    body = {"pool": pool, "prompt": PROMPT, "max_tokens": MAX_TOKENS, "seed": 7}
    started = time.monotonic()
    admitted = box.http.post("/v1/tasks", json=body)
    admission_ms = (time.monotonic() - started) * 1000
    assert admitted.status_code == 202, admitted.text
    answer = admitted.json()
    frames: list[tuple[str, dict[str, Any]]] = []
    first_token_ms = None
    with connect_sse(box.http, "GET", answer["streams"]["sse"]) as source:
        for event in source.iter_sse():
            if event.event == "token" and first_token_ms is None:
                first_token_ms = (time.monotonic() - started) * 1000
            frames.append((event.event, json.loads(event.data) if event.data else {}))
    total_ms = (time.monotonic() - started) * 1000
    return Run(
        admission_ms,
        answer,
        admitted.headers.get("X-Budget-Tokens-Remaining"),
        frames,
        first_token_ms,
        total_ms,
    )


def first_ready(box: Box) -> str:
    ready = box.ready_pools()
    if not ready:
        pytest.fail("no pool is Ready on the reference box: llorchctl get pools there says why")
    return ready[0][0]


def test_admission_answers_with_queue_metadata(box: Box) -> None:
    pool = first_ready(box)
    run = run_task(box, pool)
    admitted = run.admitted
    assert admitted["pool"] == pool and admitted["task_id"]
    assert isinstance(admitted["queue_position"], int) and isinstance(admitted["predicted_start_ms"], int)
    box.report.add("admission", {"pool": pool, **run.figures()})


def test_streaming_frames_come_in_order(box: Box) -> None:
    pool = first_ready(box)
    runs = [run_task(box, pool) for _ in range(3)]
    for run in runs:
        names = [name for name, _ in run.frames]
        assert names[0] == "started" and names[-1] == "end", names
        assert "token" in names and names.index("token") < names.index("end")
        assert run.end["tokens_out"] > 0
    firsts = [r.first_token_ms for r in runs if r.first_token_ms is not None]
    box.report.add(
        "streaming",
        {
            "pool": pool,
            "runs": [r.figures() for r in runs],
            "first_token_ms_median": round(statistics.median(firsts), 1) if firsts else None,
        },
    )


def gpu_pools(box: Box) -> dict[str, list[int]]:
    """Ready pools whose replicas run on GPUs → the GPU indexes they hold."""
    placed: dict[str, list[int]] = {}
    for name, status in box.ready_pools():
        indexes = sorted({g.index for r in status.replica_statuses if r.phase == "Ready" for g in r.gpus})
        if indexes:
            placed[name] = indexes
    return placed


def test_a_task_runs_on_every_gpu_placed_pool(box: Box) -> None:
    placed = gpu_pools(box)
    if not placed:
        pytest.skip("no Ready pool is placed on a GPU on the reference box")
    figures = {}
    for pool, gpus in placed.items():
        run = run_task(box, pool)
        figures[pool] = {"gpus": gpus, **run.figures()}
    box.report.add("gpu_pools", figures)


def test_replicas_are_placed_across_both_gpus(box: Box) -> None:
    found = Diagnostics.model_validate(box.http.get("/v1/diagnostics").raise_for_status().json())
    devices = found.gpu.devices
    box.report.add(
        "gpus",
        [
            {"index": d.index, "name": d.name, "total_bytes": d.total_bytes, "free_bytes": d.free_bytes}
            for d in devices
        ],
    )
    if len(devices) < 2:
        pytest.skip(f"the reference box reports {len(devices)} GPU(s): placement across two needs two")
    used = sorted({index for gpus in gpu_pools(box).values() for index in gpus})
    box.report.add("gpus_used", used)
    assert len(used) >= 2, f"every GPU-placed replica is on GPU {used}: the manifests should use both cards"
