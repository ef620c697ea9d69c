"""The Pool controller driven with no process and no engine: test doubles for the processes it
spawns (FakeProcesses), the engine it probes (FakeAdapter) and the clock (FakeClock), with a real
manifest folder and a real sqlite state."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf
import httpx
import numpy as np
import pytest
import yaml

from llorch.controllers.conditions import set_condition
from llorch.controllers.manager import Result
from llorch.controllers.pool import PoolController
from llorch.dataplane.metrics import Metrics
from llorch.resources import ServerConfig
from llorch.resources.errors import LlorchError
from llorch.resources.status import ModelStatus, PoolStatus, ReplicaStatus
from llorch.runtime.demand import Demand
from llorch.runtime.engines.base import CompletionRequest, CompletionStream, Launch, LaunchRequest, Upstream
from llorch.runtime.errors import ProcessError
from llorch.runtime.gpus import SimulatedInventory
from llorch.runtime.process import ExitCallback, Worker
from llorch.runtime.registry import ReplicaRegistry
from llorch.store.db import Event, StateDB
from llorch.store.manifests import ManifestStore
from tests.controllers.clock import FakeClock


@dataclass(eq=False)
class FakeWorker:
    """An engine process that exists only here: it exits when a test says so."""

    pid: int
    argv: list[str]
    log_path: Path
    started_at: float
    create_time: float
    on_exit: ExitCallback
    adopted: bool = False
    stopping: bool = False
    exit_code: int | None = None
    stops: int = 0

    @property
    def alive(self) -> bool:
        return self.exit_code is None

    @property
    def port(self) -> int:
        return int(self.argv[self.argv.index("--port") + 1])

    def exit_reason(self) -> str:
        return "running" if self.alive else f"exited with code {self.exit_code}"

    def crash(self, code: int = 1) -> None:
        self.exit_code = code
        self.on_exit(self)

    def stop(self, grace: float) -> None:
        self.stopping = True
        self.stops += 1
        if self.alive:
            self.exit_code = -15


@dataclass
class FakeProcesses:
    clock: FakeClock
    spawned: list[FakeWorker] = field(default_factory=list)
    # pid -> create time of processes an earlier llorchd left running.
    running: dict[int, float] = field(default_factory=dict)
    orphans_stopped: list[int] = field(default_factory=list)
    fail_spawns: int = 0

    def spawn(
        self, argv: Sequence[str], *, env: Mapping[str, str], log_path: Path, on_exit: ExitCallback
    ) -> Worker:
        if self.fail_spawns:
            self.fail_spawns -= 1
            raise ProcessError(f"cannot start {argv[0]}: [Errno 12] Cannot allocate memory")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text("llama-server: loading\n")
        worker = FakeWorker(
            pid=10_000 + len(self.spawned),
            argv=list(argv),
            log_path=log_path,
            started_at=self.clock(),
            create_time=self.clock(),
            on_exit=on_exit,
        )
        self.spawned.append(worker)
        return worker

    def adopt(
        self, *, pid: int, create_time: float, log_path: Path, started_at: float, on_exit: ExitCallback
    ) -> Worker | None:
        if self.running.get(pid) != create_time:
            return None
        return FakeWorker(pid, ["adopted"], log_path, started_at, create_time, on_exit, adopted=True)

    def stop_orphan(self, pid: int, create_time: float, grace: float) -> bool:
        if self.running.pop(pid, None) is None:
            return False
        self.orphans_stopped.append(pid)
        return True

    @property
    def alive(self) -> list[FakeWorker]:
        return [w for w in self.spawned if w.alive]


@dataclass
class FakeAdapter:
    """An engine that answers its health check on the ports a test marks healthy."""

    name: str = "llamacpp"
    healthy_ports: set[int] = field(default_factory=set)

    def launch(self, request: LaunchRequest) -> Launch:
        spec = request.spec
        argv = [str(request.binary), "--model", str(request.model_path), "--port", str(request.port)]
        argv += [
            "--ctx-size",
            str(spec.context * spec.slots),
            "--parallel",
            str(spec.slots),
            *spec.engine_args,
        ]
        return Launch(argv=argv, env=request.gpus.env())

    def healthy(self, client: httpx.Client, upstream: Upstream) -> bool:
        return int(upstream.base_url.rsplit(":", 1)[1]) in self.healthy_ports

    def kv_cache_usage(self, client: httpx.Client, upstream: Upstream) -> float | None:
        return None

    def busy_slots(self, client: httpx.Client, upstream: Upstream) -> int | None:
        return None

    def version(self, client: httpx.Client, upstream: Upstream) -> str | None:
        return "fake-1"

    def context_per_slot(self, client: httpx.Client, upstream: Upstream) -> int | None:
        return None

    def complete(
        self, client: httpx.Client, upstream: Upstream, request: CompletionRequest
    ) -> CompletionStream:
        raise AssertionError("the controller never streams")


MODEL = {
    "apiVersion": "llorch.dev/v1",
    "kind": "Model",
    "metadata": {"name": "m"},
    "spec": {"source": {"path": "m.gguf"}},
}


@dataclass
class Harness:
    folder: Path
    store: ManifestStore
    db: StateDB
    registry: ReplicaRegistry
    clock: FakeClock
    processes: FakeProcesses
    adapter: FakeAdapter
    enqueued: list[str]
    evicted: list[tuple[str, LlorchError]]
    controller: PoolController
    inventory: SimulatedInventory
    # What the data plane would report per pool; tests set it.
    demand: dict[str, Demand]
    # The daemon's metrics, hearing the controller's events.
    metrics: Metrics

    def pool(self, name: str = "p", **spec: Any) -> None:
        """Write Pool `name`; a field given as None is left out (`replicas=None` for autoscale)."""
        fields = {"model": "m", "replicas": 1, "slots": 2, "context": 256, **spec}
        doc = {
            "apiVersion": "llorch.dev/v1",
            "kind": "Pool",
            "metadata": {"name": name},
            "spec": {key: value for key, value in fields.items() if value is not None},
        }
        (self.folder / f"pool-{name}.yaml").write_text(yaml.safe_dump(doc))
        self.store.load()

    def delete(self, name: str = "p") -> None:
        (self.folder / f"pool-{name}.yaml").unlink()
        self.store.load()

    def reconcile(self, name: str = "p") -> Result:
        return self.controller.reconcile(name)

    def status(self, name: str = "p") -> PoolStatus:
        status = self.db.pool_status(name)
        assert status is not None
        return status

    def replica(self, name: str = "p") -> ReplicaStatus:
        (replica,) = self.status(name).replica_statuses
        return replica

    def condition(self, type_: str, name: str = "p") -> tuple[str, str]:
        found = next(c for c in self.status(name).conditions if c.type == type_)
        return found.status, found.reason

    def events(self, name: str = "p") -> list[Event]:
        return self.db.events(f"Pool/{name}")

    def reasons(self, name: str = "p") -> list[str]:
        return [e.reason for e in self.events(name)]

    def make_healthy(self, worker: FakeWorker) -> None:
        self.adapter.healthy_ports.add(worker.port)

    def bring_up(self, name: str = "p") -> FakeWorker:
        """Reconcile until the pool's newest replica is Ready."""
        self.reconcile(name)
        worker = self.processes.spawned[-1]
        self.make_healthy(worker)
        self.reconcile(name)
        assert self.replica(name).phase == "Ready"
        return worker


