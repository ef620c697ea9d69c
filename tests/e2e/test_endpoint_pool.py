"""A pool whose engine someone else runs: here a real llama-server started by the test itself."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Llorchd, free_port, wait_for, write_atomic

pytestmark = [pytest.mark.engine, pytest.mark.slow]


class External:
    def __init__(self, binary: Path, model: Path, log: Path) -> None:
        self.binary, self.model, self.log = binary, model, log
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(self.binary), "-m", str(self.model), "--host", "127.0.0.1", "--port", str(self.port),
                 "-c", "1024", "-np", "2", "--n-gpu-layers", "0"],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

        def up() -> bool:
            try:
                return httpx.get(self.url + "/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for("the external llama-server", up, timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def external(tmp_path: Path, llama_server_bin: Path, demo_model: Path) -> Iterator[External]:
    server = External(llama_server_bin, demo_model, tmp_path / "external.log")
    server.start()
    yield server
    server.stop()


def endpoint_pool(url: str) -> str:
    return f"""\
apiVersion: llorch.dev/v1
kind: Pool
metadata:
  name: outside
spec:
  model: tiny-llama
  engine: llamacpp
  slots: 2
  context: 512
  endpoint:
    url: {url}
"""


def test_endpoint_pools_are_probed_and_served_never_spawned(llorchd: Llorchd, external: External) -> None:
    write_atomic(llorchd.manifests / "outside.yaml", endpoint_pool(external.url))
    wait_for("the endpoint pool Ready", lambda: llorchd.ready_replicas("outside") == 1, timeout=30)
    assert not llorchd.engine_pids(), "llorch spawned nothing"

    frames = llorchd.stream({"pool": "outside", "prompt": "Hello", "max_tokens": 12, "seed": 5})
    assert frames[-1][0] == "end" and frames[-1][1]["tokens_out"] == 12

    caps = {p["pool"]: p for p in llorchd.get("/v1/capabilities")["pools"]}
    assert caps["outside"]["slots_total"] == 2 and caps["outside"]["engine"] == "llamacpp"
    assert caps["outside"]["engine_version"], "the version comes from the engine's own /props"

    external.stop()
    wait_for("the pool NotReady", lambda: llorchd.ready_replicas("outside") == 0, timeout=30)
    refused = llorchd.http.post(llorchd.url + "/v1/tasks", json={"pool": "outside", "prompt": "x"})
    assert refused.status_code == 503 and refused.json()["code"] == "POOL_UNREADY"
    assert "EndpointNotReady" in llorchd.ctl("get", "pools").stdout

    external.start()
    wait_for("the pool Ready again", lambda: llorchd.ready_replicas("outside") == 1, timeout=30)

    (llorchd.manifests / "outside.yaml").unlink()
    wait_for("the pool gone", lambda: llorchd.pool("outside") is None, timeout=30)
    assert external.proc is not None and external.proc.poll() is None, (
        "llorch never stops an engine it did not start"
    )
