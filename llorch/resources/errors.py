"""The one error model: the contract's error codes, each with its HTTP status, and the base error
every layer's exceptions derive from.

Each package raises its own subclass (`StoreError`, `RuntimeFailure`, `ControllerError`,
`DataplaneError`, `RequestError`), so a reader knows where an error came from; all of them carry
the same fields, and `llorch.api` renders them once per wire shape (llorch's envelope, OpenAI's
and Anthropic's error objects, a task's `error` frame).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """The contract's codes (CONTRACT.md, contracts/openapi.yaml). A StrEnum, so a code is its
    own name on every wire."""

    INVALID_PARAMS = "INVALID_PARAMS"
    DEADLINE_UNMET = "DEADLINE_UNMET"
    MISSING_TOKEN = "MISSING_TOKEN"
    BAD_TOKEN = "BAD_TOKEN"
    NON_LOOPBACK_WITHOUT_TOKEN = "NON_LOOPBACK_WITHOUT_TOKEN"
    POLICY_DENIED = "POLICY_DENIED"
    # A key or OIDC token that is valid but lacks the scope the route needs (RFC 6750's name).
    INSUFFICIENT_SCOPE = "INSUFFICIENT_SCOPE"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    MODEL_RETIRED = "MODEL_RETIRED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    REQUEST_HEADERS_TOO_LARGE = "REQUEST_HEADERS_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    QUEUE_FULL_DROP_LRU = "QUEUE_FULL_DROP_LRU"
    ADMISSION_REJECT = "ADMISSION_REJECT"
    BUDGET_EXCEEDED = "BUDGET_EXCEEDED"
    POOL_UNREADY = "POOL_UNREADY"
    POOL_UNAVAILABLE = "POOL_UNAVAILABLE"
    POOL_DRAINING = "POOL_DRAINING"
    REPLICA_EXHAUSTED = "REPLICA_EXHAUSTED"
    DECODE_TIMEOUT = "DECODE_TIMEOUT"
    # An HTTP tool call the guardrail allowed whose upstream could not be reached, or did not
    # answer in time.
    UPSTREAM_UNREACHABLE = "UPSTREAM_UNREACHABLE"
    UPSTREAM_TIMEOUT = "UPSTREAM_TIMEOUT"
    WORKER_RESET = "WORKER_RESET"
    INTERNAL = "INTERNAL"
    # Only in a task's error frame, once its stream has started (no HTTP answer of their own; the
    # status is what an OpenAI-shaped reply that waited for the task answers with).
    CANCELED = "CANCELED"
    POOL_DRAINED = "POOL_DRAINED"

    @property
    def http_status(self) -> int:
        return _STATUS[self]

    @property
    def retriable(self) -> bool:
        """Whether trying the same request again later can succeed, unless the raiser knows better."""
        return self in _RETRIABLE

    @property
    def stream_only(self) -> bool:
        return self in (ErrorCode.CANCELED, ErrorCode.POOL_DRAINED)


_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_PARAMS: 400,
    ErrorCode.DEADLINE_UNMET: 400,
    ErrorCode.MISSING_TOKEN: 401,
    ErrorCode.BAD_TOKEN: 401,
    ErrorCode.NON_LOOPBACK_WITHOUT_TOKEN: 403,
    ErrorCode.POLICY_DENIED: 403,
    ErrorCode.INSUFFICIENT_SCOPE: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.MODEL_RETIRED: 409,
    ErrorCode.CANCELED: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.REQUEST_HEADERS_TOO_LARGE: 431,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.QUEUE_FULL_DROP_LRU: 429,
    ErrorCode.ADMISSION_REJECT: 429,
    ErrorCode.BUDGET_EXCEEDED: 429,
    ErrorCode.POOL_UNREADY: 503,
    ErrorCode.POOL_UNAVAILABLE: 503,
    ErrorCode.POOL_DRAINING: 503,
    ErrorCode.POOL_DRAINED: 503,
    ErrorCode.REPLICA_EXHAUSTED: 503,
    ErrorCode.DECODE_TIMEOUT: 500,
    ErrorCode.WORKER_RESET: 500,
    ErrorCode.INTERNAL: 500,
    ErrorCode.UPSTREAM_UNREACHABLE: 502,
    ErrorCode.UPSTREAM_TIMEOUT: 504,
}

_RETRIABLE = frozenset(
    {
        ErrorCode.QUEUE_FULL_DROP_LRU,
        ErrorCode.ADMISSION_REJECT,
        ErrorCode.POOL_UNREADY,
        ErrorCode.POOL_DRAINING,
        ErrorCode.POOL_DRAINED,
        ErrorCode.REPLICA_EXHAUSTED,
        ErrorCode.DECODE_TIMEOUT,
        ErrorCode.WORKER_RESET,
        ErrorCode.UPSTREAM_UNREACHABLE,
        ErrorCode.UPSTREAM_TIMEOUT,
    }
)


class LlorchError(Exception):
    """Base of every error llorch raises on purpose.

    `retriable` defaults to what the code means (a full queue drains, a bad parameter stays
    bad); `retry_after_ms` is when trying again makes sense; `policy_label` names the Policy (and
    rule) behind a refusal; `engine` the engine that reported the error; `param` the request field
    at fault; `details` located problems (manifest errors: file, line, field, message).
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        retriable: bool | None = None,
        retry_after_ms: int | None = None,
        policy_label: str | None = None,
        engine: str | None = None,
        param: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message
        self.retriable = self.code.retriable if retriable is None else retriable
        self.retry_after_ms = retry_after_ms
        self.policy_label = policy_label
        self.engine = engine
        self.param = param
        self.details = details or []

    def frame(self) -> dict[str, Any]:
        """The payload of a task's `error` frame (CONTRACT.md: code, message, retriable, and
        retry_after_ms / engine / policy_label when known)."""
        data: dict[str, Any] = {"code": self.code, "message": self.message, "retriable": self.retriable}
        optional = {
            "retry_after_ms": self.retry_after_ms,
            "engine": self.engine,
            "policy_label": self.policy_label,
        }
        data.update({key: value for key, value in optional.items() if value is not None})
        return data

    @classmethod
    def from_frame(cls, data: dict[str, Any]) -> LlorchError:
        """An `error` frame back as an error, for a front door that waited on the task."""
        raw = str(data.get("code", ErrorCode.INTERNAL))
        code = ErrorCode(raw) if raw in ErrorCode.__members__ else ErrorCode.INTERNAL
        retry = data.get("retry_after_ms")
        return cls(
            code,
            str(data.get("message", "the task failed")),
            retriable=data.get("retriable") if isinstance(data.get("retriable"), bool) else None,
            retry_after_ms=int(retry) if isinstance(retry, int | float) else None,
            policy_label=data.get("policy_label"),
            engine=data.get("engine"),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.value}, {self.message!r})"
