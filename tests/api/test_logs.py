"""`GET /v1/pools/{name}/logs` over real loopback HTTP (waitress, as llorchd serves): a replica's log
file, its tail, the default replica and the unknown one, and a follow that sees what is appended
and lets go of its thread when the client leaves."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from llorch.api.app import create_app
from llorch.api.context import AppContext
from llorch.resources.status import PoolStatus, ReplicaStatus
from llorch.runtime import logfile
from tests.api.appctx import app_context, close, served

POOL = """\
apiVersion: llorch.dev/v1
kind: Pool
metadata: {name: demo}
spec: {model: m, replicas: 2}
"""
# Fewer threads than the follows the test opens one after another: each must hand its thread back.
THREADS = 2


@dataclass
class Server:
    url: str
    ctx: AppContext
    logs: Path

    def replicas(self, *names: str) -> None:
        statuses = [
            ReplicaStatus(
                id=name, index=i, revision="r", phase="Ready", log_path=str(self.logs / f"{name}.log")
            )
            for i, name in enumerate(names)
        ]
        self.ctx.db.put_status("Pool/demo", PoolStatus(replicas=len(names), replica_statuses=statuses))

    def write(self, name: str, text: str) -> None:
        with open(self.logs / f"{name}.log", "a") as handle:
            handle.write(text)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    ctx = app_context(tmp_path)
    (ctx.store.folder / "demo.yaml").write_text(POOL)
    ctx.store.load()
    logs = tmp_path / "logs"
    logs.mkdir()
    with served(create_app(ctx), threads=THREADS) as url:
        yield Server(url, ctx, logs)
    close(ctx)


def test_the_whole_log_and_its_tail(server: Server) -> None:
    server.replicas("demo-0-a", "demo-1-b")
    server.write("demo-0-a", "--- starting: llama-server\nline 1\nline 2\nline 3\n")
    whole = httpx.get(server.url + "/v1/pools/demo/logs")
    assert whole.status_code == 200 and whole.headers["content-type"].startswith("text/plain")
    assert whole.text == "--- starting: llama-server\nline 1\nline 2\nline 3\n"
    assert whole.headers["X-Llorch-Replica"] == "demo-0-a", "the first replica when none is named"
    assert whole.headers["X-Llorch-Replicas"] == "demo-0-a,demo-1-b"
    tail = httpx.get(server.url + "/v1/pools/demo/logs", params={"tail": 2})
    assert tail.text == "line 2\nline 3\n"
    assert httpx.get(server.url + "/v1/pools/demo/logs", params={"tail": 0}).text == ""


def test_a_named_replica_and_an_unknown_one(server: Server) -> None:
    server.replicas("demo-0-a", "demo-1-b")
    server.write("demo-1-b", "second\n")
    named = httpx.get(server.url + "/v1/pools/demo/logs", params={"replica": "demo-1-b"})
    assert (named.text, named.headers["X-Llorch-Replica"]) == ("second\n", "demo-1-b")
    unknown = httpx.get(server.url + "/v1/pools/demo/logs", params={"replica": "demo-9"})
    assert unknown.status_code == 404
    assert unknown.json()["message"] == (
        "pool 'demo' has no replica 'demo-9'; its replicas: demo-0-a, demo-1-b"
    )
    assert httpx.get(server.url + "/v1/pools/absent/logs").json()["message"] == "no Pool/absent"


def test_a_pool_without_replicas_says_so(server: Server) -> None:
    refused = httpx.get(server.url + "/v1/pools/demo/logs")
    assert refused.status_code == 404 and "no replica with a log yet" in refused.json()["message"]


def follow_once(server: Server, appended: str) -> bytes:
    """Open a follow, read what is there, append `appended`, read it, and leave."""
    received = b""
    with httpx.stream(
        "GET", server.url + "/v1/pools/demo/logs", params={"follow": "true", "tail": 1}, timeout=10
    ) as resp:
        chunks = resp.iter_raw()
        received += next(chunks)
        server.write("demo-0-a", appended)
        while not received.endswith(appended.encode()):
            received += next(chunks)
    return received


def test_follow_sends_what_is_appended_and_lets_go_when_the_client_leaves(server: Server) -> None:
    server.replicas("demo-0-a")
    server.write("demo-0-a", "old\nlast\n")
    assert follow_once(server, "new 0\n") == b"last\nnew 0\n"
    for round_ in range(1, THREADS + 2):
        assert follow_once(server, f"new {round_}\n") == f"new {round_ - 1}\nnew {round_}\n".encode()
    # Every follow left its thread: a plain request still gets one.
    assert httpx.get(server.url + "/v1/pools/demo", timeout=5).status_code == 200


def test_follow_ends_when_the_replica_leaves_the_pool(server: Server) -> None:
    server.replicas("demo-0-a")
    server.write("demo-0-a", "running\n")
    with httpx.stream(
        "GET", server.url + "/v1/pools/demo/logs", params={"follow": "true"}, timeout=10
    ) as resp:
        chunks = resp.iter_raw()
        assert next(chunks) == b"running\n"
        server.replicas()
        assert b"".join(chunks) == b"", "the stream ends once the replica is gone"


def test_tail_offset_reads_back_from_the_end(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"a\nb\nc")
    assert logfile.last_lines(path, 2) == ["b", "c"], "a last line without its newline counts"
    path.write_bytes(b"".join(b"%d\n" % i for i in range(50_000)))
    assert logfile.last_lines(path, 3) == ["49997", "49998", "49999"]
    assert logfile.tail_offset(path, 10**6) == 0
    assert logfile.last_lines(tmp_path / "absent", 5) == []
