"""/v1/tasks: admit a task, stream its frames over SSE, look it up, cancel it."""

from __future__ import annotations

from typing import Literal

import falcon
from pydantic import BaseModel, ConfigDict, Field, model_validator

from llorch.api import sse
from llorch.api.context import AppContext
from llorch.api.errors import ApiError
from llorch.dataplane.errors import TaskNotFound
from llorch.dataplane.tasks import Budget, Task
from llorch.runtime.engines.base import CompletionRequest


class TaskRequest(BaseModel):
    """The body of POST /v1/tasks; names follow the wire contract (snake_case)."""

    model_config = ConfigDict(extra="forbid")

    task_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    pool: str | None = None
    model_ref: str | None = None
    workload: Literal["completion"] = "completion"
    prompt: str = Field(min_length=1)
    max_tokens: int = Field(default=128, ge=1, le=1_048_576)
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    temperature: float | None = Field(default=None, ge=0, le=10)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    stop: list[str] = Field(default_factory=list, max_length=16)
    priority: Literal["interactive", "batch"] = "interactive"
    session_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    determinism: Literal["strict", "best_effort"] | None = None
    stream: bool = Field(default=False, description="Answer with the SSE stream itself: one round trip.")

    @model_validator(mode="after")
    def _target(self) -> TaskRequest:
        if (self.pool is None) == (self.model_ref is None):
            raise ValueError("give exactly one of pool or model_ref")
        return self


def read_json(req: falcon.Request) -> object:
    if req.content_length in (None, 0):
        raise ApiError("INVALID_PARAMS", "a JSON body is required")
    try:
        return req.get_media()
    except falcon.MediaMalformedError as exc:
        raise ApiError("INVALID_PARAMS", f"body is not valid JSON: {exc.description}") from exc


class TasksResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = TaskRequest.model_validate(read_json(req))
        pool = self._ctx.tasks.resolve_pool(body.pool, body.model_ref)
        request = CompletionRequest(
            prompt=body.prompt,
            max_tokens=body.max_tokens,
            seed=body.seed,
            temperature=body.temperature,
            top_p=body.top_p,
            top_k=body.top_k,
            stop=body.stop,
            correlation_id=req.context.get("correlation_id"),
        )
        admitted = self._ctx.tasks.submit(
            request,
            pool=pool,
            task_id=body.task_id,
            priority=body.priority,
            session_id=body.session_id,
            determinism=body.determinism,
        )
        task_id = admitted.task.id
        resp.location = f"/v1/tasks/{task_id}"
        _budget_headers(resp, admitted.task.budget)
        if body.stream:
            resp.set_header("X-Task-Id", task_id)
            stream_frames(self._ctx, req, resp, admitted.task, after=-1)
            return
        resp.status = falcon.HTTP_202
        resp.media = {
            "task_id": task_id,
            "pool": pool.metadata.name,
            "queue_position": admitted.queue_position,
            "predicted_start_ms": admitted.predicted_start_ms,
            "backoff_ms": admitted.backoff_ms,
            "streams": {"sse": f"/v1/tasks/{task_id}/events"},
        }


class TaskResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        try:
            task = self._ctx.tasks.get(task_id)
        except TaskNotFound:
            # Finished tasks leave memory after a while (or a restart); their record stays.
            record = self._ctx.db.get_task(task_id)
            if record is None:
                raise
            resp.media = record.summary()
            return
        summary = task.summary()
        position = self._ctx.tasks.queue_position(task)
        if position is not None:
            summary["queue_position"] = position
        resp.media = summary


class TaskEventsResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        task = self._ctx.tasks.get(task_id)
        last = req.get_header("Last-Event-ID")
        try:
            after = int(last) if last is not None else -1
        except ValueError as exc:
            raise ApiError("INVALID_PARAMS", f"Last-Event-ID must be a frame id, got {last!r}") from exc
        stream_frames(self._ctx, req, resp, task, after)


def stream_frames(
    ctx: AppContext, req: falcon.Request, resp: falcon.Response, task: Task, after: int
) -> None:
    resp.content_type = "text/event-stream"
    resp.set_headers(sse.HEADERS)
    tasks = ctx.tasks
    resp.stream = sse.task_stream(
        task, after, sse.client_gone(req.env), on_abandon=lambda: tasks.abandon(task)
    )


def _budget_headers(resp: falcon.Response, budget: Budget) -> None:
    if budget.tokens is not None:
        resp.set_header("X-Budget-Tokens-Remaining", str(budget.tokens))
    if budget.time_ms is not None:
        resp.set_header("X-Budget-Time-Remaining-Ms", str(int(budget.time_ms)))
    if budget.cost is not None:
        resp.set_header("X-Budget-Cost-Remaining", f"{budget.cost:g}")


class TaskCancelResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_post(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        self._ctx.tasks.cancel(task_id)
        resp.status = falcon.HTTP_204
