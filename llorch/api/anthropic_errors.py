"""Anthropic's error object: how failures on the Messages routes are rendered, since Anthropic's
SDKs parse `{"type": "error", "error": {"type", "message"}}`.

`error.type` follows from the status as Anthropic's own API names them; the message is llorch's
(or the engine's, for an engine's refusal).
"""

from __future__ import annotations

import json
from typing import Any

import falcon

from llorch.api.errors import answer_headers
from llorch.resources.errors import LlorchError

_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def anthropic_type(status: int) -> str:
    return _TYPE_BY_STATUS.get(status, "api_error")


def anthropic_body(message: str, status: int) -> dict[str, Any]:
    return {"type": "error", "error": {"type": anthropic_type(status), "message": message}}


def respond_anthropic(resp: falcon.Response, err: LlorchError) -> None:
    status = err.code.http_status
    resp.status = falcon.code_to_http_status(status)
    resp.content_type = falcon.MEDIA_JSON
    resp.text = json.dumps(anthropic_body(err.message, status))
    resp.set_headers(answer_headers(err))
    # Anthropic's SDKs, like OpenAI's, retry every 409/429/5xx unless told.
    resp.set_header("x-should-retry", "true" if err.retriable else "false")
