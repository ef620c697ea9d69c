"""The data plane's errors in the one error model; `api/` renders them per wire shape."""

from __future__ import annotations

from llorch.resources.errors import ErrorCode, LlorchError


class DataplaneError(LlorchError):
    """A task refused at admission or ended by the data plane."""


class TaskNotFound(DataplaneError):
    def __init__(self, task_id: str) -> None:
        super().__init__(ErrorCode.NOT_FOUND, f"no task {task_id!r}")
