"""The data plane's exceptions, each carrying a contract error code; `api/` maps codes to HTTP."""

from __future__ import annotations


class DataplaneError(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        *,
        retriable: bool = False,
        retry_after_ms: int | None = None,
        policy_label: str | None = None,
        engine: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retriable = retriable
        self.retry_after_ms = retry_after_ms
        self.policy_label = policy_label
        self.engine = engine


class TaskNotFound(DataplaneError):
    def __init__(self, task_id: str) -> None:
        super().__init__("NOT_FOUND", f"no task {task_id!r}")
