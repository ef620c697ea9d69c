"""Which client shape a relayed path answers in (OpenAI's or Anthropic's), and every error
rendered in it: llorch's own refusals, an engine's refusal (its status and its message kept),
and an error that ends a stream already under way."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import falcon

from llorch.api.anthropic_errors import anthropic_body, anthropic_type, respond_anthropic
from llorch.api.openai_errors import openai_body, respond_openai
from llorch.resources.errors import LlorchError
from llorch.runtime.engines.relay import (
    CHAT,
    COMPLETIONS,
    COUNT_TOKENS,
    EMBEDDINGS,
    MESSAGES,
    RERANK,
    RESPONSES,
)

OPENAI_PREFIX = "/openai/v1"
OPENAI_PATHS = (CHAT, COMPLETIONS, EMBEDDINGS, RERANK, RESPONSES)
ANTHROPIC_PATHS = (MESSAGES, COUNT_TOKENS)
MODELS = "/v1/models"


class Dialect(StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"


def dialect_of(path: str) -> Dialect | None:
    """The shape a path's clients parse; None for llorch's own routes (its envelope)."""
    if path.startswith(OPENAI_PREFIX + "/"):
        return Dialect.OPENAI
    if path in ANTHROPIC_PATHS:
        return Dialect.ANTHROPIC
    if path in OPENAI_PATHS or path == MODELS or path.startswith(MODELS + "/"):
        return Dialect.OPENAI
    return None


def engine_path(path: str) -> str:
    """The engine's path for a client's: the same, without the `/openai` mount."""
    return path[len("/openai") :] if path.startswith(OPENAI_PREFIX + "/") else path


def error_json(dialect: Dialect, err: LlorchError) -> dict[str, Any]:
    if dialect is Dialect.ANTHROPIC:
        return anthropic_body(err.message, err.code.http_status)
    return openai_body(err)


def respond_error(dialect: Dialect, resp: falcon.Response, err: LlorchError) -> None:
    if dialect is Dialect.ANTHROPIC:
        respond_anthropic(resp, err)
    else:
        respond_openai(resp, err)


def engine_error_json(dialect: Dialect, status: int, upstream: dict[str, Any]) -> dict[str, Any]:
    """The engine's own error object in the client's shape: its fields kept, missing ones filled."""
    message = str(upstream.get("message") or f"the engine answered {status}")
    kind = upstream.get("type")
    if dialect is Dialect.ANTHROPIC:
        return {"type": "error", "error": {"type": anthropic_type(status), "message": message}}
    openai_kind = kind if isinstance(kind, str) and kind else _openai_type(status)
    error = {**upstream, "message": message, "type": openai_kind}
    error.setdefault("param", None)
    error.setdefault("code", None)
    return {"error": error}


def _openai_type(status: int) -> str:
    return "invalid_request_error" if 400 <= status < 500 else "server_error"


def stream_error_event(dialect: Dialect, body: dict[str, Any]) -> bytes:
    """An error that ends a stream after its first bytes, as each SDK's stream reader raises it."""
    data = json.dumps(body, separators=(",", ":"))
    if dialect is Dialect.ANTHROPIC:
        return f"event: error\ndata: {data}\n\n".encode()
    return f"data: {data}\n\n".encode()
