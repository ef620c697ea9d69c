"""The API layer's errors, and the one place any exception becomes llorch's error envelope.

Every failure is first made a `LlorchError` (`as_llorch_error`: pydantic's validation errors,
Falcon's own HTTP errors, anything unexpected); each wire shape then renders that one object:
llorch's envelope here, OpenAI's error object in `openai_errors`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import falcon
from pydantic import ValidationError

from llorch.resources.errors import ErrorCode, LlorchError

log = logging.getLogger("llorch.api")

# Falcon's own errors (unknown route, wrong method, unreadable body) in the same model.
_CODE_BY_FALCON_STATUS = {
    400: ErrorCode.INVALID_PARAMS,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
}


class RequestError(LlorchError):
    """A request refused by the API layer itself (auth, parsing, a route's own checks)."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        param: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(code, message, param=param, details=details)
        # Headers the answer must carry whatever its shape (`Allow` on a 405).
        self.headers = headers or {}


def as_llorch_error(req: falcon.Request, ex: Exception) -> LlorchError:
    if isinstance(ex, LlorchError):
        return ex
    if isinstance(ex, ValidationError):
        details = [
            {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]} for err in ex.errors()
        ]
        summary = "; ".join(f"{d['field']}: {d['message']}" if d["field"] else d["message"] for d in details)
        return RequestError(
            ErrorCode.INVALID_PARAMS, summary, param=details[0]["field"] or None, details=details
        )
    if isinstance(ex, falcon.HTTPError):
        code = _CODE_BY_FALCON_STATUS.get(ex.status_code, ErrorCode.INTERNAL)
        headers = dict(ex.headers or {})
        if isinstance(ex, falcon.HTTPRouteNotFound):
            return RequestError(code, f"no such endpoint: {req.method} {req.path}", headers=headers)
        return RequestError(code, ex.description or ex.title or str(ex.status), headers=headers)
    log.exception("unhandled error on %s %s", req.method, req.path)
    return RequestError(ErrorCode.INTERNAL, f"internal error: {type(ex).__name__}")


def envelope(err: LlorchError, correlation_id: str | None) -> dict[str, Any]:
    """llorch's error envelope (CONTRACT.md), `details` added when there are located problems."""
    body: dict[str, Any] = {
        "code": err.code,
        "message": err.message,
        "retriable": err.retriable,
        "retry_after_ms": err.retry_after_ms,
        "policy_label": err.policy_label,
        "engine": err.engine,
        "correlation_id": correlation_id,
    }
    if err.details:
        body["details"] = err.details
    return body


def answer_headers(err: LlorchError) -> dict[str, str]:
    """What every error answer carries besides its body, whatever the body's shape: when to try
    again (`Retry-After` in whole seconds, llorch's own `X-Backoff-Ms`), and a route's `Allow`."""
    headers = dict(err.headers) if isinstance(err, RequestError) else {}
    if err.retry_after_ms is not None:
        millis = int(err.retry_after_ms)
        headers["Retry-After"] = str(max(1, -(-millis // 1000)))
        headers["X-Backoff-Ms"] = str(millis)
    return headers


def respond(req: falcon.Request, resp: falcon.Response, err: LlorchError) -> None:
    resp.status = falcon.code_to_http_status(err.code.http_status)
    resp.content_type = falcon.MEDIA_JSON
    resp.text = json.dumps(envelope(err, req.context.get("correlation_id")))
    resp.set_headers(answer_headers(err))


def handle_exception(
    req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]
) -> None:
    respond(req, resp, as_llorch_error(req, ex))
