"""The runtime package's errors in the one error model."""

from __future__ import annotations

from llorch.resources.errors import ErrorCode, LlorchError


class RuntimeFailure(LlorchError):
    """Base of everything the runtime raises on purpose."""


class ProvisionError(RuntimeFailure):
    """An engine binary or a demo model could not be found or built. Retriable: someone may
    install the engine or free the disk, and the next look finds it."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INTERNAL, message, retriable=True)


class ProcessError(RuntimeFailure):
    """A worker process could not be started or stopped (a binary gone, no memory, no fds)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INTERNAL, message, retriable=True)


class UnsupportedEngine(RuntimeFailure):
    """No adapter for the engine a pool names: nothing but an edit of the pool can change that."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INVALID_PARAMS, message, retriable=False)


class EngineError(RuntimeFailure):
    """An engine answered with an error or broke its protocol, in the contract's codes, so the
    data plane can pass it on without knowing the engine."""

    def __init__(
        self, code: ErrorCode, message: str, *, retriable: bool | None = None, engine: str | None = None
    ) -> None:
        super().__init__(code, message, retriable=retriable, engine=engine)


class WeightsError(RuntimeFailure):
    """A Model's weights cannot be had; `reason` is the condition reason status shows (NotFound,
    DownloadFailed, ...). Retriable: a file may appear, a server may come back."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(
            ErrorCode.NOT_FOUND if reason == "NotFound" else ErrorCode.INTERNAL, message, retriable=True
        )
        self.reason = reason
