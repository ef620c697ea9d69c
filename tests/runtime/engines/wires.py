"""The engines whose wire format the replay tests check, and what each test shape needs to know of them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from llorch.runtime.engines.base import EngineAdapter
from llorch.runtime.engines.tgi import Tgi
from llorch.runtime.engines.triton import Triton
from llorch.runtime.engines.vllm import VLlm
from tests.runtime.engines.replay import Recorded


@dataclass(frozen=True)
class Wire:
    engine: str
    adapter: EngineAdapter
    path: str
    """Where a completion is POSTed."""
    short_of_final: int
    """Events of stream_ok.sse that stop just short of the engine's final one."""
    json_fields: tuple[str, ...] = ()
    """Body fields that carry JSON as a string, decoded by `sent` so a test compares values."""

    def sent(self, request: Recorded) -> dict[str, Any]:
        """The request's JSON body, its JSON-in-a-string fields decoded."""
        body = dict(request.body)
        return body | {name: json.loads(body[name]) for name in self.json_fields if name in body}


VLLM = Wire("vllm", VLlm(), "/v1/completions", 10)  # up to the usage chunk, without [DONE]
TGI = Wire("tgi", Tgi(), "/generate_stream", 7)  # before the event with generated_text
TRITON = Wire(
    "triton",
    Triton(),
    "/v2/models/tiny/generate_stream",
    5,  # before the finish reason
    json_fields=("sampling_parameters",),
)
WIRES = (VLLM, TGI, TRITON)
