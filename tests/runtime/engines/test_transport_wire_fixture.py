"""What every SSE engine shares (llorch.runtime.engines.sse), checked once per engine against its
replayed wire format: a cut or short stream is WORKER_RESET, an unreachable engine too, and a
close ends the stream quietly: before it starts nothing is sent, from another thread it reaches the
engine."""

from __future__ import annotations

import threading

import httpx
import pytest

from llorch.runtime.engines.base import Token, Upstream
from llorch.runtime.errors import EngineError
from tests.runtime.engines.replay import (
    REQUEST,
    ReplayServer,
    closed_port,
    collect,
    cut,
    held,
    truncated,
    upstream,
)
from tests.runtime.engines.wires import Wire


def test_connection_cut_mid_stream_is_a_worker_reset(
    wire: Wire, server: ReplayServer, client: httpx.Client
) -> None:
    server.route("POST", wire.path, cut(wire.engine, "stream_ok.sse", 3))
    with pytest.raises(EngineError) as caught:
        collect(wire.adapter.complete(client, upstream(server), REQUEST))
    assert (caught.value.code, caught.value.retriable) == ("WORKER_RESET", True)


def test_stream_ending_before_its_final_event_is_a_worker_reset(
    wire: Wire, server: ReplayServer, client: httpx.Client
) -> None:
    server.route("POST", wire.path, truncated(wire.engine, "stream_ok.sse", wire.short_of_final))
    with pytest.raises(EngineError) as caught:
        collect(wire.adapter.complete(client, upstream(server), REQUEST))
    assert caught.value.code == "WORKER_RESET"


def test_unreachable_engine_is_a_worker_reset(wire: Wire, client: httpx.Client) -> None:
    gone = Upstream(base_url=f"http://127.0.0.1:{closed_port()}", model="tiny")
    with pytest.raises(EngineError) as caught:
        collect(wire.adapter.complete(client, gone, REQUEST))
    assert (caught.value.code, caught.value.retriable) == ("WORKER_RESET", True)


def test_close_before_iterating_sends_nothing(wire: Wire, server: ReplayServer, client: httpx.Client) -> None:
    stream = wire.adapter.complete(client, upstream(server), REQUEST)
    stream.close()
    assert collect(stream) == []
    assert server.requests == []


def test_close_from_another_thread_drops_the_connection(
    wire: Wire, server: ReplayServer, client: httpx.Client
) -> None:
    server.route("POST", wire.path, held(wire.engine, "stream_ok.sse", 2))
    stream = wire.adapter.complete(client, upstream(server), REQUEST)
    seen: list[object] = []
    for event in stream:
        seen.append(event)
        if len(seen) == 1:
            threading.Timer(0.2, stream.close).start()
    assert seen == [Token(" Paris"), Token(".")]  # ended quietly: no Finished, no error
    assert server.client_left.wait(5), "the engine never saw the connection close"
