"""What only the vLLM adapter does, against vLLM's wire format replayed from fixtures (vLLM cannot run
here). The shapes every engine shares are in test_wire_fixture.py."""

from __future__ import annotations

import httpx
import pytest

from llorch.runtime.engines.base import Token, Upstream
from llorch.runtime.errors import EngineError
from tests.runtime.engines.replay import (
    REQUEST,
    ReplayServer,
    collect,
    held,
    json_reply,
    upstream,
)
from tests.runtime.engines.wires import VLLM

ADAPTER = VLLM.adapter


def test_context_per_slot_is_read_from_the_served_models_card_only(
    server: ReplayServer, client: httpx.Client
) -> None:
    server.route("GET", "/v1/models", json_reply("vllm", "models.json"))
    other = Upstream(base_url=server.base_url, model="not-served")
    assert ADAPTER.context_per_slot(client, other) is None, "another model's card says nothing of this one"


def test_a_late_close_cannot_touch_a_connection_another_stream_reuses(
    server: ReplayServer, client: httpx.Client
) -> None:
    # An error reply is read to the end, so its keep-alive connection goes back to the pool and
    # the next stream takes it; cancelling the finished first stream must not shut it down.
    server.route("POST", VLLM.path, json_reply("vllm", "error_400_context.json", status=400))
    first = ADAPTER.complete(client, upstream(server), REQUEST)
    with pytest.raises(EngineError):
        collect(first)
    server.route("POST", VLLM.path, held("vllm", "stream_ok.sse", 2))
    second = iter(ADAPTER.complete(client, upstream(server), REQUEST))
    assert next(second) == Token(" Paris")
    first.close()
    assert not server.client_left.wait(0.3)
    assert next(second) == Token(".")
