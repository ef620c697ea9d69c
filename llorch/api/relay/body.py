"""A relayed request's body: read as the client wrote it, llorch's own fields taken out.

llorch's fields are `session_id` (or the `X-Session-Id` header), `priority` and `deadline_ms`;
everything else goes to the engine untouched, fields llorch has never heard of included. What
llorch reads without taking out: `model` (which pool), `stream`, the token limit (admission
checks it against the pool's context) and `seed` (strict determinism needs one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import falcon
from pydantic import BaseModel, ConfigDict, Field

from llorch.api.errors import RequestError
from llorch.api.tasks import NAME, read_json
from llorch.resources.errors import ErrorCode

SESSION_HEADER = "X-Session-Id"
LLORCH_FIELDS = ("session_id", "priority", "deadline_ms")
# Where each API puts the token limit: OpenAI's newer and older chat names, Responses,
# llama.cpp's own; Anthropic's is max_tokens too.
_LIMIT_FIELDS = ("max_completion_tokens", "max_tokens", "max_output_tokens", "n_predict")


class LlorchFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=NAME)
    priority: Literal["interactive", "batch"] = "interactive"
    deadline_ms: int | None = Field(default=None, ge=1)


@dataclass(frozen=True)
class RelayBody:
    model: str
    body: dict[str, Any]  # what the engine gets (its model name is set when a replica is chosen)
    llorch: LlorchFields
    stream: bool

    @property
    def max_tokens(self) -> int | None:
        for name in _LIMIT_FIELDS:
            value = self.body.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return None

    @property
    def seed(self) -> int | None:
        seed = self.body.get("seed")
        return seed if isinstance(seed, int) and not isinstance(seed, bool) else None

    @property
    def asks_usage(self) -> bool:
        options = self.body.get("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True


def read_body(req: falcon.Request) -> RelayBody:
    payload = read_json(req)
    if not isinstance(payload, dict):
        raise RequestError(ErrorCode.INVALID_PARAMS, "the body must be a JSON object")
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError(ErrorCode.INVALID_PARAMS, "model is required: a pool's name", param="model")
    ours = {name: payload.pop(name) for name in LLORCH_FIELDS if name in payload}
    header = req.get_header(SESSION_HEADER)
    if header is not None and "session_id" not in ours:
        ours["session_id"] = header
    return RelayBody(
        model=model,
        body=payload,
        llorch=LlorchFields.model_validate(ours),
        stream=payload.get("stream") is True,
    )
