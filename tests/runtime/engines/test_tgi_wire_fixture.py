"""What only the TGI adapter does, against TGI's wire format replayed from fixtures (TGI cannot run
here): its sampling switch. The shapes every engine shares are in test_wire_fixture.py."""

from __future__ import annotations

import httpx

from llorch.runtime.engines.base import CompletionRequest
from tests.runtime.engines.replay import ReplayServer, collect, stream_reply, upstream
from tests.runtime.engines.wires import TGI


def sent_parameters(server: ReplayServer, request: CompletionRequest, client: httpx.Client) -> object:
    server.route("POST", TGI.path, stream_reply("tgi", "stream_ok.sse"))
    collect(TGI.adapter.complete(client, upstream(server), request))
    return server.requests[-1].body["parameters"]


def test_temperature_zero_is_greedy(server: ReplayServer, client: httpx.Client) -> None:
    # TGI rejects temperature 0 and samples whenever top_p/top_k are set, so greedy sends none.
    greedy = CompletionRequest(prompt="hi", max_tokens=8, seed=7, temperature=0.0, top_p=0.9, top_k=40)
    expected = {"max_new_tokens": 8, "details": True, "do_sample": False, "seed": 7}
    assert sent_parameters(server, greedy, client) == expected


def test_values_tgi_forbids_but_others_read_as_off_are_dropped(
    server: ReplayServer, client: httpx.Client
) -> None:
    request = CompletionRequest(prompt="hi", max_tokens=8, temperature=1.0, top_p=1.0, top_k=-1)
    expected = {"max_new_tokens": 8, "details": True, "do_sample": True, "temperature": 1.0}
    assert sent_parameters(server, request, client) == expected
