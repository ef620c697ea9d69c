"""What only the Triton adapter (vLLM backend, generate extension) does, against Triton's wire format
replayed from fixtures (Triton cannot run here). The shapes every engine shares are in
test_wire_fixture.py."""

from __future__ import annotations

import httpx
import pytest

from llorch.runtime.engines.base import CompletionRequest, Finished, Token
from tests.runtime.engines.replay import ReplayServer, collect, stream_reply, upstream
from tests.runtime.engines.wires import TRITON

ADAPTER = TRITON.adapter


@pytest.mark.parametrize(("max_tokens", "reason"), [(4, "length"), (16, "stop")])
def test_backend_without_counts_counts_one_token_per_event(
    server: ReplayServer, client: httpx.Client, max_tokens: int, reason: str
) -> None:
    server.route("POST", TRITON.path, stream_reply("triton", "stream_text_only.sse"))
    request = CompletionRequest("p", max_tokens=max_tokens)
    events = collect(ADAPTER.complete(client, upstream(server), request))
    assert [e.text for e in events if isinstance(e, Token)] == [" Paris", ",", " France", "'s"]
    assert events[-1] == Finished(tokens_out=4, tokens_in=None, finish_reason=reason)


def test_context_per_slot_is_not_said_over_kserve_v2(server: ReplayServer, client: httpx.Client) -> None:
    assert ADAPTER.context_per_slot(client, upstream(server)) is None
    assert not server.requests, "nothing to ask"
