"""The engine-shaped front door: OpenAI's and Anthropic's endpoints relayed to the pool's engine.

OpenAI's endpoints are mounted under `/v1` (an OpenAI client takes `base_url=<llorchd>/v1`) and
again under `/openai/v1`; Anthropic's Messages under `/v1/messages` (`base_url=<llorchd>`).
llorch's own Model objects are at `/v1/catalog/models`.

A relayed request is a llorch task like any other: the same admission queue, slots, sessions,
budgets, cancel on disconnect, metrics and logs; `X-Task-Id` names it for `GET /v1/tasks/{id}`.
The engine does the rest (chat templates, tools, grammars, sampling, logprobs, `n`), so a
request that works against the engine directly works here unchanged.
"""

from __future__ import annotations

from typing import Any

import falcon

from llorch.api.context import AppContext
from llorch.api.errors import as_llorch_error, handle_exception
from llorch.api.relay.models import ModelResource, ModelsResource
from llorch.api.relay.resource import RelayResource
from llorch.api.relay.shapes import (
    ANTHROPIC_PATHS,
    OPENAI_PATHS,
    OPENAI_PREFIX,
    Dialect,
    dialect_of,
    respond_error,
)
from llorch.runtime.engines.relay import CHAT, COMPLETIONS, MESSAGES, RESPONSES

_GENERATING = frozenset({CHAT, COMPLETIONS, RESPONSES, MESSAGES})


def handle_relay_exception(
    req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]
) -> None:
    """Errors raised before a relayed route's resource runs (auth, body size, no such route)
    answer in the client's shape there, and in llorch's envelope everywhere else."""
    dialect = dialect_of(req.path)
    if dialect is None:
        handle_exception(req, resp, ex, params)
        return
    respond_error(dialect, resp, as_llorch_error(req, ex))


def routes(ctx: AppContext, app: falcon.App[falcon.Request, falcon.Response]) -> None:
    for base in ("/v1", OPENAI_PREFIX):
        app.add_route(f"{base}/models", ModelsResource(ctx))
        app.add_route(f"{base}/models/{{model}}", ModelResource(ctx))
    for path in OPENAI_PATHS:
        resource = RelayResource(ctx, path, Dialect.OPENAI, generates=path in _GENERATING)
        app.add_route(path, resource)
        app.add_route(OPENAI_PREFIX + path[len("/v1") :], resource)
    for path in ANTHROPIC_PATHS:
        app.add_route(path, RelayResource(ctx, path, Dialect.ANTHROPIC, generates=path in _GENERATING))
