"""The catalog through a real llorchd, real llama-server replicas and llorchctl: retire a Model
(409 after, the running task ends with POOL_DRAINED at the deadline, the replicas go, the file
keeps its comments) and set it Active again; pull and the cache over a real download."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
)
from tests.runtime.range_server import range_server

pytestmark = [pytest.mark.engine, pytest.mark.slow]

MODEL_FILE = (REPO / "manifests" / "model-demo.yaml").read_text()


def test_retire_drains_to_the_deadline_stops_the_replicas_and_active_brings_them_back(
    llorchd: Llorchd,
) -> None:
    model_file = llorchd.manifests / "model-demo.yaml"
    model_file.write_text(MODEL_FILE)
    llorchd.write_pool(replicas=1, slots=1, context=LONG_CONTEXT, engineArgs=LONG_CONTEXT_ARGS)
    wait_for("the pool ready", lambda: llorchd.ready_replicas() == 1, timeout=60)
    assert len(llorchd.engine_pids()) == 1

    hold = {"pool": "demo", "prompt": "Go on", "max_tokens": LONG_CONTEXT - 100, "seed": 4}
    task_id = llorchd.http.post(llorchd.url + "/v1/tasks", json=hold).json()["task_id"]
    wait_for("the task running", lambda: llorchd.get(f"/v1/tasks/{task_id}")["state"] == "running")
    frames: list[tuple[str, dict[str, Any]]] = []
    reader = threading.Thread(
        target=read_sse, args=(llorchd.http, f"{llorchd.url}/v1/tasks/{task_id}/events", frames)
    )
    reader.start()

    retired = llorchd.http.post(
        llorchd.url + "/v1/catalog/models/tiny-llama/state", json={"state": "Retired", "deadline_ms": 800}
    )
    assert retired.status_code == 202, retired.text
    assert retired.json()["pools"] == ["demo"]
    # Only the lifecycle line changed: the comments and everything else are as written.
    assert model_file.read_text() == MODEL_FILE.replace("lifecycle: Active", "lifecycle: Retired")

    refused = llorchd.http.post(llorchd.url + "/v1/tasks", json={"pool": "demo", "prompt": "hi"})
    assert refused.status_code == 409 and refused.json()["code"] == "MODEL_RETIRED"
    assert llorchd.get(f"/v1/tasks/{task_id}")["state"] == "running", (
        "the running task has until the deadline"
    )

    reader.join(30)
    assert frames[-1][0] == "error" and frames[-1][1]["code"] == "POOL_DRAINED", frames[-1]
    wait_for("no llama-server left", lambda: not llorchd.engine_pids(), timeout=30)
    health = llorchd.get("/v1/pools/demo/health")
    assert health["blocked_by"] == "ModelRetired" and "Retired" in health["message"]
    table = llorchd.ctl("get", "pools").stdout
    assert "ModelRetired" in table.splitlines()[1]
    metrics = llorchd.http.get(llorchd.url + "/metrics").text
    assert 'llorch_model_state{model_id="tiny-llama",state="Retired"} 1.0' in metrics

    active = llorchd.http.post(llorchd.url + "/v1/catalog/models/tiny-llama/state", json={"state": "Active"})
    assert active.status_code == 202
    assert model_file.read_text() == MODEL_FILE
    wait_for("the pool ready again", lambda: llorchd.ready_replicas() == 1, timeout=60)
    assert len(llorchd.engine_pids()) == 1


@pytest.fixture
def own_cache(tmp_path: Path, llama_server_bin: Path) -> Iterator[Llorchd]:
    """A llorchd whose cache is its own folder (prune must never touch the user's real cache);
    its llama-server is the one already built."""
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    config = {
        **TEST_CONFIG,
        "cacheDir": str(tmp_path / "cache"),
        "engines": {"llamacpp": {"binary": str(llama_server_bin)}},
    }
    daemon = start_llorchd(tmp_path, manifests, tmp_path / "state", config)
    try:
        yield daemon
    finally:
        stop_llorchd(daemon)


def test_pull_shows_a_download_and_the_cache_lists_and_prunes_it(
    own_cache: Llorchd, demo_model: Path
) -> None:
    llorchd = own_cache
    data = demo_model.read_bytes()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with range_server({"tiny.gguf": data}) as server:
        server.seconds_per_chunk = 0.01  # about 3 s for the 17 MB: long enough to watch
        created = llorchd.http.post(
            llorchd.url + "/v1/catalog/models",
            json={"id": "fetched", "source_url": f"{server.url}/tiny.gguf", "digest": digest},
        )
        assert created.status_code == 201, created.text
        pulled = llorchd.ctl("pull", "model/fetched")
    assert "ready: " in pulled.stdout and digest in pulled.stdout
    assert "model/fetched" in pulled.stderr, "progress lines on stderr"
    described = llorchd.ctl("describe", "model/fetched").stdout
    assert "Trust:" in described and "unsigned" in described

    listing = llorchd.ctl("cache", "ls").stdout
    assert "fetched" in listing.splitlines()[1] and "active" in listing.splitlines()[1]
    assert "would remove 0 entries" in llorchd.ctl("cache", "prune", "--dry-run").stdout

    assert llorchd.http.delete(llorchd.url + "/v1/catalog/models/fetched").status_code == 204
    pruned = llorchd.ctl("cache", "prune").stdout
    assert "removed 1 entry" in pruned
    assert "No cached weights." in llorchd.ctl("cache", "ls").stdout