def write_gguf(path: Path) -> Path:
    """A small but real GGUF: the memory estimate reads its shape and its 1 MiB of weights."""
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_embedding_length(64)
    writer.add_block_count(2)
    writer.add_feed_forward_length(128)
    writer.add_head_count(4)
    writer.add_vocab_size(1000)
    writer.add_tensor("w", np.zeros((512, 512), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def config() -> ServerConfig:
    """The server settings the harness runs with; a test overrides this fixture to change them."""
    return ServerConfig()


@pytest.fixture
def harness(tmp_path: Path, config: ServerConfig) -> Iterator[Harness]:
    folder = tmp_path / "manifests"
    folder.mkdir()
    write_gguf(folder / "m.gguf")
    (folder / "model.yaml").write_text(yaml.safe_dump(MODEL))
    store = ManifestStore(folder)
    store.load()
    db = StateDB(tmp_path / "state.sqlite")
    ready = set_condition([], "Ready", True, "Resolved")
    db.put_status(
        "Model/m", ModelStatus(resolved_path=str(folder / "m.gguf"), lifecycle="Active", conditions=ready)
    )
    clock = FakeClock(1_796_000_000.0)
    processes = FakeProcesses(clock)
    adapter = FakeAdapter()
    registry = ReplicaRegistry()
    evicted: list[tuple[str, LlorchError]] = []
    registry.on_evict(lambda replica_id, error: evicted.append((replica_id, error)))
    enqueued: list[str] = []
    demand: dict[str, Demand] = {}
    ports = iter(range(41_000, 42_000))
    inventory = SimulatedInventory([])
    metrics = Metrics()
    controller = PoolController(
        store=store,
        db=db,
        registry=registry,
        config=config,
        engine_binary=lambda engine: Path("/opt/llama-server"),
        inventory=inventory,
        logs_dir=tmp_path / "logs",
        enqueue=enqueued.append,
        processes=processes,
        adapter_for=lambda engine: adapter,
        clock=clock,
        free_port=lambda: next(ports),
        demand=lambda pool: demand.get(pool, Demand()),
        events=metrics,
    )
    yield Harness(
        folder,
        store,
        db,
        registry,
        clock,
        processes,
        adapter,
        enqueued,
        evicted,
        controller,
        inventory,
        demand,
        metrics,
    )
    controller.shutdown()
    db.close()


Crash = Callable[[FakeWorker], None]
