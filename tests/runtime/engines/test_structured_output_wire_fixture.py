"""A task's output constraint (`json_schema`, `grammar`) as each remote engine's own request field,
sent to the vLLM, TGI and Triton wire doubles (replay servers: those engines cannot run here).
llama.cpp takes the task's names as they are; tests/runtime/engines/test_llamacpp.py checks what
a real llama-server makes of them."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from llorch.runtime.engines import engines_enforcing
from llorch.runtime.engines.base import CompletionRequest
from tests.runtime.engines.replay import ReplayServer, collect, stream_reply, upstream
from tests.runtime.engines.wires import TGI, TRITON, VLLM, Wire

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
GRAMMAR = 'root ::= "yes" | "no"'


def sent_to(
    server: ReplayServer, client: httpx.Client, wire: Wire, request: CompletionRequest
) -> dict[str, Any]:
    """The body the engine double received, JSON-in-a-string fields decoded."""
    server.route("POST", wire.path, stream_reply(wire.engine, "stream_ok.sse"))
    collect(wire.adapter.complete(client, upstream(server), request))
    return wire.sent(server.requests[-1])


def test_vllm_takes_both_as_structured_outputs(server: ReplayServer, client: httpx.Client) -> None:
    schema = sent_to(server, client, VLLM, CompletionRequest(prompt="hi", max_tokens=8, json_schema=SCHEMA))
    assert schema["structured_outputs"] == {"json": SCHEMA}
    grammar = sent_to(server, client, VLLM, CompletionRequest(prompt="hi", max_tokens=8, grammar=GRAMMAR))
    assert grammar["structured_outputs"] == {"grammar": GRAMMAR}
    assert "guided_json" not in schema and "guided_grammar" not in grammar, "removed in vLLM 0.12"


def test_tgi_takes_a_schema_as_its_json_grammar(server: ReplayServer, client: httpx.Client) -> None:
    body = sent_to(server, client, TGI, CompletionRequest(prompt="hi", max_tokens=8, json_schema=SCHEMA))
    assert body["parameters"]["grammar"] == {"type": "json", "value": SCHEMA}


def test_triton_nests_structured_outputs_as_a_json_string(server: ReplayServer, client: httpx.Client) -> None:
    schema = sent_to(server, client, TRITON, CompletionRequest(prompt="hi", max_tokens=8, json_schema=SCHEMA))
    # The vLLM backend json.loads() the value into StructuredOutputsParams: a string, not an object.
    nested = schema["sampling_parameters"]["structured_outputs"]
    assert isinstance(nested, str) and json.loads(nested) == {"json": SCHEMA}
    grammar = sent_to(server, client, TRITON, CompletionRequest(prompt="hi", max_tokens=8, grammar=GRAMMAR))
    assert json.loads(grammar["sampling_parameters"]["structured_outputs"]) == {"grammar": GRAMMAR}


@pytest.mark.parametrize("wire", [VLLM, TGI, TRITON], ids=lambda w: w.engine)
def test_no_constraint_sends_no_constraint_field(
    server: ReplayServer, client: httpx.Client, wire: Wire
) -> None:
    body = sent_to(server, client, wire, CompletionRequest(prompt="hi", max_tokens=8))
    fields = {**body, **body.get("parameters", {}), **body.get("sampling_parameters", {})}
    assert not {"structured_outputs", "grammar", "json_schema"} & set(fields)


def test_what_each_engine_enforces() -> None:
    # TGI's grammars are JSON Schema and regex: a GBNF grammar has nowhere to go there.
    assert engines_enforcing("json_schema") == ["llamacpp", "vllm", "tgi", "triton"]
    assert engines_enforcing("grammar") == ["llamacpp", "vllm", "triton"]
