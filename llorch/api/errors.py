"""The one place exceptions become the wire's error envelope."""

from __future__ import annotations

import json
import logging
from typing import Any

import falcon
from pydantic import ValidationError

from llorch.dataplane.errors import DataplaneError
from llorch.resources import KindError
from llorch.runtime.errors import EngineError
from llorch.store.errors import (
    ArtifactInvalid,
    ArtifactNotFound,
    ArtifactTooLarge,
    ManifestInvalid,
    ObjectNotFound,
)

log = logging.getLogger("llorch.api")

STATUS_BY_CODE = {
    "INVALID_PARAMS": 400,
    "DEADLINE_UNMET": 400,
    "MISSING_TOKEN": 401,
    "BAD_TOKEN": 401,
    "NON_LOOPBACK_WITHOUT_TOKEN": 403,
    "POLICY_DENIED": 403,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "MODEL_RETIRED": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "QUEUE_FULL_DROP_LRU": 429,
    "ADMISSION_REJECT": 429,
    "BUDGET_EXCEEDED": 429,
    "POOL_UNREADY": 503,
    "POOL_UNAVAILABLE": 503,
    "POOL_DRAINING": 503,
    "REPLICA_EXHAUSTED": 503,
    "DECODE_TIMEOUT": 500,
    "WORKER_RESET": 500,
    "INTERNAL": 500,
}

# Falcon's own errors (unknown route, wrong method, unreadable body) in the same envelope.
_CODE_BY_FALCON_STATUS = {
    400: "INVALID_PARAMS",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


class ApiError(Exception):
    """An error raised by the API layer itself (auth, request parsing)."""

    def __init__(self, code: str, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


def envelope(
    req: falcon.Request,
    code: str,
    message: str,
    *,
    retriable: bool = False,
    retry_after_ms: int | None = None,
    policy_label: str | None = None,
    engine: str | None = None,
    details: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": code,
        "message": message,
        "retriable": retriable,
        "retry_after_ms": retry_after_ms,
        "policy_label": policy_label,
        "engine": engine,
        "correlation_id": req.context.get("correlation_id"),
    }
    if details:
        body["details"] = details
    return body


def _respond(resp: falcon.Response, body: dict[str, Any]) -> None:
    resp.status = falcon.code_to_http_status(STATUS_BY_CODE.get(body["code"], 500))
    resp.content_type = falcon.MEDIA_JSON
    resp.text = json.dumps(body)
    retry_after_ms = body.get("retry_after_ms")
    if retry_after_ms is not None:
        resp.set_header("Retry-After", str(max(1, -(-int(retry_after_ms) // 1000))))
        resp.set_header("X-Backoff-Ms", str(int(retry_after_ms)))


def handle_exception(
    req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]
) -> None:
    _respond(resp, to_envelope(req, ex))


def to_envelope(req: falcon.Request, ex: Exception) -> dict[str, Any]:
    if isinstance(ex, ApiError):
        return envelope(req, ex.code, ex.message, details=ex.details)
    if isinstance(ex, DataplaneError):
        return envelope(
            req,
            ex.code,
            ex.message,
            retriable=ex.retriable,
            retry_after_ms=ex.retry_after_ms,
            policy_label=ex.policy_label,
            engine=ex.engine,
        )
    if isinstance(ex, EngineError):
        return envelope(req, ex.code, ex.message, retriable=ex.retriable, engine=ex.engine)
    if isinstance(ex, ManifestInvalid):
        details = [
            {"file": e.file, "line": e.line, "field": e.field, "message": e.message} for e in ex.errors
        ]
        count = len(ex.errors)
        message = (
            f"invalid manifest: {count} error{'s' if count != 1 else ''} (see details); nothing was written"
        )
        return envelope(req, "INVALID_PARAMS", message, details=details)
    if isinstance(ex, ObjectNotFound | ArtifactNotFound):
        return envelope(req, "NOT_FOUND", str(ex))
    if isinstance(ex, ArtifactTooLarge):
        return envelope(req, "PAYLOAD_TOO_LARGE", f"{ex} bytes (artifacts.maxBytes in the server config)")
    if isinstance(ex, ArtifactInvalid):
        return envelope(req, "INVALID_PARAMS", str(ex))
    if isinstance(ex, KindError):
        return envelope(req, "INVALID_PARAMS", str(ex))
    if isinstance(ex, ValidationError):
        details = [
            {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]} for err in ex.errors()
        ]
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
        return envelope(req, "INVALID_PARAMS", summary, details=details)
    if isinstance(ex, falcon.HTTPError):
        code = _CODE_BY_FALCON_STATUS.get(ex.status_code, "INTERNAL")
        if isinstance(ex, falcon.HTTPRouteNotFound):
            return envelope(req, code, f"no such endpoint: {req.method} {req.path}")
        message = ex.description or ex.title or str(ex.status)
        return envelope(req, code, message)
    log.exception("unhandled error on %s %s", req.method, req.path)
    return envelope(req, "INTERNAL", f"internal error: {type(ex).__name__}")
