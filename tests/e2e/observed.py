"""A llorchd with a token and a demo pool that has done a bit of everything an operator watches:
answers, a refusal, a cancel, and a replica killed mid-answer and restarted. For the metrics
contract and the Prometheus + dashboard tests."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
)

TOKEN = "observed-s3cret-token"


@dataclass
class Observed:
    daemon: Llorchd
    token_file: Path


def observed_llorchd(tmp_path: Path) -> Iterator[Observed]:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    shutil.copy(REPO / "manifests" / "model-demo.yaml", manifests / "model-demo.yaml")
    config = {**TEST_CONFIG, "auth": {"tokens": [TOKEN]}}
    daemon = start_llorchd(
        tmp_path,
        manifests,
        tmp_path / "state",
        config,
        command=[sys.executable, "-m", "tests.e2e.nvml_double_llorchd"],
        env={"PYTHONPATH": str(REPO)},
    )
    daemon.http.headers["Authorization"] = f"Bearer {TOKEN}"
    token_file = tmp_path / "llorch.token"
    token_file.write_text(TOKEN + "\n")
    pids: set[int] = set()
    try:
        yield Observed(daemon, token_file)
        pids = daemon.engine_pids()
    finally:
        pids |= daemon.engine_pids()
        stop_llorchd(daemon)
        for pid in pids:
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)


def run_workload(daemon: Llorchd) -> None:
    daemon.write_pool(replicas=1, context=LONG_CONTEXT, engineArgs=LONG_CONTEXT_ARGS)
    wait_for("a ready replica", lambda: daemon.ready_replicas() == 1, timeout=90)
    for seed in range(3):
        frames = daemon.stream({"pool": "demo", "prompt": "Hello", "max_tokens": 8, "seed": seed})
        assert frames[-1][0] == "end", frames[-1]
    too_long = daemon.http.post(
        daemon.url + "/v1/tasks", json={"pool": "demo", "prompt": "x", "max_tokens": LONG_CONTEXT * 2}
    )
    assert too_long.status_code == 400 and too_long.json()["code"] == "INVALID_PARAMS"
    canceled = _long_task(daemon)
    daemon.http.post(f"{daemon.url}/v1/tasks/{canceled.task_id}/cancel")
    canceled.reader.join(60)
    assert canceled.frames[-1][1].get("code") == "CANCELED", canceled.frames[-1]
    killed = _long_task(daemon)
    (victim,) = daemon.engine_pids()
    os.kill(victim, signal.SIGKILL)
    killed.reader.join(60)
    assert killed.frames[-1][0] == "error", killed.frames[-1]
    wait_for("the replica restarted", lambda: daemon.engine_pids() - {victim}, timeout=60)
    wait_for("ready again", lambda: daemon.ready_replicas() == 1, timeout=90)
    frames = daemon.stream({"pool": "demo", "prompt": "Again", "max_tokens": 8, "seed": 9})
    assert frames[-1][0] == "end", frames[-1]


@dataclass
class _Running:
    task_id: str
    frames: list[tuple[str, dict[str, Any]]]
    reader: threading.Thread


def _long_task(daemon: Llorchd) -> _Running:
    resp = daemon.http.post(
        daemon.url + "/v1/tasks", json={"pool": "demo", "prompt": "A long story", "max_tokens": 8000}
    )
    assert resp.status_code == 202, resp.text
    frames: list[tuple[str, dict[str, Any]]] = []
    reader = threading.Thread(
        target=read_sse, args=(daemon.http, daemon.url + resp.json()["streams"]["sse"], frames), daemon=True
    )
    reader.start()
    wait_for("tokens to flow", lambda: any(e == "token" for e, _ in frames), every=0.01)
    return _Running(resp.json()["task_id"], frames, reader)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
