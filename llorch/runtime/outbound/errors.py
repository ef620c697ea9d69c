"""What an outbound call raises, in the one error model."""

from __future__ import annotations

from llorch.resources.errors import ErrorCode
from llorch.runtime.errors import RuntimeFailure


class OutboundError(RuntimeFailure):
    """Base of every outbound failure."""


class InvalidUrl(OutboundError):
    """A URL that cannot be fetched as written."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INVALID_PARAMS, message, param="url")


class UnsupportedScheme(InvalidUrl):
    """Anything but http and https (file:, gopher:, ftp:, data:, ...)."""

    def __init__(self, scheme: str) -> None:
        super().__init__(f"scheme {scheme or '(none)'!r} is never fetched: only http and https are")
        self.scheme = scheme


class UpstreamUnreachable(OutboundError):
    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.UPSTREAM_UNREACHABLE, message)


class UpstreamTimeout(OutboundError):
    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.UPSTREAM_TIMEOUT, message)
