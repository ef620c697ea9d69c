"""The runtime package's exceptions; `api/` maps them to the wire envelope once."""

from __future__ import annotations


class RuntimeFailure(Exception):
    """Base of everything the runtime raises on purpose."""


class ProvisionError(RuntimeFailure):
    """An engine binary or a demo model could not be found or built."""


class ProcessError(RuntimeFailure):
    """A worker process could not be started or stopped."""


class EngineError(RuntimeFailure):
    """An engine answered with an error or broke its protocol.

    `code` is one of the contract's error codes (INVALID_PARAMS, WORKER_RESET, ...) so the
    data plane can pass it on without knowing the engine.
    """

    def __init__(self, code: str, message: str, *, retriable: bool = False, engine: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retriable = retriable
        self.engine = engine
