"""OpenAI's error object: how every failure on the OpenAI-compatible routes is rendered, since
OpenAI's SDKs parse `{"error": {"message", "type", "param", "code"}}` and nothing else.

The status is the llorch code's; `type` follows from the status as OpenAI's own API does; `code`
is llorch's code in lower case (`admission_reject`, `pool_unready`) unless the refusal has an
OpenAI name of its own (`model_not_found`, `unsupported_value`).
"""

from __future__ import annotations

import json
from typing import Any

import falcon

from llorch.api.errors import RequestError, answer_headers
from llorch.resources.errors import ErrorCode, LlorchError

_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
}


class OpenAIRequestError(RequestError):
    """A refusal OpenAI's API has a code of its own for."""

    def __init__(self, code: ErrorCode, message: str, *, openai_code: str, param: str | None = None) -> None:
        super().__init__(code, message, param=param)
        self.openai_code = openai_code


def openai_body(err: LlorchError) -> dict[str, Any]:
    code = err.openai_code if isinstance(err, OpenAIRequestError) else err.code.value.lower()
    kind = _TYPE_BY_STATUS.get(err.code.http_status, "server_error")
    return {"error": {"message": err.message, "type": kind, "param": err.param, "code": code}}


def respond_openai(resp: falcon.Response, err: LlorchError) -> None:
    resp.status = falcon.code_to_http_status(err.code.http_status)
    resp.content_type = falcon.MEDIA_JSON
    resp.text = json.dumps(openai_body(err))
    resp.set_headers(answer_headers(err))
    if err.retry_after_ms is not None:
        # OpenAI's SDKs read this one first: it keeps the sub-second backoff llorch computed.
        resp.set_header("retry-after-ms", str(int(err.retry_after_ms)))
    # Without it the SDKs retry every 409/429/5xx, a Retired model (409) included.
    resp.set_header("x-should-retry", "true" if err.retriable else "false")
