"""A real llorchd process on a temporary manifests folder, driven over HTTP and through llorchctl."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
T = TypeVar("T")

# Short timings so crash loops and file edits show within seconds; the defaults are for people.
TEST_CONFIG = {
    "reconcile": {
        "resyncSeconds": 5,
        "debounceMs": 50,
        "errorBackoff": {"initialSeconds": 0.2, "maxSeconds": 2},
    },
    "supervision": {
        "restartBackoff": {"initialSeconds": 1, "maxSeconds": 4},
        "stopGraceSeconds": 5,
        "drainGraceSeconds": 2,
    },
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30.0, every: float = 0.1) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


@dataclass
class Llorchd:
    url: str
    manifests: Path
    state: Path
    log: Path
    proc: subprocess.Popen[bytes]
    http: httpx.Client

    def get(self, path: str) -> Any:
        resp = self.http.get(self.url + path)
        resp.raise_for_status()
        return resp.json()

    def pool(self, name: str = "demo") -> dict[str, Any] | None:
        resp = self.http.get(f"{self.url}/v1/pools/{name}")
        return resp.json() if resp.status_code == 200 else None

    def ready_replicas(self, name: str = "demo") -> int:
        pool = self.pool(name)
        return int(pool["status"].get("readyReplicas", 0)) if pool else 0

    def engine_pids(self) -> set[int]:
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return set()
        return {c.pid for c in children if _is_engine(c)}

    def ctl(
        self, *args: str, check: bool = True, input_: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(BIN / "llorchctl"), "--server", self.url, *args],
            capture_output=True,
            text=True,
            input=input_,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"llorchctl {' '.join(args)} failed: {result.stdout}\n{result.stderr}")
        return result

    def write_pool(self, replicas: int, **spec: Any) -> None:
        # One decode thread per replica: llama-server's threads spin-wait for each other, so on a
        # 2-core machine with one core busy elsewhere a 2-thread replica fell from 1430 to 248
        # tokens/s (1 thread: 1430), and to about 20 near 2000 tokens of context.
        engine_args = ["--threads", "1", *spec.pop("engineArgs", [])]
        doc = {
            "apiVersion": "llorch.dev/v1",
            "kind": "Pool",
            "metadata": {"name": "demo"},
            "spec": {
                "model": "tiny-llama",
                "replicas": replicas,
                "slots": 2,
                "context": 512,
                "engineArgs": engine_args,
                **spec,
            },
        }
        write_atomic(self.manifests / "pool-demo.yaml", yaml.safe_dump(doc, sort_keys=False))

    def stream(self, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """Submit a task and read its SSE stream to the end: [(event, data), ...]."""
        resp = self.http.post(self.url + "/v1/tasks", json=body)
        assert resp.status_code == 202, resp.text
        return read_sse(self.http, self.url + resp.json()["streams"]["sse"])

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


def read_sse(
    http: httpx.Client,
    url: str,
    into: list[tuple[str, dict[str, Any]]] | None = None,
    opened: threading.Event | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """Read an SSE stream to its end; frames are appended to `into` as they arrive, and `opened`
    is set once the server answered (it has taken the stream: a later stop must end it)."""
    frames: list[tuple[str, dict[str, Any]]] = [] if into is None else into
    with http.stream("GET", url, timeout=60) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        if opened is not None:
            opened.set()
        event = ""
        for line in resp.iter_lines():
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: "):
                frames.append((event, json.loads(line[len("data: ") :])))
    return frames


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _is_engine(proc: psutil.Process) -> bool:
    try:
        return proc.name() == "llama-server"
    except psutil.Error:
        return False


# llama-server caps a slot's context at the model's trained context (2048 for the demo model), and
# at several hundred tokens a second that ends any task within about a second. Tests that need a
# slot held for several seconds raise the trained context (the model runs fine past it).
LONG_CONTEXT = 16384
LONG_CONTEXT_ARGS = ["--override-kv", f"llama.context_length=int:{LONG_CONTEXT}"]


def start_llorchd(
    tmp_path: Path,
    manifests: Path,
    state: Path,
    config: dict[str, Any] | None = None,
    *,
    log_format: str = "text",
    env: dict[str, str] | None = None,
    command: list[str] | None = None,
) -> Llorchd:
    """`command`: what runs llorchd (default: the installed `llorchd`), its arguments following."""
    port = free_port()
    config_path = tmp_path / "llorch.yaml"
    config_path.write_text(yaml.safe_dump(config or TEST_CONFIG))
    log = tmp_path / f"llorchd-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                *(command or [str(BIN / "llorchd")]),
                "--bind", f"127.0.0.1:{port}",
                "--manifests", str(manifests),
                "--state", str(state),
                "--config", str(config_path),
                "--log-format", log_format,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )  # fmt: skip
    daemon = Llorchd(f"http://127.0.0.1:{port}", manifests, state, log, proc, httpx.Client(timeout=30))

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"llorchd exited with {proc.returncode}:\n{daemon.logs()}")
        try:
            return daemon.http.get(daemon.url + "/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    wait_for("llorchd to answer /healthz", healthy, timeout=120)
    return daemon


def stop_llorchd(daemon: Llorchd) -> int:
    if daemon.proc.poll() is None:
        daemon.proc.send_signal(signal.SIGTERM)
    try:
        return daemon.proc.wait(60)
    finally:
        daemon.http.close()


@pytest.fixture
def llorchd(tmp_path: Path, llama_server_bin: Path, demo_model: Path) -> Iterator[Llorchd]:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    with running_llorchd(tmp_path, manifests) as daemon:
        yield daemon


@contextmanager
def running_llorchd(tmp: Path, manifests: Path) -> Iterator[Llorchd]:
    """llorchd on `manifests`, stopped at the end; fails if one of its llama-servers outlived it."""
    daemon = start_llorchd(tmp, manifests, tmp / "state")
    pids: set[int] = set()
    try:
        yield daemon
        pids = daemon.engine_pids()
    finally:
        pids |= daemon.engine_pids()
        stop_llorchd(daemon)
        for pid in pids:
            if psutil.pid_exists(pid):
                os.killpg(pid, signal.SIGKILL)
                raise AssertionError(f"llama-server pid {pid} outlived llorchd")
